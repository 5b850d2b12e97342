"""The training loop and the flow-matching teacher, on tiny budgets."""

import dataclasses

import pytest
import torch

import f2d2mini as f2
from f2d2mini.nets import MLPConfig

TINY = f2.train.TeacherConfig(steps=300, batch_size=256, lr=3e-3, warmup=20, log_every=50, progress=False,
                              time_power=1.0, net=MLPConfig(width=64, depth=2, time_frequencies=4))


def test_config_is_frozen_and_runs_on_cpu():
    config = f2.train.TeacherConfig()
    assert config.device == "cpu"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 1


def test_each_rule_has_its_own_cpu_defaults():
    assert f2.train.distill_config("lsd") == f2.train.DistillConfig()
    shortcut = f2.train.distill_config("shortcut", lr=1e-4)
    assert shortcut.steps == f2.train.RULE_CHANGES["shortcut"]["steps"] and shortcut.lr == 1e-4
    meanflow = f2.train.distill_config("meanflow")
    assert meanflow.adaptive_power == 0.0 and meanflow.device == "cpu"
    assert set(f2.train.RULE_CHANGES) == set(f2.losses.RULES)
    with pytest.raises(ValueError, match="'euler'.*shortcut"):
        f2.train.distill_config("euler")


def test_learning_rate_warms_up_then_decays():
    config = f2.train.LoopConfig(steps=100, warmup=10, final_lr_ratio=0.1)
    factors = [f2.train._lr_factor(s, config) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


def test_teacher_learns_the_gmm_velocity():
    """A short run moves the loss toward its floor and the velocity toward the closed form."""
    gmm = f2.toy.density("gaussians8")
    model = f2.train.teacher(gmm, TINY, seed=0)
    hist = model.history
    assert hist.step == [50, 100, 150, 200, 250, 300] and hist.seconds > 0
    assert hist.loss[-1] < 0.8 * hist.loss[0]
    t = torch.rand(2000)
    x = f2.losses.interpolate(torch.randn(2000, 2), gmm.sample(2000, seed=9), t)  # x_t on the path
    with torch.no_grad():
        err = (model(x, t) - gmm.velocity(x, t)).pow(2).sum(1).mean()
        zero = gmm.velocity(x, t).pow(2).sum(1).mean()
    assert err < 0.25 * zero
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_teacher_is_reproducible():
    cfg = dataclasses.replace(TINY, steps=20)
    a = f2.train.teacher(f2.toy.density("moons"), cfg, seed=1)
    b = f2.train.teacher(f2.toy.density("moons"), cfg, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        f2.train.teacher(f2.toy.density("moons"), dataclasses.replace(TINY, steps=0))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        f2.train.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            f2.train.resolve_device("cuda")


def test_diverging_loss_stops_with_a_clear_error():
    def loss_fn(model, step, gen):
        return f2.losses.LossOutput(torch.tensor(float("nan"), requires_grad=True), {})

    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        f2.train.fit(torch.nn.Linear(2, 2), loss_fn, dataclasses.replace(TINY, steps=5))


def test_grid_pairs_are_single_steps_of_the_evaluation_grids():
    from f2d2mini.train import _grid_pairs

    t, s = _grid_pairs(4000, (1, 2, 4, 8), torch.Generator().manual_seed(0))
    gap = (s - t).abs()
    steps = torch.round(1 / gap)
    assert set(steps.tolist()) == {1.0, 2.0, 4.0, 8.0}  # every K is drawn, one step of 1/K each
    torch.testing.assert_close(gap * steps, torch.ones_like(gap))
    torch.testing.assert_close(t * steps, torch.round(t * steps))  # t and s on the grid k / K
    torch.testing.assert_close(s * steps, torch.round(s * steps))
    backward = (s < t).double().mean().item()
    assert abs(backward - 0.5) < 5 * 0.5 / 4000**0.5  # both directions, equally often
