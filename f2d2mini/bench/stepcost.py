"""What one F2D2 training step of each rule costs on images (``f2d2mini bench step-cost``, book chapter 7), and what
one evaluation costs per image in chunks of each size (``f2d2mini bench chunk-cost``).

The rules compute different things per step. Shortcut: two forward passes of the map without gradients (its target)
and one with. MeanFlow: the teacher's velocity and Hutchinson divergence (one reverse pass through the teacher) and
one forward-mode JVP of the map (``torch.func.jvp``), whose backward goes through both the primal and the tangent.
Each rule runs the dataset's distillation recipe for a few steps from the same teacher, side by side in one
process; the seconds per step come from the training history (one entry per step, the GPU synchronized at each),
and the table gives their median after the first steps.

An evaluation of the bits per dim splits the images into chunks (:data:`f2d2mini.images.data.EVAL_BATCH`). The
teacher's ODE evaluates its velocity and one Hutchinson reverse pass per step, which keeps every activation of the
chunk; a flow map's jump is one forward pass. Their cost per image depends on the chunk's size through the memory
those activations take, so the chunk suite times both on the same held-out images at each size.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace

import torch

from f2d2mini import base, checkpoint, checks
from f2d2mini import divergence as div
from f2d2mini.bench.guidance import load_splits
from f2d2mini.images import data as images_data
from f2d2mini.images import likelihood as images_likelihood
from f2d2mini.images import train as images_train
from f2d2mini.reports import Table, median_seconds

__all__ = ["StepCostConfig", "QUICK", "step_cost_suite", "ChunkCostConfig", "CHUNK_QUICK", "chunk_cost_suite"]


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


@dataclass(frozen=True)
class ChunkCostConfig:
    """Chunk sizes to time and how. Defaults: MNIST in about half a minute on a CPU."""

    chunks: tuple[int, ...] = (25, 50, 100, 200, 500)  # images per chunk
    images: int = 500  # held-out images evaluated at every chunk size
    repeats: int = 3  # timings of each, the median kept
    time: float = 0.5  # the time of the evaluations (the cost does not depend on it)
    probe_seed: int = 0  # the Hutchinson probes, drawn once and held, as an ODE solve holds them


CHUNK_QUICK = ChunkCostConfig(chunks=(8, 16), images=16, repeats=1)


def chunk_cost_suite(name: str = "mnist", teacher_path=None, map_path=None, config: ChunkCostConfig = ChunkCostConfig(),
                     device: torch.device | str = "cpu", *, mnist=None) -> dict:
    """Milliseconds per image of the teacher's ODE right-hand side (velocity and one Hutchinson reverse pass) and of
    one jump of the flow map (``map_path``, default the shipped Shortcut map of ``name``), over ``config.images``
    held-out images split into chunks of each of ``config.chunks``, and their ratio. Returns
    ``{"tables": ..., "report": ...}``."""
    from tqdm.auto import tqdm

    for chunk in config.chunks:
        checks.positive_int(chunk, "chunk")
    device = torch.device(device)
    teacher = checkpoint.load(teacher_path or checkpoint.teacher_path(name), device).eval()
    flow_map = checkpoint.load(map_path or checkpoint.flow_map_path(name, images_train.RULE), device).eval()
    images = images_likelihood.dequantized(load_splits(name, "data", mnist, "test")[1][:config.images],
                                           images_data.LEVELS[name], images_likelihood.DEQUANT_SEED, device)
    probes = div.probes(images, generator=base.make_generator(config.probe_seed, device))[0]

    @torch.no_grad()  # as the ODE solve runs it: the reverse pass is torch.func's, not the parameters' graph
    def right_hand_side(chunk: int) -> None:
        for x, eps in zip(images.split(chunk), probes.split(chunk)):
            div.hutchinson(teacher, x, torch.full((len(x),), config.time, device=device), eps=eps[None])

    @torch.no_grad()
    def jump(chunk: int) -> None:
        for x in images.split(chunk):
            flow_map(x, torch.full((len(x),), config.time, device=device), torch.ones(len(x), device=device))

    def ms_per_image(fn, chunk: int) -> float:
        return 1e3 * median_seconds(lambda: fn(chunk), config.repeats) / len(images)

    rows = []
    for chunk in tqdm(config.chunks, desc=f"chunk cost {name}", unit="size"):
        step, one_jump = ms_per_image(right_hand_side, chunk), ms_per_image(jump, chunk)
        rows.append({"chunk": chunk, "teacher v + VJP ms/img": step, "map jump ms/img": one_jump,
                     "ratio": step / one_jump})
    title = f"{name}: one evaluation per image on {device.type}, {len(images)} images (median of {config.repeats})"
    table = Table(rows, {"teacher v + VJP ms/img": ".3f", "map jump ms/img": ".3f", "ratio": ".2f"}, title=title)
    return {"tables": {"chunk_cost": table}, "report": {"name": name, "rows": rows, "config": asdict(config)}}
