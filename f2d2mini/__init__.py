"""f2d2mini: fast flow joint distillation (F2D2), small enough to read in one sitting.

One flow map that gives a sample and its log-likelihood in 1-8 network evaluations. See book/ for the course.
"""

from f2d2mini import (
    base,
    divergence,
    flowmap,
    guidance,
    images,
    losses,
    metrics,
    nets,
    ode,
    plots,
    pretrained,
    toy,
    train,
)
from f2d2mini.checkpoint import CheckpointError, load, save

__all__ = ["base", "divergence", "flowmap", "guidance", "losses", "metrics", "nets", "ode", "plots", "pretrained",
           "toy", "train", "images", "save", "load", "CheckpointError"]
__version__ = "0.1.0"
