"""train: the 2-D flow-matching teacher on tiny budgets (learns the closed-form velocity, reproducibly, on the
CPU by default)."""

import dataclasses

import torch

import f2d2mini as f2
from f2d2mini.nets import MLPConfig

TINY = f2.train.TeacherConfig(steps=300, batch_size=256, lr=3e-3, warmup=20, log_every=50, progress=False,
                              time_power=1.0, net=MLPConfig(width=64, depth=2, time_frequencies=4))


def test_teacher_learns_the_gmm_velocity():
    """A short run moves the loss toward its floor and the velocity toward the closed form."""
    gmm = f2.toy.density("gaussians8")
    model = f2.train.teacher(gmm, TINY, seed=0)
    hist = model.history
    assert hist.step == [50, 100, 150, 200, 250, 300] and hist.seconds > 0
    assert model.metadata["density"] == "gaussians8" and model.metadata["train_config"]["steps"] == TINY.steps
    assert model.metadata["train_config"]["device"] == "cpu"  # TINY keeps TeacherConfig's default device
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
