"""What one F2D2 training step of each rule costs on images (``f2d2mini bench step-cost``, book chapter 7).

The rules compute different things per step. Shortcut: two forward passes of the map without gradients (its target)
and one with. MeanFlow: the teacher's velocity and Hutchinson divergence (one reverse pass through the teacher) and
one forward-mode JVP of the map (``torch.func.jvp``), whose backward goes through both the primal and the tangent.
Each rule runs the dataset's distillation recipe for a few steps from the same teacher, side by side in one
process; the seconds per step come from the training history (one entry per step, the GPU synchronized at each),
and the table gives their median after the first steps.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace

import torch

from f2d2mini import checkpoint
from f2d2mini.bench.guidance import load_splits
from f2d2mini.images import train as images_train
from f2d2mini.reports import Table

__all__ = ["StepCostConfig", "QUICK", "step_cost_suite"]


@dataclass(frozen=True)
class StepCostConfig:
    """How long each rule runs. Defaults: about a minute per rule on one CPU core for the digits."""

    steps: int = 40  # training steps per rule
    skip: int = 5  # first steps left out of the median (the coverage bank is built in the first, caches warm up)
    coverage_points: int = 200  # a small coverage bank: its size does not change what a step costs
    coverage_fraction: float | None = None  # None: the recipe's (0: no bank, whose 32 solves take seconds)


QUICK = StepCostConfig(steps=4, skip=1, coverage_fraction=0.0)


def step_cost_suite(name: str = "digits", rules=("shortcut", "meanflow"), teacher_path=None,
                    config: StepCostConfig = StepCostConfig(), device: torch.device | str = "cpu", *,
                    batch_size: int | None = None, mnist=None) -> dict:
    """Median seconds per training step of each rule in ``rules`` with its distillation config for ``name``
    (:func:`f2d2mini.images.train.distill_config`; its batch, or ``batch_size``), and each rule's cost relative to
    the first. Returns ``{"tables": ..., "report": ...}``."""
    device = torch.device(device)
    teacher = checkpoint.load(teacher_path or checkpoint.teacher_path(name), device)
    train, _ = load_splits(name, "data", mnist, "test")
    rows = []
    for rule in rules:
        recipe_config = images_train.distill_config(name, rule)
        cfg = replace(recipe_config, steps=config.steps, log_every=1, checkpoint_every=0, device=device.type,
                      coverage_points=config.coverage_points, batch_size=batch_size or recipe_config.batch_size)
        if config.coverage_fraction is not None:
            cfg = replace(cfg, coverage_fraction=config.coverage_fraction)
        model = images_train.distill(teacher, train, rule, cfg)
        elapsed = model.history.elapsed
        per_step = [b - a for a, b in zip(elapsed[config.skip:], elapsed[config.skip + 1:])]
        median = statistics.median(per_step)
        rows.append({"rule": rule, "batch": cfg.batch_size, "steps timed": len(per_step), "median s/step": median,
                     "img/s": cfg.batch_size / median, "min s/step": min(per_step), "max s/step": max(per_step)})
    for row in rows:
        row["x first rule"] = row["median s/step"] / rows[0]["median s/step"]
    title = f"{name}: seconds per F2D2 training step on {device.type} (median of {rows[0]['steps timed']} steps)"
    table = Table(rows, {"median s/step": ".4f", "min s/step": ".4f", "max s/step": ".4f", "img/s": ".0f",
                         "x first rule": ".2f"}, title=title)
    return {"tables": {"step_cost": table}, "report": {"name": name, "rows": rows, "config": asdict(config)}}
