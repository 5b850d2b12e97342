"""bench.stepcost at tiny budgets: each rule's seconds per F2D2 training step and an evaluation's milliseconds per
image in chunks of each size (``f2d2mini bench step-cost`` and ``chunk-cost``), and the error that names a bad chunk
size."""

import json

import pytest
import torch
from helpers import run

from f2d2mini.bench import stepcost

torch.set_num_threads(1)


def _quick(capsys, tmp_path, suite: str) -> tuple[str, list[dict]]:
    """``f2d2mini bench SUITE --quick`` on the CPU: its printed text and its report's rows."""
    path = tmp_path / f"{suite}.json"
    code, text = run(capsys, "bench", suite, "--quick", "--device", "cpu", "--json", str(path))
    assert code == 0
    return text, json.loads(path.read_text())["rows"]


def test_bench_step_cost_quick(capsys, tmp_path):
    text, rows = _quick(capsys, tmp_path, "step-cost")
    assert "meanflow" in text
    assert [r["rule"] for r in rows] == ["shortcut", "meanflow"] and rows[0]["x first rule"] == 1.0
    assert all(r["median s/step"] > 0 for r in rows)


def test_bench_chunk_cost_quick(capsys, tmp_path):
    text, rows = _quick(capsys, tmp_path, "chunk-cost")
    assert "map jump ms/img" in text
    assert [r["chunk"] for r in rows] == list(stepcost.CHUNK_QUICK.chunks)
    for row in rows:
        assert row["teacher v + VJP ms/img"] > 0 and row["map jump ms/img"] > 0
        assert row["ratio"] == pytest.approx(row["teacher v + VJP ms/img"] / row["map jump ms/img"])


def test_chunk_cost_names_a_bad_chunk_size():
    with pytest.raises(ValueError, match="chunk"):
        stepcost.chunk_cost_suite("digits", config=stepcost.ChunkCostConfig(chunks=(8, 0)))
