"""The documentation builds offline with warnings as errors, gallery included.

The sources are copied into a temporary folder, so that the build's generated
files (API pages, gallery pages) never land in the repository.
"""

import os
import re
import shutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from pkgutil import iter_modules

import pytest

import skdfa

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("_build", "generated", "auto_examples", "sg_execution_times.rst")


def _public_pages():
    """The API page names that every public class and function must get."""
    modules = [skdfa] + [
        import_module(f"skdfa.{info.name}")
        for info in iter_modules(skdfa.__path__)
        if not info.name.startswith("_")
    ]
    return [
        f"{module.__name__}.{name}"
        for module in modules
        for name in module.__all__
        if callable(getattr(module, name))
    ]


@pytest.mark.slow
def test_docs_build(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    html = tmp_path / "html"
    env = {
        **os.environ,
        "SKDFA_DOCS_OFFLINE": "1",  # intersphinx fetches nothing
        "MPLBACKEND": "Agg",
        # The examples' networks are small: one BLAS thread is fastest.
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(tmp_path / "docs"), str(html)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-6000:] or result.stdout[-6000:]

    # The API reference has a page for every public name, with its docstring.
    api = (html / "generated" / "api.html").read_text()
    for name in _public_pages():
        page = html / "generated" / f"{name}.html"
        assert page.exists(), f"no API page for {name}"
        assert f"{name}.html" in api, f"{name} is not listed in the API reference"
        assert "Examples" in page.read_text(), f"{name}'s page has no Examples"

    # Every example ran and drew at least one figure.
    examples = sorted((ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 7
    images = {p.name for p in (html / "_images").iterdir()}
    for example in examples:
        assert (html / "auto_examples" / f"{example.stem}.html").exists()
        assert f"sphx_glr_{example.stem}_001.png" in images, f"{example.name} drew nothing"

    # The user guide's diagram and equations are there.
    dfa = (html / "user_guide" / "dfa.html").read_text()
    assert re.search(r'<img [^>]*src="[^"]*feedback_paths[^"]*\.png"', dfa)
    assert r"\delta_l = (e\, B_l)" in dfa
