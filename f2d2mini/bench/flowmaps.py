"""The F2D2 suite (``f2d2mini bench f2d2``): saved joint flow maps at K = 1, 2, 4, 8 against the exact density and
the teacher's dopri5 likelihood, their speed, their samples and self-guidance.

Likelihoods are graded per held-out point against the teacher's dopri5 value (what the map was distilled to
reproduce) and against the exact density; the teacher's own fixed-step solvers at the same number of network
evaluations (NFE) and the reference code's first-order reversal are graded beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from f2d2mini import base, checkpoint, flowmap, guidance, metrics, ode, toy
from f2d2mini.bench.solvers import HELDOUT_SEED, heldout, load_saved, reference
from f2d2mini.reports import Table, median_seconds

__all__ = ["LikelihoodRow", "likelihood_row", "GridRow", "Grid", "grid_reference", "grid_rows", "SampleReference",
           "sample_reference", "f2d2_suite", "GUIDANCE_LRS", "N_SAMPLES", "SAMPLE_JUMPS", "GRID_LIMIT", "GRID_SIZE",
           "GRID_REFERENCE", "GRID_CHUNK"]

GUIDANCE_LRS = (0.0, 0.05, 0.1, 0.2)  # self-guidance step sizes compared
N_SAMPLES = 4000  # samples per sample-quality measurement
SAMPLE_JUMPS = (1, 2, 4)  # jumps K of the sample-quality table
HELDOUT_DATA_SEED = HELDOUT_SEED + 1  # fresh data that samples are compared with
HELDOUT_NOISE_SEED = HELDOUT_SEED + 2  # the noise every sampler starts from
GRID_LIMIT, GRID_SIZE = 6.0, 121  # the grid suite: 121 x 121 points on [-6, 6]^2, a box around every toy density
GRID_REFERENCE = dict(solver="dopri5", max_nfe=20_000)  # the teacher's log-density on the grid: adaptive, each
# point's error controlled (a fixed-step solve misses badly where the teacher's field is stiff); chunks of GRID_CHUNK
# points, so that a stiff point sets the steps of its chunk only
GRID_CHUNK = 1024


@dataclass(frozen=True)
class LikelihoodRow:
    """A few-step log-likelihood of held-out data against the exact density and the teacher's dopri5 value."""

    density: str
    method: str  # e.g. "f2d2 shortcut", "f2d2 shortcut first-order", "teacher euler", "teacher rk4"
    nfe: int
    mean_error_exact: float  # mean(log p_K - log p_exact)
    mae_exact: float  # mean |log p_K - log p_exact|
    mean_error_teacher: float  # mean(log p_K - log p_teacher,dopri5)
    mae_teacher: float  # mean |log p_K - log p_teacher,dopri5|


def likelihood_row(density: toy.Density, method: str, nfe: int, log_prob: torch.Tensor, exact: torch.Tensor,
                   teacher_log_prob: torch.Tensor) -> LikelihoodRow:
    """Summarises one estimate ``log_prob`` [n] against the exact and the teacher's reference values."""
    e, t = log_prob - exact, log_prob - teacher_log_prob
    return LikelihoodRow(density.name, method, nfe, e.mean().item(), e.abs().mean().item(), t.mean().item(),
                         t.abs().mean().item())


@dataclass(frozen=True)
class GridRow:
    """A map's K-step density on a grid of ``size`` points per side on [-GRID_LIMIT, GRID_LIMIT]^2 against
    the teacher's ODE log-density there (see :class:`f2d2mini.metrics.GridScore`); the exact density's and the
    teacher's integrals on the same grid beside it."""

    density: str
    rule: str
    size: int
    steps: int
    integral: float
    teacher_integral: float
    exact_integral: float
    mae_mass: float  # mean |log p_K - log p_teacher| where log p_teacher >= -10
    off_by_1: float  # share of those points off by more than 1 nat
    overshoot: float  # largest log p_K - log p_teacher where either is >= -10


class Grid(NamedTuple):
    """The grid ``points`` ``[size * size, 2]``, the teacher's ODE log-density there (``reference``), the
    ``cell_area``, and the teacher's and the exact density's integrals on the grid."""

    size: int
    points: torch.Tensor
    reference: torch.Tensor
    cell_area: float
    teacher_integral: float
    exact_integral: float


def grid_reference(teacher, density: toy.Density, device: torch.device | str = "cpu", size: int = GRID_SIZE) -> Grid:
    """The grid of the suite (``size`` points per side) with the teacher's reference log-density there
    (:data:`GRID_REFERENCE`)."""
    from f2d2mini import plots

    x = plots.grid(GRID_LIMIT, size).to(device)
    cell = (2 * GRID_LIMIT / (size - 1)) ** 2
    reference = torch.cat([ode.log_prob(teacher, chunk, **GRID_REFERENCE) for chunk in x.split(GRID_CHUNK)])
    return Grid(size, x, reference, cell, metrics.grid_score(reference, reference, cell).integral,
                metrics.grid_score(density.log_prob(x), reference, cell).integral)


def grid_rows(model, rule: str, density: toy.Density, grid: Grid) -> list[GridRow]:
    """:class:`GridRow` s of ``model`` at K in ``flowmap.EVAL_STEPS`` on ``grid``."""
    rows = []
    for k in flowmap.EVAL_STEPS:
        score = metrics.grid_score(model.log_prob(grid.points, k), grid.reference, grid.cell_area)
        rows.append(GridRow(density.name, rule, grid.size, k, score.integral, grid.teacher_integral,
                            grid.exact_integral, score.mae, score.off_by_1, score.overshoot))
    return rows


class SampleReference(NamedTuple):
    """Fresh ``data`` and the ``noise`` every sampler starts from (:data:`N_SAMPLES` each, held-out seeds), and the
    sliced W2 of the teacher's samples from that noise to the data (``swd_teacher``)."""

    data: torch.Tensor
    noise: torch.Tensor
    swd_teacher: float


def sample_reference(teacher, density: toy.Density, device: torch.device | str = "cpu") -> SampleReference:
    """What a sample-quality row is measured against (the teacher samples with :func:`f2d2mini.ode.sample`)."""
    data = density.sample(N_SAMPLES, seed=HELDOUT_DATA_SEED).to(device)
    noise = base.sample(N_SAMPLES, (density.dim,), seed=HELDOUT_NOISE_SEED, device=device)
    return SampleReference(data, noise, metrics.sliced_wasserstein(ode.sample(teacher, noise), data))


def f2d2_suite(rules=("shortcut", "meanflow", "lsd"), densities=("checkerboard", "gaussians8"),
               checkpoints: str | Path = checkpoint.DEFAULT_DIR, n: int = 10_000,
               device: torch.device | str = "cpu", grid_size: int = GRID_SIZE) -> dict:
    """Every saved map ``f2d2_RULE_DENSITY.pt`` under ``checkpoints`` with its teacher. Returns ``{"tables": {name:
    Table}, "report": {name: rows}}``, as every suite does."""
    tables = {"likelihood": [], "grid": [], "speed": [], "samples": [], "guidance": []}
    for name in densities:
        density = toy.density(name)
        teacher = load_saved(checkpoint.teacher_path(name, checkpoints), f"f2d2mini teacher --density {name}",
                             device)
        x = heldout(density, n, device)
        ref = reference(teacher, density, x)
        exact = density.log_prob(x)
        tables["likelihood"] += _teacher_rows(teacher, density, x, exact, ref.log_prob)
        grid = grid_reference(teacher, density, device, grid_size)
        data, noise, swd_teacher = sample_reference(teacher, density, device)
        for rule in rules:
            model = load_saved(checkpoint.flow_map_path(name, rule, checkpoints),
                               f"f2d2mini distill --density {name} --rule {rule}", device)
            base.same_sigma0(teacher, model)
            tables["likelihood"] += _map_rows(model, rule, density, x, exact, ref.log_prob)
            tables["grid"] += grid_rows(model, rule, density, grid)
            k4 = median_seconds(lambda: model.log_prob(x, 4))  # noqa: B023
            tables["speed"].append({"density": name, "rule": rule, "n": n, "k4_seconds": k4,
                                    "dopri5_seconds": ref.summary.seconds, "dopri5_nfe": ref.summary.nfe,
                                    "speedup": ref.summary.seconds / k4, "train_seconds": _train_seconds(model)})
            for k in SAMPLE_JUMPS:
                swd = metrics.sliced_wasserstein(model.sample(noise, k), data)
                tables["samples"].append({"density": name, "rule": rule, "steps": k, "swd": swd,
                                          "swd_teacher_100": swd_teacher, "ratio": swd / swd_teacher})
            tables["guidance"] += _guidance_rows(model, rule, density, noise, data)
    titles = {"likelihood": "Log-likelihood error (nats) of held-out points",
              "grid": f"K-step density on a {grid_size} x {grid_size} grid on [-{GRID_LIMIT:g}, {GRID_LIMIT:g}]^2 "
                      "against the teacher's ODE (dopri5, per-point error control)",
              "speed": "K = 4 likelihood against dopri5, same run", "samples": "Sample distance to fresh data "
              "(sliced W2)", "guidance": "Self-guidance, 1-step samples"}
    tables = {key: Table(rows, title=f"{titles[key]}:") for key, rows in tables.items()}
    return {"tables": tables, "report": {name: table.rows for name, table in tables.items()}}


def _teacher_rows(teacher, density, x, exact, ref_log_prob) -> list[LikelihoodRow]:
    """The teacher's Euler at K NFE and RK4 at K NFE (K / 4 steps), K in ``flowmap.EVAL_STEPS``."""
    rows = []
    for k in flowmap.EVAL_STEPS:
        for solver, steps in (("euler", k), ("rk4", k // 4)):
            if steps:
                lp = ode.likelihood(teacher, x, solver, steps).log_prob
                rows.append(likelihood_row(density, f"teacher {solver}", k, lp, exact, ref_log_prob))
    return rows


def _map_rows(model, rule, density, x, exact, ref_log_prob) -> list[LikelihoodRow]:
    """Backward jumps and the first-order reversal, K in ``flowmap.EVAL_STEPS``."""
    rows = []
    for k in flowmap.EVAL_STEPS:
        for reversal in flowmap.REVERSALS:
            method = f"f2d2 {rule}" + (" first-order" if reversal == "first_order" else "")
            rows.append(likelihood_row(density, method, k, model.log_prob(x, k, reversal=reversal), exact,
                                       ref_log_prob))
    return rows


def _guidance_rows(model, rule, density, noise, data) -> list[dict]:
    """One-step samples after self-guidance at each of :data:`GUIDANCE_LRS` (0: none)."""
    rows = []
    for lr in GUIDANCE_LRS:
        x1 = model.sample(guidance.self_guide(model, noise, lr) if lr > 0 else noise, 1)
        inside = torch.isfinite(density.log_prob(x1))
        rows.append({"density": density.name, "rule": rule, "lr": lr,
                     "mean_log_p_inside": density.log_prob(x1[inside]).mean().item(),
                     "support": inside.double().mean().item(), "spread": x1.std(0).mean().item(),
                     "swd": metrics.sliced_wasserstein(x1, data)})
    return rows


def _train_seconds(model) -> float:
    history = getattr(model, "history", None)
    return history.seconds if history is not None else float("nan")
