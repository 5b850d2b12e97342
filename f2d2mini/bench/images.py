"""The image suites: digits on the CPU (``f2d2mini bench digits``) and the one-command GPU check (``f2d2mini bench
gpu``, also ``bash scripts/gpu_check.sh``): bits per dim of the teacher's ODE against the flow map's K jumps, sample
grids, and the CIFAR-10 recipe's speed and memory.

The GPU check trains an MNIST teacher and F2D2 map on 9,000 of MNIST's test images and scores the other 1,000
(the only MNIST files a machine without network may have), then runs the CIFAR-10 recipe on random images. It
looks for MNIST's ``t10k-*-ubyte.gz`` files in ``--mnist DIR``, else ``$F2D2MINI_MNIST``, else ``shared/data/mnist``
beside the repository.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from f2d2mini import base, checkpoint, ode
from f2d2mini.images import data, likelihood, quality, unet
from f2d2mini.images import train as images_train
from f2d2mini.loop import resolve_device
from f2d2mini.reports import Table

__all__ = ["N_TRAIN", "gpu_check", "digits_cpu",
           "sample_grid", "steady_rate", "FULL", "TINY"]

N_TRAIN = 9000  # MNIST test images used for training; the other 1000 are scored
FULL = dict(teacher_steps=4000, distill_steps=2500, warm_steps=600, batch=256, cifar_steps=150, cifar_warmup=50,
            cifar_batch=128, ode_solver="dopri5", ode_steps=None, n_test=1000)
TINY = dict(teacher_steps=30, distill_steps=10, warm_steps=4, batch=16, cifar_steps=3, cifar_warmup=1, cifar_batch=8,
            ode_solver="euler", ode_steps=4, n_test=50)
TINY_MNIST_NET = unet.UNetConfig(channels=1, size=28, widths=(8, 16, 16), embed_dim=16, time_frequencies=4, groups=4)
TINY_CIFAR_NET = unet.UNetConfig(channels=3, size=32, widths=(8, 16, 16), embed_dim=16, time_frequencies=4, groups=4)
DIGITS_GRID = 64  # images per sample grid
DIGITS_ODE = dict(solver="rk4", steps=8, probes=4)  # the teacher's bits per dim on the digits: RK4-8, 4 probes


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def steady_rate(history, batch: int) -> float:
    """Images per second between the first and the last history entry: after the warm-up steps before the first
    (compilation, cuDNN's autotuning, the allocator's first requests); fit synchronizes the device at each entry."""
    steps = history.step[-1] - history.step[0]
    return batch * steps / (history.elapsed[-1] - history.elapsed[0]) if steps else float("nan")


def _speed_row(name: str, model, steps: int, batch: int, device: torch.device) -> dict:
    return {"cifar10 config": name, "params_M": sum(p.numel() for p in model.parameters()) / 1e6, "steps": steps,
            "img_per_s": steady_rate(model.history, batch), "peak_GiB": _peak_gib(device)}


def _cifar_speed(cfg: dict, device: torch.device, tiny: bool) -> list[dict]:
    """Steps of the CIFAR-10 recipe (teacher and F2D2) on random images: images per second after
    ``cfg["cifar_warmup"]`` steps, and peak memory."""
    recipe = images_train.recipe("cifar10")
    levels = data.LEVELS["cifar10"]
    fake = data.Images(torch.randint(0, levels, (1024, 3, 32, 32), dtype=torch.uint8), torch.zeros(1024).long(),
                       levels, "cifar10-random")
    common = dict(steps=cfg["cifar_steps"], batch_size=cfg["cifar_batch"], warmup=1, progress=True,
                  device=str(device), log_every=cfg["cifar_warmup"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    teacher = images_train.teacher(fake, replace(recipe.teacher, net=TINY_CIFAR_NET if tiny else recipe.teacher.net,
                                                 **common))
    rows = [_speed_row("teacher", teacher, cfg["cifar_steps"], cfg["cifar_batch"], device)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = images_train.distill(teacher, fake, recipe.rule, replace(recipe.distill, warm_steps=0, **common))
    return rows + [_speed_row(f"F2D2 {recipe.rule}", model, cfg["cifar_steps"], cfg["cifar_batch"], device)]


def gpu_check(mnist: str | Path | None = None, tiny: bool = False, device: str = "auto") -> dict:
    """MNIST teacher + F2D2 to bits per dim versus K, and the CIFAR-10 recipe's images/s and peak memory.

    Returns ``{"tables": {name: Table}, "report": JSON-ready dict}``; ``tiny`` shrinks every budget and network so
    that the same code path runs on a CPU in seconds (the tests do).
    """
    start = time.perf_counter()
    device = resolve_device(device)
    mnist_data = data.load("mnist", data.mnist_root(mnist), "test", download=False)
    cfg = TINY if tiny else FULL
    torch.manual_seed(0)
    train = data.Images(mnist_data.images[:N_TRAIN], mnist_data.labels[:N_TRAIN], mnist_data.levels, "mnist")
    test = mnist_data.images[N_TRAIN:][: cfg["n_test"]]
    recipe = images_train.recipe("mnist")
    common = dict(batch_size=cfg["batch"], device=str(device), progress=True)
    t_config = replace(recipe.teacher, steps=cfg["teacher_steps"], **common,
                       **({"net": TINY_MNIST_NET, "warmup": 2} if tiny else {}))
    teacher = images_train.teacher(train, t_config)
    d_config = replace(recipe.distill, steps=cfg["distill_steps"], warm_steps=cfg["warm_steps"], **common,
                       **({"warmup": 1} if tiny else {}))
    model = images_train.distill(teacher, train, recipe.rule, d_config)
    rows = likelihood.bpd_table(teacher, model, test, mnist_data.levels, solver=cfg["ode_solver"],
                                steps=cfg["ode_steps"])
    cifar = _cifar_speed(cfg, device, tiny)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    total = time.perf_counter() - start
    title = (f"== f2d2mini GPU check ({'tiny' if tiny else 'full'}) on {name}, torch {torch.__version__}, total "
             f"{total:.0f} s ==\nMNIST: {N_TRAIN} train / {len(test)} test images; teacher {t_config.steps} steps "
             f"{teacher.history.seconds:.0f} s, F2D2 {recipe.rule} {d_config.steps} steps "
             f"{model.history.seconds:.0f} s (batch {cfg['batch']}, bf16 {t_config.bf16 and device.type == 'cuda'})")
    tables = {"bpd": Table(rows, likelihood.BPD_FORMATS, title=title),
              "cifar10": Table(cifar, {"params_M": ".1f", "img_per_s": ".0f", "peak_GiB": ".2f"},
                               title="CIFAR-10 config, random data:")}
    report = {"device_name": name, "tiny": tiny, "total_s": total, "teacher_config": asdict(t_config),
              "distill_config": asdict(d_config), "teacher_s": teacher.history.seconds,
              "distill_s": model.history.seconds, "bpd": [r._asdict() for r in rows], "cifar10": cifar}
    return {"tables": tables, "report": report}


def digits_cpu(out: str | Path, rule: str | None = None, teacher_path: str | Path | None = None) -> dict:
    """Digits with the default recipe on the CPU: teacher (or ``teacher_path``), F2D2 map, bits per dim of the 297
    test digits (teacher RK4-8 with 4 Hutchinson probes against K jumps) and a sample grid, all written to ``out``.
    Returns ``{"tables": ..., "report": ...}`` as :func:`gpu_check`."""
    out, start = Path(out), time.perf_counter()
    recipe = images_train.recipe("digits")
    rule = rule or recipe.rule
    train, test = data.load("digits", split="train"), data.load("digits", split="test")
    if teacher_path:
        teacher = checkpoint.load(teacher_path)
    else:
        teacher = images_train.teacher(train, recipe.teacher)
        checkpoint.save(teacher, checkpoint.teacher_path("digits", out))
    t_teacher = time.perf_counter() - start
    model = images_train.distill(teacher, train, rule, recipe.distill)
    checkpoint.save(model, checkpoint.flow_map_path("digits", rule, out))
    t_distill = time.perf_counter() - start - t_teacher
    rows = likelihood.bpd_table(teacher, model, test.images, test.levels, **DIGITS_ODE)
    t_total = time.perf_counter() - start
    sample_grid(teacher, model, test, out / "samples.png")
    title = f"digits: teacher {t_teacher:.0f} s, distill {t_distill:.0f} s, total {t_total:.0f} s"
    return {"tables": {"bpd": Table(rows, likelihood.BPD_FORMATS, title=title)},
            "report": {"rows": [r._asdict() for r in rows], "teacher_s": t_teacher, "distill_s": t_distill,
                       "total_s": t_total}}


def sample_grid(teacher, model, test: data.Images, path: Path, n: int = DIGITS_GRID) -> None:
    """``n`` test images, the teacher's Euler samples and the map's K = 1, 4 samples from the same noise, as one
    PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    noise = base.sample(n, model.event_shape, seed=1)
    quality.mosaic(test.images[:n], test.levels, ax=axes[0], title="test data")
    quality.mosaic(ode.sample(teacher, noise), test.levels, ax=axes[1], title=f"teacher Euler {ode.SAMPLE_STEPS}")
    for ax, k in zip(axes[2:], (1, 4)):
        quality.mosaic(model.sample(noise, k), test.levels, ax=ax, title=f"F2D2 K = {k}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
