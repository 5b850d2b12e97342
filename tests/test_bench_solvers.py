"""bench.solvers: ``f2d2mini bench ode`` (the teachers' likelihood against the exact entropy, fixed-step solvers
against dopri5) writes its table and JSON, and names the command that makes a missing teacher; the dopri5 reference and
the fixed-step rows of the closed-form mixture's exact velocity against its exact density."""

import json

import pytest
from helpers import GMM, run, tiny_teacher

from f2d2mini.bench import solvers


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


def test_reference_and_fixed_step_rows_of_the_exact_velocity():
    """With the mixture's exact velocity the dopri5 reference is the exact density (its gap is the solver's error),
    and RK4's rows against it shrink with the steps to the reference's own accuracy."""
    x = solvers.heldout(GMM, 200)
    exact = GMM.log_prob(x)
    summary, log_prob = solvers.reference(GMM.velocity, GMM, x)
    # dopri5 at rtol = atol = 1e-5 per step, in float32: within ~3e-4 nats of the exact log-density per point
    assert (log_prob - exact).abs().max().item() < 1e-3 and abs(summary.gap) < 1e-3
    assert (summary.density, summary.n, summary.nfe > 0) == ("gaussians8", 200, True)
    assert summary.exact_entropy == pytest.approx(-exact.mean().item())
    assert summary.nll - summary.exact_entropy == pytest.approx(summary.gap, abs=1e-5)  # float32 sums of ~3 nats
    assert summary.entropy_stderr == pytest.approx(exact.std().item() / 200**0.5)
    rows = solvers.likelihood_vs_solver(GMM.velocity, GMM, x, log_prob, solvers=("rk4",), steps=(1, 4, 16),
                                        progress=False)
    assert [(r.solver, r.steps, r.nfe) for r in rows] == [("rk4", 1, 4), ("rk4", 4, 16), ("rk4", 16, 64)]
    errors = [r.mean_abs_error for r in rows]
    # RK4's error falls as h^4: measured 0.41, 0.026, 6e-5 nats; 16 steps lie within 1e-3 of dopri5
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-3
    for r in rows:  # error against the exact density = error against the reference + the reference's own
        assert r.error_vs_exact == pytest.approx(r.mean_error - summary.gap, abs=1e-5)
