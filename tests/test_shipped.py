"""The shipped checkpoints in data/checkpoints/ load safely and still meet a loose accuracy bar."""

from pathlib import Path

import pytest
import torch

import f2d2mini as f2

CHECKPOINTS = Path(__file__).resolve().parent.parent / "data" / "checkpoints"
# The benchmark measures gaps of 0.03-0.07 nats with dopri5 on 10,000 points; RK4 with 8 steps on 1,000 points
# agrees with dopri5 to about 1e-3 nats, and the sample's standard error is below 0.05 nats for gaussians8.
LOOSE_GAP = 0.2
# K = 4 mean absolute error against the teacher measured on 2,000 points (checkerboard / gaussians8): lsd 0.15 / 0.09,
# shortcut 0.08 / 0.06, meanflow 0.27 / 0.27; a bar ~1.3-1.5x above the worst, so a broken file or load path fails.
LOOSE_K4_ERROR = {"lsd": 0.2, "shortcut": 0.12, "meanflow": 0.35}


@pytest.mark.parametrize("density", ["checkerboard", "gaussians8"])
def test_shipped_teacher_loads_and_is_accurate(density):
    path = CHECKPOINTS / f"teacher_{density}.pt"
    assert path.stat().st_size < 2_000_000
    model = f2.load(path)
    assert model.metadata["density"] == density and model.history.loss
    dens = f2.toy.density(density)
    x = dens.sample(1000, seed=2024)
    lp = f2.ode.log_prob(model, x, "rk4", 8)
    gap = (dens.log_prob(x) - lp).mean().item()
    assert abs(gap) < LOOSE_GAP, gap
    assert torch.isfinite(lp).all()


@pytest.mark.parametrize("density", ["checkerboard", "gaussians8"])
def test_shipped_flow_map_loads_and_matches_its_teacher(density):
    paths = sorted(CHECKPOINTS.glob(f"f2d2_*_{density}.pt"))
    assert paths, f"no shipped flow map for {density} in {CHECKPOINTS}"
    teacher = f2.load(CHECKPOINTS / f"teacher_{density}.pt")
    x = f2.toy.density(density).sample(1000, seed=2025)
    reference = f2.ode.log_prob(teacher, x, "rk4", 8)
    for path in paths:
        assert path.stat().st_size < 2_000_000
        model = f2.load(path)
        assert isinstance(model, f2.flowmap.JointFlowMap) and model.metadata["density"] == density
        err = (model.log_prob(x, steps=4) - reference).abs().mean().item()
        assert err < LOOSE_K4_ERROR[model.metadata["rule"]], (path.name, err)
