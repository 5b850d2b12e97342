"""The flow-matching teacher and the 2-D distillation settings, on tiny budgets."""

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
    assert f2.train.distill_config("lsd") == dataclasses.replace(f2.train.DistillConfig(), adaptive_power=0.5)
    shortcut = f2.train.distill_config("shortcut", lr=1e-4)
    assert shortcut.steps == f2.distillation.RULE_CHANGES["shortcut"]["steps"] and shortcut.lr == 1e-4
    meanflow = f2.train.distill_config("meanflow")
    assert meanflow.lr == 2e-3 and meanflow.adaptive_power == 0.5 and meanflow.device == "cpu"
    assert all(f2.train.distill_config(rule).coverage_fraction > 0 for rule in f2.losses.RULES)
    assert set(f2.distillation.RULE_CHANGES) == set(f2.losses.RULES)
    with pytest.raises(ValueError, match="'euler'.*shortcut"):
        f2.train.distill_config("euler")


def test_teacher_learns_the_gmm_velocity():
    """A short run moves the loss toward its floor and the velocity toward the closed form."""
    gmm = f2.toy.density("gaussians8")
    model = f2.train.teacher(gmm, TINY, seed=0)
    hist = model.history
    assert hist.step == [50, 100, 150, 200, 250, 300] and hist.seconds > 0
    assert model.metadata["density"] == "gaussians8" and model.metadata["train_config"]["steps"] == TINY.steps
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
