"""``skdfa.show_versions()``: sklearn's report plus skdfa and its extras."""

import importlib
import platform

_EXTRAS = ["matplotlib", "dask", "distributed", "pandas", "skops", "sphinx", "hypothesis", "numba"]


def _extras_versions():
    versions = {}
    for name in _EXTRAS:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    return versions


def show_versions():
    """Print skdfa's version, sklearn's system report and the optional extras.

    Examples
    --------
    >>> from skdfa import show_versions
    >>> show_versions()  # doctest: +ELLIPSIS
    <BLANKLINE>
    skdfa: ...
    """
    from sklearn import show_versions as sklearn_show_versions

    from . import __version__

    print(f"\nskdfa: {__version__} (Python {platform.python_version()})")
    sklearn_show_versions()
    print("\nOptional extras:")
    for name, version in _extras_versions().items():
        print(f"{name:>12}: {version}")
