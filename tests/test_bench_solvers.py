"""bench.solvers: ``f2d2mini bench ode`` (the teachers' likelihood against the exact entropy, fixed-step solvers
against dopri5) writes its table and JSON, and names the command that makes a missing teacher."""

import json

from helpers import run, tiny_teacher


def test_bench_ode_writes_a_table_and_json(capsys, tmp_path):
    ckpts = tmp_path / "ckpts"
    tiny_teacher(capsys, ckpts / "teacher_gaussians8.pt")
    out = tmp_path / "ode.json"
    code, text = run(capsys, "bench", "ode", "--densities", "gaussians8", "--checkpoints", str(ckpts), "--n", "100",
                     "--n-sweep", "20", "--max-steps", "4", "--json", str(out), "--device", "cpu")
    assert code == 0 and "exact_entropy" in text and "mean_abs_error" in text
    report = json.loads(out.read_text())
    assert [(r["solver"], r["steps"]) for r in report["solvers"]] == [
        ("euler", 1), ("euler", 2), ("euler", 4), ("rk4", 1), ("rk4", 2), ("rk4", 4)]
    assert report["reference"][0]["nfe"] > 0


def test_bench_without_checkpoints_names_the_command(capsys, tmp_path):
    code, text = run(capsys, "bench", "ode", "--densities", "rings", "--checkpoints", str(tmp_path))
    assert code == 2 and "f2d2mini teacher --density rings" in text
