"""Real MNIST on the CPU (``f2d2mini bench mnist``, also ``python benchmarks/mnist_cpu.py``): a U-Net teacher and
its F2D2 flow map trained on 9,000 of MNIST's test images, bits per dim of the other 1,000 (book chapter 7).

The teacher's bits per dim come from the coupled ODE (dopri5 at rtol = atol = 1e-4, Hutchinson divergence) solved
twice with independent probes; their mean is quoted with the standard error of the Hutchinson noise,
std(a_i - b_i) / (2 sqrt(N)) over the N images. Against it: the flow map's K = 1, 2, 4, 8 backward jumps and the
reference code's first-order reversal, the times of every stage, and a grid of samples. With
``train_split="train"`` the 60,000 training images (from ``root``, downloaded where there is network) train the
models instead, and the same 1,000 test images are scored.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from f2d2mini import checkpoint, checks, flowmap
from f2d2mini.bench.images import N_TRAIN, sample_grid
from f2d2mini.images import data, likelihood, unet
from f2d2mini.images import train as images_train
from f2d2mini.reports import Table

__all__ = ["MnistCPUConfig", "QUICK", "TRAIN_SPLITS", "PROBE_SEEDS", "TARGETS", "mnist_cpu"]

TRAIN_SPLITS = ("test", "train")  # what trains the models: 9,000 of the test images, or the training split
PROBE_SEEDS = (0, 1)  # two independent Hutchinson solves of the teacher's ODE: their spread is the error bar
TARGETS = {1: 0.2, 4: 0.05}  # K -> the largest |bpd gap| to the teacher that the benchmark aims for


@dataclass(frozen=True)
class MnistCPUConfig:
    """Budgets of the benchmark. Defaults: the full run (its time: benchmarks/README.md)."""

    teacher_steps: int = 3000
    distill_steps: int = 2000
    warm_steps: int = 400  # F2D2 phase 1 (velocity part only)
    batch_size: int = 128
    lr: float = 2e-3
    n_test: int = 1000  # test images scored (the last ones of the test split, never trained on)
    probes: int = 1  # Hutchinson probes per image in each of the two teacher solves
    tol: float = 1e-4  # dopri5 rtol = atol: tighter moves the mean far below the probe noise, at more NFE
    grid: int = 64  # samples per panel of the grid
    net: unet.UNetConfig = field(default_factory=lambda: unet.UNetConfig(
        channels=1, size=28, widths=(16, 32, 64), embed_dim=64))  # 0.4 M parameters: 28 -> 14 -> 7


QUICK = MnistCPUConfig(teacher_steps=20, distill_steps=10, warm_steps=5, batch_size=32, n_test=32, tol=1e-2,
                       grid=16)  # seconds: checks that everything runs


def _splits(mnist, train_split: str, root, n_test: int) -> tuple[data.Images, torch.Tensor]:
    """The training images and the scored test images (uint8)."""
    checks.choice(train_split, TRAIN_SPLITS, "train split")
    test = data.load("mnist", data.mnist_root(mnist), "test", download=False)
    if train_split == "train":
        train = data.load("mnist", root, "train")
    else:
        train = data.Images(test.images[:N_TRAIN], test.labels[:N_TRAIN], test.levels, "mnist")
    return train, test.images[N_TRAIN:][:n_test]


def _train(train: data.Images, cfg: MnistCPUConfig, device: str, out: Path) -> dict:
    """Teacher and F2D2 map with the MNIST recipe at the CPU budgets, saved to ``out``; returns both and the times."""
    recipe = images_train.recipe("mnist")
    common = dict(batch_size=cfg.batch_size, lr=cfg.lr, device=device, bf16=False)
    start = time.perf_counter()
    teacher = images_train.teacher(train, replace(recipe.teacher, steps=cfg.teacher_steps, net=cfg.net, **common))
    checkpoint.save(teacher, checkpoint.teacher_path("mnist", out))
    middle = time.perf_counter()
    d_config = replace(recipe.distill, steps=cfg.distill_steps, warm_steps=cfg.warm_steps, **common)
    model = images_train.distill(teacher, train, recipe.rule, d_config)
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


def _verdicts(rows: list[dict]) -> dict[str, bool]:
    gaps = {r["nfe"]: r["gap"] for r in rows[1:] if "reversal" not in r["method"]}
    return {f"|gap| at K = {k} <= {limit}": abs(gaps[k]) <= limit for k, limit in TARGETS.items() if k in gaps}


def mnist_cpu(out: str | Path, grid_path: str | Path, *, mnist: str | Path | None = None, quick: bool = False,
              train_split: str = "test", root: str | Path = "data", device: str = "cpu") -> dict:
    """Trains, scores and draws as the module says; checkpoints go to ``out``, the sample grid to ``grid_path``.
    ``quick`` runs the same code at tiny budgets. Returns ``{"tables": ..., "report": ...}`` as the other suites."""
    cfg, start, out = QUICK if quick else MnistCPUConfig(), time.perf_counter(), Path(out)
    train, test = _splits(mnist, train_split, root, cfg.n_test)
    models = _train(train, cfg, device, out)
    eval_start = time.perf_counter()
    rows = _rows(models["teacher"], models["model"], test, cfg)
    grid_start = time.perf_counter()
    test_split = data.Images(test, torch.zeros(len(test)).long(), data.LEVELS["mnist"], "mnist")
    sample_grid(models["teacher"], models["model"], test_split, Path(grid_path), cfg.grid)
    end = time.perf_counter()
    times = {"teacher_s": models["teacher_s"], "distill_s": models["distill_s"], "eval_s": grid_start - eval_start,
             "grid_s": end - grid_start, "total_s": end - start}
    title = (f"MNIST on the CPU ({'quick' if quick else 'full'}, threads {torch.get_num_threads()}): "
             f"{len(train.images)} train / {len(test)} test images; teacher {cfg.teacher_steps} steps "
             f"{times['teacher_s']:.0f} s, F2D2 {cfg.distill_steps} steps {times['distill_s']:.0f} s, bits per dim "
             f"{times['eval_s']:.0f} s, grid {times['grid_s']:.0f} s, total {times['total_s']:.0f} s")
    verdicts = _verdicts(rows)
    targets = Table([{"target": k, "met": v} for k, v in verdicts.items()], title="targets:")
    formats = {**likelihood.BPD_FORMATS, "stderr": ".4f"}
    return {"tables": {"bpd": Table(rows, formats, title=title), "targets": targets},
            "report": {"config": asdict(cfg), "train_split": train_split, "n_train": len(train.images),
                       "rows": rows, "targets": verdicts, **times}}
