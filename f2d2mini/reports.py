"""How results are reported, in the book, the benchmarks and the command line: tables (plain text for a terminal,
markdown for a notebook), JSON reports for ``benchmarks/results/``, and wall-clock times that wait for the GPU."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

__all__ = ["Table", "as_dicts", "write_report", "median_seconds", "synchronize", "DEFAULT_FORMAT"]

DEFAULT_FORMAT = ".4g"  # floats without a column format: 4 significant digits


def as_dicts(rows: Sequence) -> list[dict]:
    """Rows given as dicts, dataclasses or named tuples, as dicts (column name -> value)."""
    out = []
    for r in rows:
        if isinstance(r, Mapping):
            out.append(dict(r))
        elif dataclasses.is_dataclass(r):
            out.append(dataclasses.asdict(r))
        else:
            out.append(r._asdict())
    return out


class Table:
    """Rows of named values (dicts, dataclasses or named tuples), shown as plain text by ``print`` and as a markdown
    table by a notebook (``_repr_markdown_``). The columns are every row's names in order of appearance; a row
    without one shows an empty cell.

    Args:
        rows: the rows; their keys are the column names.
        formats: format specs per column (e.g. ``{"bpd": ".4f", "gap": "+.4f"}``); other floats use ``.4g``.
        title: a line printed above the table.
    """

    def __init__(self, rows: Sequence, formats: Mapping[str, str] | None = None, title: str | None = None):
        self.rows, self.formats, self.title = as_dicts(rows), dict(formats or {}), title
        self.columns = list(dict.fromkeys(c for r in self.rows for c in r))  # every row's, in order of appearance

    def _cell(self, column: str, value) -> str:
        if isinstance(value, float):
            return format(value, self.formats.get(column, DEFAULT_FORMAT))
        return format(value, self.formats[column]) if column in self.formats else str(value)

    def _cells(self) -> list[list[str]]:
        return [[self._cell(c, r[c]) if c in r else "" for c in self.columns] for r in self.rows]

    def text(self) -> str:
        """Right-aligned columns under their names."""
        if not self.rows:
            return "(no rows)"
        cells = self._cells()
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        return "\n".join(([self.title] if self.title else []) + lines)

    def markdown(self) -> str:
        """A GitHub/MyST pipe table (a ``|`` inside a name or value is escaped, so it cannot split a cell)."""
        def line(cells):
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        lines = [line(self.columns), "|" + "---|" * len(self.columns)]
        lines += [line(row) for row in self._cells()]
        return "\n".join(([f"**{self.title}**", ""] if self.title else []) + lines)

    __str__ = __repr__ = text
    _repr_markdown_ = markdown


def write_report(path: str | Path, device: torch.device | str, **fields) -> Path:
    """Writes ``fields`` as JSON (lists of rows as lists of dicts), with the device, torch version and threads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
              **{name: as_dicts(value) if isinstance(value, list) else value for name, value in fields.items()}}
    path.write_text(json.dumps(report, indent=1, default=str))
    return path


def synchronize(device: torch.device | str | None = None) -> None:
    """Waits for every queued CUDA kernel (GPU calls return before their work is done) on ``device`` (any GPU in use
    when ``None``); nothing on the CPU."""
    if device is None and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    elif device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median wall-clock of ``fn()`` over ``repeats`` calls, each timed from an idle GPU to the end of its work."""
    seconds = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)
