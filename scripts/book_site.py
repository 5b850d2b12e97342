"""Sphinx extension for the built book (``_config.yml``: ``sphinx.local_extensions``): pages that need no network
and show no tracebacks.

- Jupyter Book 1 always loads sphinx-thebe, which puts its configuration script on every page twice (a console
  error: ``THEBE_JS_URL`` declared twice) and would fetch thebe from a CDN on demand. The book has no launch
  buttons, so thebe's scripts are taken off every page. (MathJax comes from the build through the
  ``sphinx-mathjax-offline`` extension, and the sliders are plain HTML: ``f2d2mini.plots.slider``.)
- A cell tagged ``raises-exception`` shows, in the pages, the error the library raised (``ValueError: ...``), not
  the whole traceback with the builder's file paths. JupyterLab still shows the full traceback.
"""

from __future__ import annotations

import re

from docutils import nodes

_HEADER_RE = re.compile(r"^(\w[\w.]*)\s+Traceback \(most recent call last\)", re.M)


def _is_thebe(script) -> bool:
    filename = str(getattr(script, "filename", script) or "")
    body = str(getattr(script, "attributes", {}).get("body", ""))
    return "thebe" in filename or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: remove sphinx-thebe's scripts from the page."""
    if "script_files" in context:
        context["script_files"] = [s for s in context["script_files"] if not _is_thebe(s)]


def short_error(traceback: str) -> str:
    """The last part of an IPython traceback: ``Name: message`` (the message may span lines)."""
    lines = traceback.rstrip().splitlines()
    header = _HEADER_RE.search(traceback)
    if header:
        name = header.group(1)
        for k in range(len(lines) - 1, -1, -1):
            if lines[k] == name or lines[k].startswith(f"{name}: "):
                return "\n".join(lines[k:])
    return lines[-1] if lines else traceback


def shorten_tracebacks(app, doctree) -> None:
    """``doctree-read``: replace the text of each error output (myst-nb's ``output traceback`` block)."""
    for block in list(doctree.findall(nodes.literal_block)):
        if "traceback" in block.get("classes", []):
            text = short_error(block.astext())
            block.children = []
            block += nodes.Text(text)
            block.rawsource = text


def setup(app):
    app.connect("html-page-context", drop_thebe, priority=900)  # after the extensions that add scripts
    app.connect("doctree-read", shorten_tracebacks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
