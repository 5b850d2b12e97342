"""The shipped checkpoints in data/checkpoints/ load safely and still meet a loose accuracy bar."""

import math
from pathlib import Path

import pytest
import torch

import f2d2mini as f2
from f2d2mini.bench.flowmaps import GRID_LIMIT

CHECKPOINTS = Path(__file__).resolve().parent.parent / "data" / "checkpoints"
# The benchmark measures gaps of 0.03-0.07 nats with dopri5 on 10,000 points; RK4 with 8 steps on 1,000 points
# agrees with dopri5 to about 1e-3 nats, and the sample's standard error is below 0.05 nats for gaussians8.
LOOSE_GAP = 0.2
# K = 4 mean absolute error against the teacher measured on 2,000 points (checkerboard / gaussians8): lsd 0.15 / 0.08,
# shortcut 0.07 / 0.06, meanflow 0.08 / 0.06; a bar ~1.3-1.5x above each, so a broken file or load path fails.
LOOSE_K4_ERROR = {"lsd": 0.2, "shortcut": 0.1, "meanflow": 0.11}
# On a 41 x 41 grid of [-6, 6]^2 against the teacher's RK4-128 likelihood (within 0.012 nats of dopri5 per point),
# the shipped maps measured, over K = 1, 2, 4, 8: |log of the grid integral| <= 0.06, mean abs error 0.10-0.37
# nats where the teacher's log p >= -10, largest overshoot 1.0-11.3 nats; a map trained on the data path alone has
# log-integrals of 1,500-3,300 and overshoots of the same size.
GRID, GRID_REFERENCE_STEPS = 41, 128
LOOSE_LOG_INTEGRAL, LOOSE_GRID_ERROR, LOOSE_OVERSHOOT = 0.1, 0.45, 15.0


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


@pytest.mark.parametrize("density", ["checkerboard", "gaussians8"])
def test_shipped_flow_maps_are_densities_on_the_whole_square(density):
    teacher = f2.load(CHECKPOINTS / f"teacher_{density}.pt")
    limit = GRID_LIMIT
    square = f2.plots.grid(limit, GRID)
    cell = (2 * limit / (GRID - 1)) ** 2
    reference = f2.ode.log_prob(teacher, square, "rk4", GRID_REFERENCE_STEPS)
    for path in sorted(CHECKPOINTS.glob(f"f2d2_*_{density}.pt")):
        model = f2.load(path)
        assert model.region is not None and model.region.contains(square).all(), path.name
        for k in f2.flowmap.EVAL_STEPS:
            score = f2.metrics.grid_score(model.log_prob(square, k), reference, cell)
            assert abs(math.log(score.integral)) < LOOSE_LOG_INTEGRAL, (path.name, k, score)
            assert score.mae < LOOSE_GRID_ERROR and score.overshoot < LOOSE_OVERSHOOT, (path.name, k, score)


# The benchmark's K-step bits per dim are deterministic (the same images and dequantization noise); across machines
# and thread counts float32 sums differ by ~1e-6 bpd.
RECOMPUTED_BPD = 1e-3


def test_shipped_mnist_models_are_the_recipes_and_the_benchmarks():
    """teacher_mnist.pt and f2d2_shortcut_mnist.pt were made by the MNIST CPU recipe as it stands, under 4 MiB each;
    the map's K-step bits per dim of the 1,000 held-out images are those in results/mnist_cpu.json; a test digit is
    inside its noise band and uniform noise is warned about; the digit's 4- and 8-jump landings agree, a black
    image's do not."""
    import json
    import warnings
    from dataclasses import asdict

    from f2d2mini.bench import mnist
    from f2d2mini.images import likelihood
    from f2d2mini.images import train as images_train

    try:
        held_out = mnist.splits()[1]
    except FileNotFoundError as err:
        pytest.skip(str(err))
    teacher = f2.load(CHECKPOINTS / "teacher_mnist.pt")
    model = f2.load(CHECKPOINTS / "f2d2_shortcut_mnist.pt")
    for saved, config in ((teacher, images_train.MNIST_CPU.teacher), (model, images_train.MNIST_CPU.distill)):
        assert saved.metadata["train_config"] == json.loads(json.dumps(asdict(config)))
    assert all((CHECKPOINTS / f).stat().st_size < 4 * 2**20 for f in ("teacher_mnist.pt", "f2d2_shortcut_mnist.pt"))
    report = json.loads((CHECKPOINTS.parents[1] / "benchmarks" / "results" / "mnist_cpu.json").read_text())
    images = held_out.images[:report["n_test"]]
    for k, row in mnist.map_rows(report["rows"]).items():
        assert abs(likelihood.bpd(model, images, k, levels=256).bpd - row["bpd"]) < RECOMPUTED_BPD, k
    digit = likelihood.dequantized(images[:1], 256, likelihood.DEQUANT_SEED, "cpu")
    noise = torch.rand(1, *model.event_shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert f2.flowmap.trusted(model, digit).all() and not f2.flowmap.trusted(model, noise).any()
    with pytest.warns(f2.coverage.OutsideRegionWarning, match="band"):
        f2.load(CHECKPOINTS / "f2d2_shortcut_mnist.pt").log_prob(noise, 4)
    black = likelihood.dequantized(torch.zeros_like(images[:1]), 256, likelihood.DEQUANT_SEED, "cpu")
    assert f2.consistency.consistent(model, digit).all() and not f2.consistency.consistent(model, black).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f2.load(CHECKPOINTS / "f2d2_shortcut_mnist.pt").log_prob(digit, 4)
