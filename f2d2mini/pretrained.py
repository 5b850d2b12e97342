"""Shipped 2-D checkpoints and the book's fast mode: load when present, train when missing.

The book's chapters call :func:`teacher` and :func:`flow_map` instead of training, so the whole book builds in
minutes. ``F2D2MINI_FAST=1`` (see :func:`fast_mode`) is the quick mode CI runs: every budget shrinks, and a missing
checkpoint is trained with a tiny config instead of the default one (and is not saved).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from f2d2mini import checkpoint, checks, losses, toy, train

__all__ = ["SHIPPED_DIR", "FAST_ENV", "FAST_STEPS", "FAST_COVERAGE_POINTS", "fast_mode", "teacher", "flow_map"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / checkpoint.DEFAULT_DIR  # the repository's shipped files
FAST_ENV = "F2D2MINI_FAST"
FAST_STEPS = 300  # training steps of a missing checkpoint in fast mode
FAST_COVERAGE_POINTS = 200  # and the coverage bank of a missing map (its default takes minutes before step one)


def fast_mode() -> bool:
    """True when ``F2D2MINI_FAST=1``: the quick mode in which CI builds and tests the book."""
    return os.environ.get(FAST_ENV, "0") == "1"


def _budget(config):
    return replace(config, steps=FAST_STEPS, warmup=min(config.warmup, FAST_STEPS // 10)) if fast_mode() else config


def teacher(density: str, directory: str | os.PathLike = SHIPPED_DIR, seed: int = 0):
    """The shipped flow-matching teacher of ``density`` (a :class:`~f2d2mini.nets.VelocityMLP` in eval mode);
    trained with the default :class:`~f2d2mini.train.TeacherConfig` (tiny in fast mode) if the file is missing."""
    toy.density(density)  # names the allowed densities if this one is unknown
    path = checkpoint.teacher_path(density, directory)
    if path.exists():
        return checkpoint.load(path).eval()
    return train.teacher(toy.density(density), _budget(train.TeacherConfig()), seed=seed)


def flow_map(density: str, rule: str = "lsd", directory: str | os.PathLike = SHIPPED_DIR, seed: int = 0):
    """The shipped F2D2 joint flow map of ``density`` distilled with ``rule`` (eval mode); distilled from
    :func:`teacher` with the rule's default config, :func:`~f2d2mini.train.distill_config` (tiny in fast mode),
    if missing."""
    checks.choice(rule, losses.RULES, "rule")
    path = checkpoint.flow_map_path(density, rule, directory)
    if path.exists():
        return checkpoint.load(path).eval()
    config = _budget(train.distill_config(rule))
    if fast_mode():
        config = replace(config, warm_steps=FAST_STEPS // 3, coverage_points=FAST_COVERAGE_POINTS)
    return train.distill(teacher(density, directory, seed), toy.density(density), rule, config, seed=seed)
