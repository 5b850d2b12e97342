"""Run the book's MyST-markdown notebooks (book/*.md with a jupytext header) as tests through nbval.

nbval collects only ``.ipynb`` files and reads them with ``nbformat.read``. ``JupytextNotebookFile`` is
nbval's collector with that one read swapped for ``jupytext.read``, so each code cell of a text notebook
becomes a test item (``book/00_conventions.md::Cell 3``), no ``.ipynb`` is written, and the kernel runs in
``book/`` as it does in JupyterLab and Jupyter Book. Text notebooks store no outputs, so the checks are the
``assert`` cells themselves (``--nbval-lax``, set in pyproject.toml). Cell tags ``raises-exception`` and
``nbval-skip`` work.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbval import plugin as nbval_plugin

ROOT = Path(__file__).resolve().parent
BOOK = ROOT / "book"

collect_ignore_glob = ["book/*.ipynb", "book/_build/*", "_build/*", ".venv/*", "venv/*"]


def pytest_configure(config):
    # Notebook kernels inherit the environment: fast mode unless the caller chose otherwise (F2D2MINI_FAST=0).
    os.environ.setdefault("F2D2MINI_FAST", "1")


def is_text_notebook(path: Path) -> bool:
    """True for a MyST-markdown file whose YAML front matter has a jupytext header (format_name: myst)."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return False
    end = text.find("\n---", 4)
    front_matter = text[4:end] if end != -1 else ""
    return "jupytext:" in front_matter and "format_name: myst" in front_matter


def pytest_collect_file(file_path: Path, parent):
    options = parent.config.option
    nbval_on = getattr(options, "nbval", False) or getattr(options, "nbval_lax", False)
    if nbval_on and file_path.suffix == ".md" and file_path.parent == BOOK and is_text_notebook(file_path):
        return JupytextNotebookFile.from_parent(parent, path=file_path)
    return None


class _ReadWithJupytext:
    """Stands in for the ``nbformat`` module inside nbval: ``read`` parses the file with jupytext."""

    def read(self, path, as_version=4, **kwargs):
        import jupytext

        return jupytext.read(path, as_version=as_version)

    def __getattr__(self, name):
        return getattr(nbformat, name)


class JupytextNotebookFile(nbval_plugin.IPyNbFile):
    """nbval's notebook collector for a jupytext text notebook; the kernel runs in the file's folder."""

    def collect(self):
        original = nbval_plugin.nbformat
        nbval_plugin.nbformat = _ReadWithJupytext()  # nbval reads the file with nbformat.read
        try:
            yield from super().collect()
        finally:
            nbval_plugin.nbformat = original
