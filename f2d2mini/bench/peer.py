"""The peer suite (``f2d2mini bench peer``): f2d2mini's ODE likelihood and its few-step maps against
facebookresearch/flow_matching's ``ODESolver.compute_likelihood`` on the same teacher, side by side in one run.

For each teacher, both libraries solve the coupled ODE with dopri5 (rtol = atol = 1e-5, exact divergence) on the
same held-out points: their mean and largest difference, each against the exact density, NFE. Then every map of
that teacher at K = 1, 2, 4, 8 against the peer's solve. Times are medians of :data:`REPEATS` calls on the first
:data:`TIME_POINTS` points, every method timed on the same points in the same run. flow_matching is an optional
extra (``pip install 'f2d2mini[peers]'``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from f2d2mini import base, checkpoint, flowmap, ode, toy
from f2d2mini.bench.solvers import heldout, load_saved
from f2d2mini.reports import Table, median_seconds

__all__ = ["peer_log_prob", "peer_suite", "REPEATS", "TIME_POINTS", "PEER_TOL", "PEER_MISSING"]

REPEATS = 3  # timed calls per method (median)
TIME_POINTS = 1000  # held-out points every method is timed on
PEER_TOL = 1e-5  # rtol = atol of both dopri5 solves (f2d2mini's ode.DEFAULT_TOL)
PEER_MISSING = "facebookresearch/flow_matching is not installed: pip install 'f2d2mini[peers]' (or flow_matching)"


def peer_log_prob(velocity, x: torch.Tensor, sigma0: float = 1.0, tol: float = PEER_TOL) -> torch.Tensor:
    """log p_1(x) ``[B]`` by flow_matching's ``ODESolver.compute_likelihood`` (dopri5, exact divergence) for an
    f2d2mini velocity ``v(x, t)``, with the base N(0, sigma0^2 I)."""
    try:
        from flow_matching.solver import ODESolver
        from flow_matching.utils import ModelWrapper
    except ImportError as err:
        raise ModuleNotFoundError(PEER_MISSING) from err

    class Wrapped(ModelWrapper):  # flow_matching calls model(x=x, t=t) with a scalar t; f2d2mini's models take it
        def forward(self, x, t, **extras):
            return self.model(x, t)

    solver = ODESolver(Wrapped(velocity))
    _, log_prob = solver.compute_likelihood(x, lambda z: base.log_prob(z, sigma0), step_size=None, method="dopri5",
                                            atol=tol, rtol=tol, exact_divergence=True,
                                            time_grid=torch.tensor([1.0, 0.0], device=x.device))
    return log_prob


def _nfe_counter(velocity):
    """``velocity`` with a count of its calls (``counted.calls``)."""

    def counted(x, t):
        counted.calls += 1
        return velocity(x, t)

    counted.calls = 0
    return counted


def peer_suite(densities=("checkerboard", "gaussians8"), rules=("shortcut", "meanflow", "lsd"), maps=(),
               checkpoints: str | Path = checkpoint.DEFAULT_DIR, n: int = 2000,
               device: torch.device | str = "cpu") -> dict:
    """The shipped teachers of ``densities`` under ``checkpoints`` with their maps of ``rules``, and the extra
    ``maps`` (paths of maps distilled from the first density's teacher, e.g. through :func:`f2d2mini.distill`).
    Returns ``{"tables": {name: Table}, "report": JSON-ready fields}``."""
    solves, rows = [], []
    extra = [(Path(p), load_saved(Path(p), "f2d2mini distill ...", device)) for p in maps]
    for name in densities:
        density = toy.density(name)
        teacher = load_saved(checkpoint.teacher_path(name, checkpoints), f"f2d2mini teacher --density {name}", device)
        sigma0 = base.resolve_sigma0(teacher, name="teacher")
        x = heldout(density, n, device)
        exact = density.log_prob(x)
        ours, counted = ode.likelihood(teacher, x, "dopri5"), _nfe_counter(teacher)
        peer = peer_log_prob(counted, x, sigma0)
        x_time = x[:TIME_POINTS]
        timed = f"({len(x_time)} points)"
        peer_s = median_seconds(lambda: peer_log_prob(teacher, x_time, sigma0), REPEATS)  # noqa: B023
        ours_s = median_seconds(lambda: ode.log_prob(teacher, x_time, "dopri5"), REPEATS)  # noqa: B023
        diff = ours.log_prob - peer
        solves.append({"density": name, "n": n, "mean |f2d2mini - peer|": diff.abs().mean().item(),
                       "max |f2d2mini - peer|": diff.abs().max().item(),
                       "f2d2mini gap to exact": (exact - ours.log_prob).mean().item(),
                       "peer gap to exact": (exact - peer).mean().item(), "f2d2mini nfe": ours.nfe,
                       "peer nfe": counted.calls, f"f2d2mini s {timed}": ours_s, f"peer s {timed}": peer_s})
        named = [(f"{rule} (shipped)", checkpoint.flow_map_path(name, rule, checkpoints)) for rule in rules]
        candidates = [(label, load_saved(path, f"f2d2mini distill --density {name} --rule {label.split()[0]}",
                                         device)) for label, path in named]
        if name == densities[0]:
            candidates += [(path.stem, model) for path, model in extra]
        for label, model in candidates:
            base.same_sigma0(teacher, model)
            for k in flowmap.EVAL_STEPS:
                seconds = median_seconds(lambda: model.log_prob(x_time, k), REPEATS)  # noqa: B023
                rows.append({"density": name, "map": label, "K": k,
                             "mae vs peer": (model.log_prob(x, k) - peer).abs().mean().item(),
                             "mean error vs peer": (model.log_prob(x, k) - peer).mean().item(),
                             f"seconds {timed}": seconds, "speedup vs peer": peer_s / seconds})
    solve_title = ("The teacher's dopri5 likelihood (rtol = atol = 1e-5, exact divergence): f2d2mini's ode.likelihood "
                   "against flow_matching's ODESolver.compute_likelihood, same points (nats):")
    map_title = f"Few-step maps against the peer's solve, same points; times: medians of {REPEATS} calls:"
    tables = {"solvers": Table(solves, {c: ".2e" for c in solves[0] if "|" in c}, title=solve_title),
              "maps": Table(rows, {"mae vs peer": ".4f", "mean error vs peer": "+.4f", "speedup vs peer": ".0f"},
                            title=map_title)}
    return {"tables": tables, "report": {"solvers": solves, "maps": rows}}
