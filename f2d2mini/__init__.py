"""f2d2mini: fast flow joint distillation (F2D2), small enough to read in one sitting.

One flow map that gives a sample and its log-likelihood in 1-8 network evaluations. See book/ for the course and
README.md for a one-line map of every module. The front door: ``f2d2mini.distill(teacher, data)`` for any
velocity ``v(x, t)`` (:mod:`f2d2mini.adapters` wraps models trained elsewhere) and data ``[N, *shape]``.
``f2d2mini.bench`` (the benchmarks) is imported on demand.
"""

from f2d2mini import (
    adapters,
    base,
    checkpoint,
    consistency,
    distillation,
    divergence,
    flowmap,
    gaussian_path,
    guidance,
    images,
    loop,
    losses,
    metrics,
    nets,
    ode,
    plots,
    pretrained,
    reports,
    student,
    times,
    toy,
    train,
)
from f2d2mini.checkpoint import CheckpointError, load, save
from f2d2mini.student import distill

__all__ = ["adapters", "base", "checkpoint", "consistency", "distillation", "divergence", "flowmap", "gaussian_path",
           "guidance", "images", "loop", "losses", "metrics", "nets", "ode", "plots", "pretrained", "reports",
           "student", "times", "toy", "train", "save", "load", "CheckpointError", "distill"]
__version__ = "0.1.0"
