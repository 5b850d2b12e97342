"""Real MNIST on the CPU (``f2d2mini bench mnist``, also ``python benchmarks/mnist_cpu.py``): a U-Net teacher and
its F2D2 flow map trained on 9,000 of MNIST's test images, bits per dim of the other 1,000 (book chapter 7).

The teacher's bits per dim come from the coupled ODE (dopri5 at rtol = atol = 1e-3, Hutchinson divergence) solved
twice with independent probes; their mean is quoted with the standard error of the Hutchinson noise,
std(a_i - b_i) / (2 sqrt(N)) over the N images. Against it: the flow map's K = 1, 2, 4, 8 backward jumps and the
reference code's first-order reversal, the times of every stage, and a grid of samples. With
``train_split="train"`` the 60,000 training images (from ``root``, downloaded where there is network) train the
models instead, and the same 1,000 test images are scored.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from f2d2mini import checkpoint, checks, flowmap
from f2d2mini.bench.images import N_TRAIN, sample_grid
from f2d2mini.images import data, likelihood, unet
from f2d2mini.images import train as images_train
from f2d2mini.reports import Table

__all__ = ["MnistCPUConfig", "QUICK", "splits", "map_rows", "TRAIN_SPLITS", "PROBE_SEEDS", "GAP_TARGETS",
           "TEACHER_TARGET", "SPEEDUP_TARGET", "MINUTES_TARGET", "mnist_cpu"]

TRAIN_SPLITS = ("test", "train")  # what trains the models: 9,000 of the test images, or the training split
PROBE_SEEDS = (0, 1)  # two independent Hutchinson solves of the teacher's ODE: their spread is the error bar
GAP_TARGETS = {1: 0.15, 2: 0.08, 4: 0.05, 8: 0.05}  # K -> the largest |bpd gap| to the teacher aimed for
TEACHER_TARGET = 1.40  # the teacher's bits per dim on the held-out images, at most
SPEEDUP_TARGET = 100  # K = 4 jumps at least this many times faster than one of the teacher's ODE solves
MINUTES_TARGET = 25  # the whole run on two quiet cores, at most


@dataclass(frozen=True)
class MnistCPUConfig:
    """The benchmark: the recipe it trains (:data:`f2d2mini.images.train.MNIST_CPU`) and how it scores. Defaults:
    the full run (its time: benchmarks/README.md)."""

    recipe: images_train.Recipe = images_train.MNIST_CPU
    n_test: int = 1000  # test images scored (the last ones of the test split, never trained on)
    probes: int = 1  # Hutchinson probes per image in each of the two teacher solves
    tol: float = 1e-3  # dopri5 rtol = atol: 1e-4 moves the mean bpd by 3e-4 (benchmarks/README.md), at 1.6x the NFE
    grid: int = 64  # samples per panel of the grid


_TINY = unet.UNetConfig(channels=1, size=28, widths=(8, 16, 16), embed_dim=16, time_frequencies=4, groups=4)
QUICK = MnistCPUConfig(images_train.Recipe(
    replace(images_train.MNIST_CPU.teacher, steps=20, warmup=2, batch_size=32, net=_TINY),
    replace(images_train.MNIST_CPU.distill, steps=10, warmup=2, warm_steps=5, batch_size=32, coverage_points=16,
            profile_intervals=8, profile_points=16)),
    n_test=32, tol=1e-2, grid=16)  # seconds: checks that everything runs


def splits(mnist=None, train_split: str = "test", root="data") -> tuple[data.Images, data.Images]:
    """The training images and the held-out ones, never trained on: the first :data:`N_TRAIN` of MNIST's test split
    and the rest of it, or (``train_split="train"``) the training split from ``root`` and the whole test split.
    ``mnist``: the folder of the test split's files (:func:`f2d2mini.images.data.mnist_root`)."""
    checks.choice(train_split, TRAIN_SPLITS, "train split")
    test = data.load("mnist", data.mnist_root(mnist), "test", download=False)
    if train_split == "train":
        return data.load("mnist", root, "train"), test
    return tuple(data.Images(test.images[part], test.labels[part], test.levels, "mnist")
                 for part in (slice(None, N_TRAIN), slice(N_TRAIN, None)))


def _train(train: data.Images, recipe: images_train.Recipe, device: str, out: Path, seed: int) -> dict:
    """Teacher and F2D2 map of ``recipe``, saved to ``out``; returns both and the times."""
    start = time.perf_counter()
    teacher = images_train.teacher(train, replace(recipe.teacher, device=device), seed)
    checkpoint.save(teacher, checkpoint.teacher_path("mnist", out))
    middle = time.perf_counter()
    model = images_train.distill(teacher, train, recipe.rule, replace(recipe.distill, device=device), seed)
    checkpoint.save(model, checkpoint.flow_map_path("mnist", recipe.rule, out))
    return {"teacher": teacher, "model": model, "teacher_s": middle - start,
            "distill_s": time.perf_counter() - middle}


def _teacher_row(teacher, test: torch.Tensor, cfg: MnistCPUConfig, bar) -> dict:
    """The teacher's ODE bpd: the mean of two solves with independent probes, and its Hutchinson standard error."""
    runs = []
    for seed in PROBE_SEEDS:
        bar.set_description(f"teacher ODE, probes {seed}")
        runs.append(likelihood.ode_bpd(teacher, test, levels=data.LEVELS["mnist"], probes=cfg.probes,
                                       probe_seed=seed, rtol=cfg.tol, atol=cfg.tol))
        bar.update()
    a, b = (r.per_image for r in runs)
    stderr = ((a - b).std() / (2 * math.sqrt(len(a)))).item() if len(a) > 1 else float("nan")
    return {"method": f"teacher ODE dopri5 (Hutchinson, 2 x {cfg.probes} probes)", "nfe": max(r.nfe for r in runs),
            "bpd": (a + b).mean().item() / 2, "stderr": stderr, "gap": 0.0, "seconds": sum(r.seconds for r in runs)}


def _rows(teacher, model, test: torch.Tensor, cfg: MnistCPUConfig) -> list[dict]:
    """The teacher's row, then K jumps with exact backward jumps and with the first-order reversal."""
    from tqdm.auto import tqdm

    jobs = [(k, r) for r in flowmap.REVERSALS for k in flowmap.EVAL_STEPS]
    with tqdm(total=len(PROBE_SEEDS) + len(jobs), unit="solve") as bar:  # the ODE solves take most of the time
        ref = _teacher_row(teacher, test, cfg, bar)
        rows = [ref]
        for k, reversal in jobs:
            name = f"F2D2 K = {k}" + ("" if reversal == "exact" else " (first-order reversal)")
            bar.set_description(name)
            res = likelihood.bpd(model, test, k, levels=data.LEVELS["mnist"], reversal=reversal)
            rows.append({"method": name, "nfe": k, "bpd": res.bpd, "stderr": 0.0, "gap": res.bpd - ref["bpd"],
                         "seconds": res.seconds})
            bar.update()
    return rows


def map_rows(rows: list[dict]) -> dict[int, dict]:
    """K -> the row of the map's K exact backward jumps, from the benchmark's ``rows`` (its report's ``"rows"``)."""
    return {r["nfe"]: r for r in rows[1:] if "reversal" not in r["method"]}


def _verdicts(rows: list[dict], total_s: float) -> dict[str, bool]:
    teacher, maps = rows[0], map_rows(rows)
    verdicts = {f"teacher bpd <= {TEACHER_TARGET}": teacher["bpd"] <= TEACHER_TARGET}
    verdicts |= {f"|gap| at K = {k} <= {limit}": abs(maps[k]["gap"]) <= limit
                 for k, limit in GAP_TARGETS.items() if k in maps}
    if 4 in maps:  # the teacher's row times both of its solves
        speedup = teacher["seconds"] / len(PROBE_SEEDS) / maps[4]["seconds"]
        verdicts[f"K = 4 >= {SPEEDUP_TARGET}x faster than one ODE solve ({speedup:.0f}x)"] = speedup >= SPEEDUP_TARGET
    verdicts[f"whole run <= {MINUTES_TARGET} min ({total_s / 60:.1f})"] = total_s <= MINUTES_TARGET * 60
    return verdicts


def mnist_cpu(out: str | Path, grid_path: str | Path, *, mnist: str | Path | None = None, quick: bool = False,
              train_split: str = "test", root: str | Path = "data", device: str = "cpu", seed: int = 0) -> dict:
    """Trains (seed ``seed``), scores and draws as the module says; checkpoints go to ``out``, the sample grid to
    ``grid_path``. ``quick`` runs the same code at tiny budgets. Returns ``{"tables": ..., "report": ...}`` as the
    other suites."""
    cfg, start, out = QUICK if quick else MnistCPUConfig(), time.perf_counter(), Path(out)
    train, held_out = splits(mnist, train_split, root)
    test = held_out.images[:cfg.n_test]
    models = _train(train, cfg.recipe, device, out, seed)
    eval_start = time.perf_counter()
    rows = _rows(models["teacher"], models["model"], test, cfg)
    grid_start = time.perf_counter()
    test_split = data.Images(test, torch.zeros(len(test)).long(), data.LEVELS["mnist"], "mnist")
    sample_grid(models["teacher"], models["model"], test_split, Path(grid_path), cfg.grid)
    end = time.perf_counter()
    times = {"teacher_s": models["teacher_s"], "distill_s": models["distill_s"], "eval_s": grid_start - eval_start,
             "grid_s": end - grid_start, "total_s": end - start}
    teacher_c, distill_c = cfg.recipe.teacher, cfg.recipe.distill
    title = (f"MNIST on the CPU ({'quick' if quick else 'full'}, seed {seed}, threads {torch.get_num_threads()}): "
             f"{len(train.images)} train / {len(test)} test images; teacher {teacher_c.steps} steps "
             f"{times['teacher_s']:.0f} s, F2D2 {distill_c.steps} steps {times['distill_s']:.0f} s, bits per dim "
             f"{times['eval_s']:.0f} s, grid {times['grid_s']:.0f} s, total {times['total_s']:.0f} s")
    verdicts = _verdicts(rows, times["total_s"])
    targets = Table([{"target": k, "met": v} for k, v in verdicts.items()], title="targets:")
    formats = {**likelihood.BPD_FORMATS, "stderr": ".4f"}
    report = {"seed": seed, "teacher_config": asdict(teacher_c), "distill_config": asdict(distill_c),
              "rule": cfg.recipe.rule, "n_test": cfg.n_test, "probes": cfg.probes, "tol": cfg.tol,
              "train_split": train_split, "n_train": len(train.images), "rows": rows, "targets": verdicts, **times}
    return {"tables": {"bpd": Table(rows, formats, title=title), "targets": targets}, "report": report}
