"""The ODE suite (``f2d2mini bench ode``): the teacher's likelihood against the exact density, and fixed-step
solvers against an adaptive reference.

``likelihood_vs_solver`` is the table that shows why few-step likelihoods need F2D2: the coupled ODE's
log-likelihood error of fixed-step solvers at K = 1, 2, 4, ... steps against an adaptive dopri5 reference, and
the dopri5 likelihood itself against the exact density.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from f2d2mini import checkpoint, ode, toy
from f2d2mini.reports import Table, median_seconds

__all__ = ["SolverRow", "Reference", "ReferenceSolve", "reference", "likelihood_vs_solver", "heldout", "load_saved",
           "ode_suite", "error_norm_suite", "HELDOUT_SEED"]

HELDOUT_SEED = 12345  # seed of the held-out evaluation points (training draws from its own seeded stream)


@dataclass(frozen=True)
class Reference:
    """The dopri5 likelihood of ``n`` held-out points against the exact density (nats)."""

    density: str
    n: int
    nll: float  # -mean log p_model(x)
    exact_entropy: float  # -mean log p_exact(x), a Monte Carlo estimate of the entropy on the same points
    entropy_stderr: float  # standard error of that estimate (0 for the uniform checkerboard)
    gap: float  # mean(log p_exact - log p_model) = nll - exact_entropy, an estimate of KL(p || p_model)
    nfe: int
    seconds: float


@dataclass(frozen=True)
class SolverRow:
    """One fixed-step solve of the coupled ODE compared with the dopri5 reference on the same points."""

    density: str
    solver: str
    steps: int
    nfe: int
    mean_error: float  # mean(log p_K - log p_dopri5)
    mean_abs_error: float  # mean |log p_K - log p_dopri5|
    error_vs_exact: float  # mean(log p_K - log p_exact)
    seconds: float  # median wall-clock of the solve over `repeats` runs


class ReferenceSolve(NamedTuple):
    """``summary`` of a dopri5 solve against the exact density, and its ``log_prob`` ``[n]`` per point."""

    summary: Reference
    log_prob: torch.Tensor


def reference(velocity, density: toy.Density, x: torch.Tensor, **solve_kwargs) -> ReferenceSolve:
    """dopri5 log-likelihood of ``x`` under ``velocity``, summarised against ``density.log_prob``."""
    start = time.perf_counter()
    res = ode.likelihood(velocity, x, "dopri5", **solve_kwargs)
    seconds = time.perf_counter() - start
    exact = density.log_prob(x)
    stderr = exact.std().item() / len(x) ** 0.5
    row = Reference(density.name, len(x), -res.log_prob.mean().item(), -exact.mean().item(), stderr,
                    (exact - res.log_prob).mean().item(), res.nfe, seconds)
    return ReferenceSolve(row, res.log_prob)


def likelihood_vs_solver(velocity, density: toy.Density, x: torch.Tensor, ref_log_prob: torch.Tensor,
                         solvers=("euler", "rk4"), steps=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
                         repeats: int = 1, progress: bool = True) -> list[SolverRow]:
    """Fixed-step coupled-ODE likelihoods of ``x`` against the dopri5 ``ref_log_prob`` and the exact density."""
    from tqdm.auto import tqdm

    exact = density.log_prob(x)
    rows = []
    jobs = [(s, k) for s in solvers for k in steps]
    for solver, k in tqdm(jobs, desc=f"solvers {density.name}", disable=not progress):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            res = ode.likelihood(velocity, x, solver, k)
            times.append(time.perf_counter() - start)
        err = res.log_prob - ref_log_prob
        rows.append(SolverRow(density.name, solver, k, res.nfe, err.mean().item(), err.abs().mean().item(),
                              (res.log_prob - exact).mean().item(), statistics.median(times)))
    return rows


def heldout(density: toy.Density, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` held-out points of ``density`` (seed :data:`HELDOUT_SEED`), on ``device``."""
    return density.sample(n, seed=HELDOUT_SEED).to(device)


def load_saved(path: Path, make: str, device: torch.device | str = "cpu"):
    """The model saved at ``path``; when it is missing, an error that names the command ``make`` that makes it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; make it with: {make}")
    return checkpoint.load(path, device)


def ode_suite(densities=("checkerboard", "gaussians8"), checkpoints: str | Path = checkpoint.DEFAULT_DIR,
              n: int = 10_000, n_sweep: int = 1000, max_steps: int = 1024,
              device: torch.device | str = "cpu") -> dict:
    """The saved teachers' dopri5 likelihood of ``n`` held-out points against the exact density, and Euler / RK4
    at K = 1, 2, 4, ..., ``max_steps`` against dopri5 on ``n_sweep`` of them. Returns ``{"tables": {name: Table},
    "report": {name: rows}}``, as every suite does."""
    steps = [2**i for i in range(max_steps.bit_length()) if 2**i <= max_steps]
    refs, rows = [], []
    for name in densities:
        model = load_saved(checkpoint.teacher_path(name, checkpoints), f"f2d2mini teacher --density {name}", device)
        density = toy.density(name)
        x = heldout(density, n, device)
        ref, ref_lp = reference(model, density, x)
        refs.append(ref)
        rows += likelihood_vs_solver(model, density, x[:n_sweep], ref_lp[:n_sweep], steps=steps)
    tables = {"reference": Table(refs, title="Teacher likelihood (dopri5, rtol = atol = 1e-5, exact divergence) "
                                             "against the exact density:"),
              "solvers": Table(rows, title=f"Fixed-step coupled ODE against dopri5 on {n_sweep} of those points:")}
    return {"tables": tables, "report": {name: table.rows for name, table in tables.items()}}


ERROR_NORM_POINTS = 2000  # points per case of the error-norm suite
ERROR_NORM_SEED = 7  # their seed


def _error_norm_cases(checkpoints: str | Path, device):
    """(name, velocity, points, exact log-density or None): two closed-form mixtures and the saved teachers."""
    thin, g8 = toy.thin_mixture(), toy.density("gaussians8")
    yield "gaussians8 (closed form)", g8.velocity, g8.sample(ERROR_NORM_POINTS, seed=ERROR_NORM_SEED), g8.log_prob
    yield "thin mixture (closed form)", thin.velocity, thin.sample(ERROR_NORM_POINTS, seed=ERROR_NORM_SEED), \
        thin.log_prob
    for name in ("checkerboard", "gaussians8"):
        teacher = load_saved(checkpoint.teacher_path(name, checkpoints), f"f2d2mini teacher --density {name}", device)
        yield f"{name} teacher", teacher, toy.density(name).sample(ERROR_NORM_POINTS, seed=ERROR_NORM_SEED), None


def error_norm_suite(checkpoints: str | Path = checkpoint.DEFAULT_DIR, device: torch.device | str = "cpu") -> dict:
    """``f2d2mini bench error-norm``: dopri5 (rtol = atol = 1e-5) with per-point against whole-batch error control,
    side by side: NFE, median time of 3 runs, and the error against the exact log-density where there is one."""
    rows = []
    for name, velocity, x, exact in _error_norm_cases(checkpoints, device):
        for norm in ode.ERROR_NORMS:
            res = ode.likelihood(velocity, x, "dopri5", error_norm=norm)
            seconds = median_seconds(lambda: ode.likelihood(velocity, x, "dopri5", error_norm=norm), 3)  # noqa: B023
            err = (res.log_prob - exact(x)).abs() if exact is not None else torch.full((1,), float("nan"))
            rows.append({"case": name, "error_norm": norm, "nfe": res.nfe, "seconds": seconds,
                         "max_error": err.max().item(), "mean_error": err.mean().item()})
    title = (f"dopri5 (rtol = atol = 1e-5) on {ERROR_NORM_POINTS} points: per-point ('sample') vs whole-batch "
             f"error control")
    table = Table(rows, {"seconds": ".2f", "max_error": ".1e", "mean_error": ".1e"}, title=title)
    return {"tables": {"error_norm": table}, "report": {"rows": rows}}

