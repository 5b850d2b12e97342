"""The book's code fits its page: no code-cell line of book/*.md is longer than 88 characters.

The built pages' content column shows about 88 characters of code; longer lines are clipped. Each chapter is
converted by jupytext to a notebook (.ipynb) in a temporary folder and checked with ruff (E501 at 88; ruff lints
the code cells of notebooks), so the rule is the linter's; a second check counts UTF-8 bytes, as
``awk 'length($0) > 88'`` does on the .md files.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p for p in (ROOT / "book").glob("*.md") if p.read_text(encoding="utf-8").startswith("---\n"))
MAX_LINE = 88
CODE_CELL_RE = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)


def ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    return [exe] if exe else [sys.executable, "-m", "ruff"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 8


def test_code_cell_lines_fit_in_bytes():
    long = [f"{p.name}: {len(line.encode())} bytes: {line.strip()[:60]}"
            for p in CHAPTERS for cell in CODE_CELL_RE.findall(p.read_text(encoding="utf-8"))
            for line in cell.splitlines() if len(line.encode()) > MAX_LINE]
    assert not long, "code lines longer than 88 bytes:\n" + "\n".join(long)


def test_ruff_finds_no_long_line_in_the_notebooks(tmp_path):
    jupytext = pytest.importorskip("jupytext")
    for chapter in CHAPTERS:
        notebook = jupytext.read(chapter)
        jupytext.write(notebook, tmp_path / f"{chapter.stem}.ipynb")
    result = subprocess.run(
        [*ruff(), "check", "--no-cache", "--isolated", "--select", "E501", "--line-length", str(MAX_LINE),
         "--output-format", "concise", str(tmp_path)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"ruff E501 (line length {MAX_LINE}) on the book's code:\n{result.stdout}"


def test_ruff_flags_a_long_line(tmp_path):
    """The check above is live: a notebook with a 100-character code line fails it."""
    jupytext = pytest.importorskip("jupytext")
    text = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n\n"
    text += f"```{{code-cell}} ipython3\nx = '{'a' * 100}'\n```\n"
    jupytext.write(jupytext.reads(text, fmt="md:myst"), tmp_path / "long.ipynb")
    result = subprocess.run([*ruff(), "check", "--no-cache", "--isolated", "--select", "E501", "--line-length",
                             str(MAX_LINE), str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "E501" in result.stdout
