"""Every public name has a numpydoc docstring with the sections users need.

Public names are ``skdfa.__all__``, the ``__all__`` of each public subpackage
(``skdfa.datasets``, ``skdfa.plotting``, ...) and the public methods that
public classes define in skdfa. Classes need Parameters, Attributes and
Examples; functions need Parameters, Returns (when they return something) and
Examples; methods need Parameters and Returns. numpydoc's validator checks that
the documented parameters match the signature.
"""

import importlib
import inspect
import pkgutil

import pytest
from numpydoc.docscrape import ClassDoc
from numpydoc.validate import validate

import skdfa

# numpydoc error codes: GL08 no docstring, SS01 no summary, PR01 a parameter is
# not documented, PR02 a documented parameter does not exist, RT01 no Returns
# section for a function that returns something, EX01 no Examples section.
METHOD_CHECKS = {"GL08", "SS01", "PR01", "PR02", "RT01"}
CHECKS = METHOD_CHECKS | {"EX01"}


def _public_modules():
    modules = [skdfa]
    for info in pkgutil.iter_modules(skdfa.__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"skdfa.{info.name}"))
    return modules


def _public_methods(cls):
    """Names of the public methods ``cls`` has from skdfa code (not sklearn's)."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, property):
            continue
        method = getattr(cls, name, None)
        if callable(method) and getattr(method, "__module__", "").startswith("skdfa"):
            names.append(name)
    return names


def _public_objects():
    """(import path, object, kind) of every documented public name."""
    for module in _public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj):  # __version__
                continue
            path = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                yield path, obj, "class"
                for method in _public_methods(obj):
                    yield f"{path}.{method}", getattr(obj, method), "method"
            else:
                yield path, obj, "function"


PUBLIC = list(_public_objects())


def test_public_api_is_found():
    paths = {path for path, _, _ in PUBLIC}
    # The core names and their main methods, so that an empty discovery fails.
    assert {
        "skdfa.DFAClassifier",
        "skdfa.DFAClassifier.fit",
        "skdfa.DFAClassifier.predict_proba",
        "skdfa.DFAClassifier.transform",
        "skdfa.DFARegressor.partial_fit",
        "skdfa.show_versions",
    } <= paths
    # sklearn's inherited methods are sklearn's to document.
    assert "skdfa.DFAClassifier.get_params" not in paths


def _takes_parameters(cls):
    signature = inspect.signature(cls)
    return any(p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values())


@pytest.mark.parametrize(
    "path, obj, kind", PUBLIC, ids=[path for path, _, _ in PUBLIC]
)
def test_docstring(path, obj, kind):
    checks = METHOD_CHECKS if kind == "method" else CHECKS
    problems = [
        f"{code}: {message}"
        for code, message in validate(path)["errors"]
        if code in checks
    ]
    if kind == "class" and not issubclass(obj, Warning):
        # Without show_class_members, numpydoc would fill Attributes from properties.
        doc = ClassDoc(obj, config={"show_class_members": False})
        # A class whose constructor takes nothing (a built-in learning rule)
        # has no parameters to document.
        sections = ("Parameters", "Attributes") if _takes_parameters(obj) else ("Attributes",)
        problems += [f"no {s} section" for s in sections if not doc[s]]
    assert not problems, f"{path}:\n" + "\n".join(problems)
