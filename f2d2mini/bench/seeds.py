"""Seeds (``f2d2mini bench seeds``): one rule's CPU defaults trained from scratch under several seeds, so that a
claim such as "MeanFlow no longer diverges" rests on more than one run.

Each run distils the shipped teacher with :func:`f2d2mini.train.distill_config` ``(rule)`` (nothing changed but the
seed) and reports its wall-clock, its final loss, its K-step likelihood error against the teacher's dopri5 on
held-out points and its 2-step samples' sliced W2 against the teacher's 100-step samples. A run whose loss stops
being finite raises inside :func:`f2d2mini.loop.fit` and is reported as diverged, with the error.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from f2d2mini import checkpoint, flowmap, metrics, ode, toy, train
from f2d2mini.bench.flowmaps import sample_reference
from f2d2mini.bench.solvers import heldout, load_saved
from f2d2mini.reports import Table

__all__ = ["seed_row", "seeds_suite", "SAMPLE_K", "N_POINTS"]

SAMPLE_K = 2  # the few-step sampler the targets name (2-step samples against the teacher's)
N_POINTS = 2000  # held-out points per likelihood error


def seed_row(teacher, density: toy.Density, rule: str, seed: int, x, ref_log_prob, noise, data, swd_teacher) -> dict:
    """Trains one map with the rule's defaults and ``seed``; its row of the table."""
    start = time.perf_counter()
    row = {"density": density.name, "rule": rule, "seed": seed, "diverged": ""}
    columns = ["seconds", "final loss", *(f"mae K={k}" for k in flowmap.EVAL_STEPS), f"swd ratio {SAMPLE_K}-step"]
    try:
        model = train.distill(teacher, density, rule, train.distill_config(rule), seed=seed)
    except FloatingPointError as err:
        return row | {"diverged": str(err)} | dict.fromkeys(columns, float("nan"))
    values = [time.perf_counter() - start, model.history.loss[-1]]
    values += [(model.log_prob(x, k) - ref_log_prob).abs().mean().item() for k in flowmap.EVAL_STEPS]
    values.append(metrics.sliced_wasserstein(model.sample(noise, SAMPLE_K), data) / swd_teacher)
    return row | dict(zip(columns, values, strict=True))


def seeds_suite(rule: str = "meanflow", densities=("checkerboard",), seeds=(0, 1, 2),
                checkpoints: str | Path = checkpoint.DEFAULT_DIR, device: torch.device | str = "cpu") -> dict:
    """One row per (density, seed); the teachers are the saved ones under ``checkpoints``."""
    rows = []
    for name in densities:
        density = toy.density(name)
        teacher = load_saved(checkpoint.teacher_path(name, checkpoints), f"f2d2mini teacher --density {name}", device)
        x = heldout(density, N_POINTS, device)
        ref = ode.log_prob(teacher, x, "dopri5")  # per-point error control
        data, noise, swd_teacher = sample_reference(teacher, density, device)
        rows += [seed_row(teacher, density, rule, seed, x, ref, noise, data, swd_teacher) for seed in seeds]
    formats = {c: ".3f" for c in rows[0] if c.startswith(("mae", "swd"))} | {"seconds": ".0f"}
    title = f"{rule} with its defaults (f2d2mini.train.distill_config), one run per seed"
    return {"tables": {"seeds": Table(rows, formats, title=title)}, "report": {"rows": rows}}
