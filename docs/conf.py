"""Sphinx configuration of skdfa's documentation.

Build with ``make html`` in this folder (or ``sphinx-build -n -W -b html . _build/html``).
Set ``SKDFA_DOCS_OFFLINE=1`` to build without network: intersphinx then fetches
no inventory (links to scikit-learn, NumPy and joblib are left as plain text).
The math is rendered to MathML at build time (``_ext/mathml.py``), so the pages
need no network either. ``make html`` builds nitpicky (``-n``): every reference
must resolve.
"""

import importlib
import inspect
import os
import pkgutil
import sys
from pathlib import Path

import jinja2

# The torch example of the gallery trains under scikit-learn's array API
# switch, which needs SciPy's array API support, set before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import skdfa  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # mathml, gallery_order
import gallery_order  # noqa: E402

OFFLINE = os.environ.get("SKDFA_DOCS_OFFLINE", "") not in ("", "0")

# -- Project ------------------------------------------------------------------

project = "skdfa"
author = "skdfa developers"
copyright = "skdfa developers"
version = release = skdfa.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "mathml",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
# The templates are Jinja sources, not pages; the API page is rendered below.
exclude_patterns = ["_build", "_templates", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
# The right-hand TOC of a class page lists "fit()", not "DFAClassifier.fit()".
toc_object_entries_show_parents = "hide"

# -- API reference, built from ``__all__`` at build time -------------------------


def _public_modules():
    """``skdfa`` and its public subpackages/modules, imported."""
    modules = [skdfa]
    for info in pkgutil.iter_modules(skdfa.__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"skdfa.{info.name}"))
    return modules


def _public_names(module):
    """The classes and functions of a module's ``__all__`` (not ``__version__``)."""
    return sorted(name for name in module.__all__ if callable(getattr(module, name)))


def _render_api_page():
    """Write ``generated/api.rst``: one autosummary table per public module.

    The page is regenerated at each build so that a name added to ``__all__``
    (or a new public subpackage) appears without editing the docs.
    """
    sections = []
    for module in _public_modules():
        names = _public_names(module)
        sections.append(
            {
                "module": module.__name__,
                "classes": [n for n in names if inspect.isclass(getattr(module, n))],
                "functions": [
                    n for n in names if not inspect.isclass(getattr(module, n))
                ],
            }
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "_templates"), keep_trailing_newline=True
    )
    text = env.get_template("api.rst.jinja").render(sections=sections)
    out = HERE / "generated" / "api.rst"
    out.parent.mkdir(exist_ok=True)
    # Rewriting an unchanged page would make Sphinx re-read everything.
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


_render_api_page()

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Cross-project links ----------------------------------------------------------

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "joblib": ("https://joblib.readthedocs.io/en/stable", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
if OFFLINE:
    # No inventory is fetched: references to these projects stay unlinked, and
    # the nitpicky build does not report them (online, they must resolve).
    intersphinx_mapping = {}
    external = "|".join(["numpy", "scipy", "sklearn", "joblib", "matplotlib"])
    nitpick_ignore_regex = [(r"py:.*", rf"({external})\..*")]
    # The methods inherited from scikit-learn (score, get_params, set_params,
    # set_*_request, set_output) are documented with their docstrings, which
    # cite pages of scikit-learn's own documentation.
    nitpick_ignore_regex += [
        (r"std:ref", r"metadata_routing|accuracy_score|r2_score|df_output_transform"),
        (r"std:ref", r"sphx_glr_auto_examples_miscellaneous_plot_set_output\.py"),
        (r"std:term", r"meta-estimator"),
    ]

# -- Gallery and figures ------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "doc_module": ("skdfa",),
    "backreferences_dir": "generated/backreferences",
    # Sections and the order of their examples: see _ext/gallery_order.py.
    "subsection_order": [f"../examples/{name}" for name in gallery_order.SECTIONS],
    "within_subsection_order": "gallery_order.ExampleOrder",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "show_memory": False,
    "download_all_examples": False,
    # The computation-times pages load jQuery and DataTables from a CDN; each
    # example's page states its own running time instead.
    "write_computation_times": False,
}

plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]

# -- HTML -------------------------------------------------------------------------

html_math_renderer = "mathml"
html_theme = "pydata_sphinx_theme"
html_title = f"skdfa {release}"
html_static_path = ["_static"]
html_css_files = ["skdfa.css"]  # math spacing, wrapped TOC entries
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"index": [], "performance": []}
html_show_sourcelink = False
