"""bench.own (``f2d2mini bench own``), its wine part: the split, a velocity written and trained in plain PyTorch that
learns the held-out rows, a hidden teacher that gets a fresh map, and the suite end to end on shrunk budgets."""

import math
import warnings

import pytest
import torch
from sklearn.datasets import load_wine

import f2d2mini as f2
from f2d2mini import adapters, base, flowmap, ode, student
from f2d2mini.bench import own

torch.set_num_threads(1)


def test_wine_is_a_seeded_disjoint_split_standardised_on_its_training_rows():
    train, test = own.wine()
    assert train.shape == (148, own.WINE_FEATURES) and test.shape == (own.WINE_HELDOUT, own.WINE_FEATURES)
    assert torch.cdist(test, train).min() > 0 and len(torch.unique(torch.cat([train, test]), dim=0)) == 178
    assert train.mean(0).abs().max() < 1e-5 and (train.std(0) - 1).abs().max() < 1e-5  # float32 sums of 148 rows
    assert test.mean(0).abs().max() > 1e-2  # the held-out rows are scaled with the training rows' statistics
    again, other = own.wine(), own.wine(seed=1)
    assert torch.equal(again[0], train) and torch.equal(again[1], test) and not torch.equal(other[1], test)

    def standard(x):  # each column up to its own affine map: the rows are wine's 178 rows, every one of them
        x = x.sort(0).values
        return (x - x.mean(0)) / x.std(0)

    raw = torch.from_numpy(load_wine().data).float()
    torch.testing.assert_close(standard(torch.cat([train, test])), standard(raw), rtol=0, atol=1e-5)


def test_plain_velocity_takes_x_and_a_batch_of_times():
    torch.manual_seed(0)
    model = own.PlainVelocity(5, width=16, depth=2)
    assert sum(isinstance(m, torch.nn.Linear) for m in model.net) == 3 and model.net[0].in_features == 6
    x, t = torch.randn(7, 5), torch.full((7,), 0.3)
    out = model(x, t)
    assert out.shape == (7, 5)
    assert torch.equal(model(x, torch.tensor(0.3)), out)  # a 0-d time is every point's
    assert not torch.allclose(model(x, torch.full((7,), 0.8)), out)  # t is an input


def test_plain_teacher_learns_the_held_out_wine_rows():
    """On its real budget the teacher's dopri5 NLL of the held-out rows (measured 13.5 nats) is well below the base
    N(0, I)'s (18.4; an untrained teacher gives the same) and within a nat of the Gaussian fit's (14.5); the teacher
    carries the base to the data (adapters.check_velocity warns when it does not)."""
    train, test = own.wine()
    teacher = own.plain_teacher(train, **own.WINE_TEACHER)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    nll = -ode.log_prob(teacher, test, "dopri5").mean().item()
    base_nll = -base.log_prob(test).mean().item()
    gaussian = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
    gaussian_nll = -gaussian.log_prob(test).mean().item()
    assert nll < gaussian_nll + 1 < base_nll - 2, (nll, gaussian_nll, base_nll)
    with warnings.catch_warnings():
        warnings.simplefilter("error", adapters.TeacherWarning)
        adapters.check_velocity(teacher, base.Batch(torch.randn(train.shape), train))


def test_a_hidden_teacher_gets_a_fresh_map_not_a_warm_started_copy():
    torch.manual_seed(0)
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(dim=3, width=8, depth=1, time_frequencies=2))
    hidden = own._Hidden(teacher)
    x, t = torch.randn(5, 3), torch.rand(5)
    assert torch.equal(hidden(x, t), teacher(x, t)) and base.sigma0_of(hidden) is None
    config = f2.distillation.DistillConfig(div_scale=3.0)
    warm, fresh = student.student_map(teacher, (3,), config), student.student_map(hidden, (3,), config)
    assert warm.config.width == 8
    torch.testing.assert_close(warm(x, t, t).u, teacher(x, t))  # the warm start: u(x, t, s) = v(x, t)
    expected = student.default_net((3,), base.SIGMA0)
    assert fresh.config == f2.flowmap.FlowMapConfig(**vars(expected), div_scale=3.0)
    assert not torch.allclose(fresh(x, t, t).u, teacher(x, t))


def test_the_wine_suite_end_to_end_on_shrunk_budgets(monkeypatch, tmp_path):
    """One likelihood row per K and reversal, finite errors, a map faster than the teacher's dopri5, and the runs."""
    monkeypatch.setattr(own, "WINE_TEACHER", {**own.WINE_TEACHER, "steps": 50})
    monkeypatch.setattr(own, "WINE_DISTILL", {**own.WINE_DISTILL, "steps": 20, "warm_steps": 5, "batch_size": 128,
                                              "coverage_points": 50, "progress": False})
    monkeypatch.setattr(own, "WINE_REFERENCE_REPEATS", 1)
    result = own.own_suite(parts=("wine",), out=tmp_path)
    assert set(result["tables"]) == {"runs", "likelihood"} and result["report"]["grid"] == []
    rows = result["report"]["likelihood"]
    assert sorted((r["K"], r["reversal"]) for r in rows) == sorted(
        (k, rev) for k in flowmap.EVAL_STEPS for rev in flowmap.REVERSALS)
    assert all(r["data"] == "wine" and math.isfinite(r["mae"]) and r["speedup vs dopri5"] > 0 for r in rows)
    teacher_run, map_run = result["report"]["runs"]
    assert teacher_run["d"] == map_run["d"] == own.WINE_FEATURES and teacher_run["rows"] == map_run["rows"] == 148
    assert map_run["steps"] == 20 and map_run["map"] == "plain_teacher"
    assert teacher_run["base NLL held-out"] == pytest.approx(-base.log_prob(own.wine()[1]).mean().item())
    assert all(math.isfinite(teacher_run[k]) for k in ("teacher NLL held-out", "teacher NLL train",
                                                        "gaussian fit NLL held-out"))
    saved = f2.load(tmp_path / "f2d2_shortcut_wine_plain_teacher.pt")
    assert saved.config.width == own.WINE_WIDTH and saved.config.dim == own.WINE_FEATURES
