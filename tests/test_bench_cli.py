"""bench.cli, the ``f2d2mini bench SUITE`` command: where the JSON report goes (benchmarks/results/SUITE.json, with
the dataset for the suites of one, or --json), which budgets reach the suite, and bad arguments, which exit with
status 2 naming the value and the choices. Most tests stand a recording fake in for the suite: what is tested is the
command, not the benchmark."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import run

from f2d2mini import bench, checkpoint
from f2d2mini.bench import cli as bench_cli
from f2d2mini.bench import guidance, stepcost

torch.set_num_threads(1)

SUITES = ("ode", "f2d2", "digits", "mnist", "gpu", "ood", "seeds", "error-norm", "peer", "own", "guidance",
          "step-cost", "chunk-cost")


@pytest.fixture
def fake(monkeypatch):
    """``fake(name)`` stands a recorder in for ``f2d2mini.bench.<name>``; its calls (args, kwargs) are the list it
    returns. The fake suite prints one table, ``FAKE TABLE``, and reports ``{"rows": [{"x": 1}]}``."""

    def stand_in(name):
        calls = []

        def suite(*args, **kwargs):
            calls.append((args, kwargs))
            return {"tables": {"fake": "FAKE TABLE"}, "report": {"rows": [{"x": 1}]}}

        monkeypatch.setattr(bench, name, suite)
        return calls

    return stand_in


def test_a_per_dataset_suite_writes_suite_data_json_by_default(capsys, tmp_path, monkeypatch):
    """The real chunk-cost suite at its quick budget, run from an empty folder: its report is
    benchmarks/results/chunk_cost_digits.json there, and nothing else is written."""
    teacher, flow_map = (path.resolve() for path in (checkpoint.teacher_path("digits"),
                                                     checkpoint.flow_map_path("digits", "shortcut")))
    monkeypatch.chdir(tmp_path)
    code, text = run(capsys, "bench", "chunk-cost", "--quick", "--device", "cpu", "--teacher", str(teacher),
                     "--map", str(flow_map))
    assert code == 0 and "wrote benchmarks/results/chunk_cost_digits.json" in text
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [bench_cli.RESULTS_DIR / "chunk_cost_digits.json"]
    report = json.loads((tmp_path / bench_cli.RESULTS_DIR / "chunk_cost_digits.json").read_text())
    assert report["name"] == "digits" and [r["chunk"] for r in report["rows"]] == list(stepcost.CHUNK_QUICK.chunks)


@pytest.mark.parametrize("argv, suite, file", [
    (("step-cost", "--data", "mnist"), "step_cost_suite", "step_cost_mnist.json"),
    (("chunk-cost", "--data", "mnist"), "chunk_cost_suite", "chunk_cost_mnist.json"),
    (("guidance",), "guidance_suite", "guidance_digits.json"),  # --data digits by default
    (("error-norm",), "error_norm_suite", "error_norm.json"),  # not per dataset: no suffix, the dash an underscore
    (("ode",), "ode_suite", "ode.json"),
])
def test_default_report_path_is_the_suite_and_its_dataset(capsys, tmp_path, monkeypatch, fake, argv, suite, file):
    calls = fake(suite)
    monkeypatch.chdir(tmp_path)
    code, text = run(capsys, "bench", *argv, "--device", "cpu")
    assert code == 0 and len(calls) == 1 and "FAKE TABLE" in text and f"wrote benchmarks/results/{file}" in text
    report = json.loads((tmp_path / "benchmarks" / "results" / file).read_text())
    assert report["rows"] == [{"x": 1}] and report["device"] == "cpu"


def test_json_path_is_honoured(capsys, tmp_path, monkeypatch, fake):
    """--json: there (its folders made), and nothing under benchmarks/results; the MNIST suite's figure beside it."""
    fake("error_norm_suite")
    mnist = fake("mnist_cpu")
    monkeypatch.chdir(tmp_path)
    code, _ = run(capsys, "bench", "error-norm", "--device", "cpu", "--json", "out/deeper/norms.json")
    assert code == 0 and json.loads((tmp_path / "out" / "deeper" / "norms.json").read_text())["rows"] == [{"x": 1}]
    code, _ = run(capsys, "bench", "mnist", "--out", "ckpts", "--device", "cpu", "--json", "out/mnist.json")
    assert code == 0 and (tmp_path / "out" / "mnist.json").is_file()
    assert mnist[0][0][1] == Path("out/mnist.png")
    assert not (tmp_path / "benchmarks").exists()


def test_budgets_reach_the_suites(capsys, tmp_path, fake):
    """--quick picks the suite's quick config, and --chunks, --n, --lrs, --steps override its fields."""
    suites = {name: fake(name) for name in ("chunk_cost_suite", "guidance_suite", "step_cost_suite")}
    cases = [
        (("chunk-cost",), "chunk_cost_suite", stepcost.ChunkCostConfig()),
        (("chunk-cost", "--quick"), "chunk_cost_suite", stepcost.CHUNK_QUICK),
        (("chunk-cost", "--quick", "--chunks", "4", "12"), "chunk_cost_suite",
         replace(stepcost.CHUNK_QUICK, chunks=(4, 12))),
        (("guidance", "--data", "mnist"), "guidance_suite", guidance.RECIPES["mnist"]),
        (("guidance", "--quick", "--n", "50", "--lrs", "0.1", "0.2"), "guidance_suite",
         replace(guidance.QUICK, n=50, lrs=(0.1, 0.2))),
        (("step-cost", "--steps", "7"), "step_cost_suite", stepcost.StepCostConfig(steps=7)),
    ]
    for argv, suite, config in cases:
        code, _ = run(capsys, "bench", *argv, "--device", "cpu", "--json", str(tmp_path / "report.json"))
        assert code == 0 and suites[suite][-1][0][3] == config, argv


def test_step_cost_quick_runs_the_quick_budget(capsys, tmp_path, fake):
    """--quick without --steps keeps the quick budget's steps (a default --steps once replaced them)."""
    calls = fake("step_cost_suite")
    code, _ = run(capsys, "bench", "step-cost", "--quick", "--device", "cpu", "--json", str(tmp_path / "sc.json"))
    assert code == 0 and calls[0][0][3] == stepcost.QUICK


def test_bad_chunk_size_exits_2_and_names_it(capsys, tmp_path):
    path = tmp_path / "chunks.json"
    code, text = run(capsys, "bench", "chunk-cost", "--chunks", "8", "0", "--device", "cpu", "--json", str(path))
    assert code == 2 and "chunk must be an integer >= 1, got 0" in text and not path.exists()


@pytest.mark.parametrize("suite", bench_cli.PER_DATASET)
def test_bad_data_exits_2_and_lists_the_datasets(capsys, suite):
    code, text = run(capsys, "bench", suite, "--data", "cifar")
    assert code == 2 and "invalid choice: 'cifar'" in text and "'digits', 'mnist'" in text


def test_unknown_suite_exits_2_and_lists_the_suites(capsys):
    code, text = run(capsys, "bench", "nope")
    assert code == 2 and "invalid choice: 'nope'" in text and all(f"'{suite}'" in text for suite in SUITES)
