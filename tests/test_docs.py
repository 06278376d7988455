"""The documentation builds offline, nitpicky, with warnings as errors, gallery
included; the quick start of the README and of the landing page is one snippet
that runs and prints what it shows.

The sources are copied into a temporary folder, so that the build's generated
files (API pages, gallery pages) never land in the repository.
"""

import doctest
import os
import re
import textwrap
import warnings
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
    }  # one BLAS thread, from conftest.py, unless the environment sets another
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", "html",
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

    # Class pages document their methods, and list the examples that use them.
    for method in [
        "skdfa.DFAClassifier.fit",
        "skdfa.DFAClassifier.partial_fit",
        "skdfa.DFAClassifier.predict_proba",
        "skdfa.DFAClassifier.transform",
        # Inherited from scikit-learn, documented too: the quick start uses score.
        "skdfa.DFAClassifier.score",
        "skdfa.DFAClassifier.get_params",
        "skdfa.DFAClassifier.set_params",
        "skdfa.DFAClassifier.set_fit_request",
        "skdfa.DFARegressor.score",
        "skdfa.StackingDFA.score",
        "skdfa.DFARegressor.predict",
        "skdfa.StackingDFA.transform",
        "skdfa.plotting.AlignmentDisplay.from_estimator",
    ]:
        page = (html / "generated" / f"{method.rsplit('.', 1)[0]}.html").read_text()
        assert f'id="{method}"' in page, f"{method} is not documented"
    page = (html / "generated" / "skdfa.DFAClassifier.html").read_text()
    assert "Examples using" in page and "plot_dfa_vs_bp.html" in page

    # Every example ran, drew at least one figure, and printed no warning.
    examples = sorted((ROOT / "examples").rglob("plot_*.py"))
    assert len(examples) >= 7
    images = {p.name for p in (html / "_images").iterdir()}
    for example in examples:
        section = example.parent.relative_to(ROOT / "examples")
        page = html / "auto_examples" / section / f"{example.stem}.html"
        assert page.exists(), f"{example} has no page"
        assert f"sphx_glr_{example.stem}_001.png" in images, f"{example.name} drew nothing"
        assert "Warning" not in _example_output(page.read_text()), f"{example.name} warns"

    # The site's version is the package's (a .dev version between releases).
    index = (html / "index.html").read_text()
    assert f"skdfa {skdfa.__version__}" in index

    # The pages a new user looks for exist and the landing page links them.
    for name in ["faq", "glossary", "references", "user_guide/choosing_rule",
                 "user_guide/array_api"]:
        assert (html / f"{name}.html").exists(), name
        assert f'href="{name}.html' in index, f"the landing page does not link {name}"

    # The gallery's sections, in their order, starting with the learning rules.
    gallery = (html / "auto_examples" / "index.html").read_text()
    titles = ["Learning rules", "RD layers", "Stacking", "In practice"]
    positions = [gallery.find(f">{title}<") for title in titles]
    assert -1 not in positions and positions == sorted(positions), positions
    assert gallery.find("plot_dfa_vs_bp.html") < gallery.find("plot_alignment_angles.html")

    # The user guide's diagram and equations are there, rendered as MathML:
    # no page loads a math script from the network.
    dfa = (html / "user_guide" / "dfa.html").read_text()
    assert re.search(r'<img [^>]*src="[^"]*feedback_paths[^"]*\.png"', dfa)
    assert "<math" in dfa and "<mo>&#x02299;</mo>" in dfa  # the odot of a delta
    assert r"\delta_l" not in dfa  # no raw LaTeX left for a script to render
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r"<script[^>]*(mathjax|katex)", text, re.I), page
        # Nothing is loaded from another site (sphinx-gallery's
        # computation-times pages used to load jQuery and DataTables).
        assert not re.search(r"<script[^>]*src=\"(https?:)?//", text), page
        assert not re.search(r"<link[^>]*href=\"(https?:)?//[^\"]*\.(css|js)", text), page


def _example_output(page):
    """The text of a gallery page's captured outputs (stdout and stderr)."""
    outputs = re.findall(r'<div class="sphx-glr-script-out[^"]*">(.*?)</pre>', page, re.S)
    assert outputs, "no captured output: has sphinx-gallery's markup changed?"
    return "".join(outputs)


def _quick_start(path):
    """The pycon snippet under the "Quick start" heading of a README or page."""
    text = path.read_text()
    start = text.index("Quick start")
    if path.suffix == ".md":
        block = re.search(r"```pycon\n(.*?)```", text[start:], re.S).group(1)
    else:
        block = re.search(r"\.\. code-block:: pycon\n\n(.*?)(?=\n\S)", text[start:], re.S).group(1)
    return textwrap.dedent(block).strip()


def test_quick_start_is_one_snippet_that_runs_as_shown():
    readme = _quick_start(ROOT / "README.md")
    assert readme == _quick_start(ROOT / "docs" / "index.rst")
    test = doctest.DocTestParser().get_doctest(readme, {}, "quick start", "README.md", 0)
    assert len(test.examples) >= 5 and all(ex.want for ex in test.examples[-4:])
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner.run(test)
    assert runner.failures == 0
    assert not caught, [str(w.message) for w in caught]
