"""Benchmarks measured against exact densities (not timed tests): run through ``f2d2mini bench``.

``likelihood_vs_solver`` is the table that shows why few-step likelihoods need F2D2: the coupled ODE's
log-likelihood error of fixed-step solvers at K = 1, 2, 4, ... steps against an adaptive dopri5 reference, and
the dopri5 likelihood itself against the exact density.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch

from f2d2mini import ode, toy

__all__ = ["SolverRow", "Reference", "LikelihoodRow", "reference", "likelihood_vs_solver", "likelihood_row",
           "median_seconds", "format_table"]


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


def reference(velocity, density: toy.Density, x: torch.Tensor, **solve_kwargs) -> tuple[Reference, torch.Tensor]:
    """dopri5 log-likelihood of ``x`` under ``velocity``, summarised against ``density.log_prob``."""
    start = time.perf_counter()
    res = ode.likelihood(velocity, x, "dopri5", **solve_kwargs)
    seconds = time.perf_counter() - start
    exact = density.log_prob(x)
    stderr = exact.std().item() / len(x) ** 0.5
    row = Reference(density.name, len(x), -res.log_prob.mean().item(), -exact.mean().item(), stderr,
                    (exact - res.log_prob).mean().item(), res.nfe, seconds)
    return row, res.log_prob


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


def format_table(rows: list) -> str:
    """A plain-text table of dataclass or dict rows (floats to 4 significant digits)."""
    if not rows:
        return "(no rows)"
    dicts = [r if isinstance(r, dict) else asdict(r) for r in rows]
    cols = list(dicts[0])
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    widths = {c: max(len(c), *(len(cell(d[c])) for d in dicts)) for c in cols}
    lines = ["  ".join(c.rjust(widths[c]) for c in cols)]
    lines += ["  ".join(cell(d[c]).rjust(widths[c]) for c in cols) for d in dicts]
    return "\n".join(lines)


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


def median_seconds(fn, repeats: int = 5) -> float:
    """Median wall-clock of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
