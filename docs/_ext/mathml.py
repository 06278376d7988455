"""Render the documentation's math as MathML when the HTML is built.

Browsers display MathML natively, so the pages need no JavaScript and no
network: MathJax would otherwise be loaded from a CDN and, offline, every
formula would show as raw ``\\(...\\)``. The LaTeX is converted by
`latex2mathml <https://pypi.org/project/latex2mathml/>`_ (pure Python, in the
``docs`` and ``test`` extras). Enable with ``html_math_renderer = "mathml"``.
"""

from html import escape

from docutils import nodes
from latex2mathml.converter import convert
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _mathml(latex, display, node):
    try:
        return convert(latex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises its own exception types
        # A warning names the page and line (and fails the -W build); the
        # page shows the LaTeX source meanwhile.
        logger.warning("cannot render math %r as MathML: %s", latex, exc, location=node)
        return f"<code>{escape(latex)}</code>"


def visit_math(self, node):
    self.body.append(
        self.starttag(node, "span", "", CLASS="math notranslate")
        + _mathml(node.astext(), False, node)
        + "</span>"
    )
    raise nodes.SkipNode


def visit_displaymath(self, node):
    # Equations separated by blank lines become one block each, as with
    # Sphinx's own renderers; ``nowrap`` content stays one block.
    latex = node.astext()
    parts = [latex] if node.get("nowrap") else [p for p in latex.split("\n\n") if p.strip()]
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):
        self.body.append(f'<span class="eqno">({node["number"]})</span>')
    self.body.extend(_mathml(part, True, node) for part in parts)
    self.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer(
        "mathml",
        inline_renderers=(visit_math, None),
        block_renderers=(visit_displaymath, None),
    )
    return {"parallel_read_safe": True, "parallel_write_safe": True}
