"""One-command GPU check: MNIST teacher + F2D2 on 9,000 test images, bits per dim on the other 1,000, and the
CIFAR-10 config's speed and memory on random data. No network; only torch, torchvision, torchdiffeq, tqdm.

    bash scripts/gpu_check.sh                 # one H100: about 5 minutes (not yet measured on a GPU)
    bash scripts/gpu_check.sh --tiny          # any CPU: under 2 minutes, checks that everything runs
    python -m f2d2mini.images.gpu_check --mnist DIR --json out.json

DIR holds MNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (default: shared/data/mnist under the
repository root, else /work/shared/data/mnist).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from f2d2mini import train as loop
from f2d2mini.images import data, likelihood, unet
from f2d2mini.images import train as images_train

__all__ = ["main", "default_mnist_dir"]

REPO = Path(__file__).resolve().parents[2]
MNIST_CANDIDATES = (REPO / "shared" / "data" / "mnist", Path("/work/shared/data/mnist"))
N_TRAIN = 9000  # MNIST test images used for training; the other 1000 are scored
KS = (1, 2, 4, 8)
FULL = dict(teacher_steps=4000, distill_steps=2500, warm_steps=600, batch=256, cifar_steps=300, cifar_batch=128,
            ode_solver="dopri5", ode_steps=None, n_test=1000)
TINY = dict(teacher_steps=30, distill_steps=10, warm_steps=4, batch=16, cifar_steps=3, cifar_batch=8,
            ode_solver="euler", ode_steps=4, n_test=50)
TINY_MNIST_NET = unet.UNetConfig(channels=1, size=28, widths=(8, 16, 16), embed_dim=16, time_frequencies=4, groups=4)
TINY_CIFAR_NET = unet.UNetConfig(channels=3, size=32, widths=(8, 16, 16), embed_dim=16, time_frequencies=4, groups=4)


def default_mnist_dir() -> Path:
    """The first of :data:`MNIST_CANDIDATES` that exists (the first one otherwise, for the error message)."""
    return next((p for p in MNIST_CANDIDATES if p.is_dir()), MNIST_CANDIDATES[0])


def _mnist(folder: Path) -> data.Images:
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}; pass --mnist DIR with MNIST's test idx files")
    images = torch.from_numpy(data.read_idx(folder / names[0]).copy())[:, None]
    labels = torch.from_numpy(data.read_idx(folder / names[1]).astype("int64"))
    return data.Images(images, labels, 256, "mnist")


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def _cifar_speed(cfg: dict, device: torch.device, tiny: bool) -> list[dict]:
    """Steps of the CIFAR-10 recipe (teacher and F2D2) on random images: images per second and peak memory."""
    recipe = images_train.recipe("cifar10")
    net = TINY_CIFAR_NET if tiny else recipe.teacher.net
    fake = data.Images(torch.randint(0, 256, (1024, 3, 32, 32), dtype=torch.uint8), torch.zeros(1024).long(), 256,
                       "cifar10-random")
    rows = []
    common = dict(steps=cfg["cifar_steps"], batch_size=cfg["cifar_batch"], warmup=1, progress=True,
                  device=str(device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    teacher = images_train.teacher(fake, replace(recipe.teacher, net=net, **common))
    secs = teacher.history.seconds
    rows.append({"cifar10 config": "teacher", "params_M": sum(p.numel() for p in teacher.parameters()) / 1e6,
                 "steps": cfg["cifar_steps"], "img_per_s": cfg["cifar_steps"] * cfg["cifar_batch"] / secs,
                 "peak_GiB": _peak_gib(device)})
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = images_train.distill(teacher, fake, recipe.rule, replace(recipe.distill, warm_steps=0, **common))
    secs = model.history.seconds
    rows.append({"cifar10 config": f"F2D2 {recipe.rule}", "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                 "steps": cfg["cifar_steps"], "img_per_s": cfg["cifar_steps"] * cfg["cifar_batch"] / secs,
                 "peak_GiB": _peak_gib(device)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--mnist", type=Path, default=default_mnist_dir(), help="folder with MNIST's test idx files")
    p.add_argument("--tiny", action="store_true", help="tiny budgets: checks that everything runs (CPU, < 2 min)")
    p.add_argument("--device", choices=loop.DEVICES, default="auto")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        device = loop.resolve_device(args.device)
        mnist = _mnist(args.mnist)
    except (ValueError, FileNotFoundError) as err:
        print(f"gpu_check: error: {err}", file=sys.stderr)
        return 2
    cfg = TINY if args.tiny else FULL
    torch.manual_seed(0)
    train = data.Images(mnist.images[:N_TRAIN], mnist.labels[:N_TRAIN], 256, "mnist")
    test = mnist.images[N_TRAIN:][: cfg["n_test"]]
    recipe = images_train.recipe("mnist")
    common = dict(batch_size=cfg["batch"], device=str(device), progress=True)
    t_config = replace(recipe.teacher, steps=cfg["teacher_steps"], **common,
                       **({"net": TINY_MNIST_NET, "warmup": 2} if args.tiny else {}))
    teacher = images_train.teacher(train, t_config)
    d_config = replace(recipe.distill, steps=cfg["distill_steps"], warm_steps=cfg["warm_steps"], **common,
                       **({"warmup": 1} if args.tiny else {}))
    model = images_train.distill(teacher, train, recipe.rule, d_config)
    rows = likelihood.bpd_table(teacher, model, test, 256, KS, solver=cfg["ode_solver"], steps=cfg["ode_steps"])
    cifar = _cifar_speed(cfg, device, args.tiny)
    total = time.perf_counter() - start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\n== f2d2mini GPU check ({'tiny' if args.tiny else 'full'}) on {name}, torch {torch.__version__}, "
          f"total {total:.0f} s ==")
    print(f"MNIST: {N_TRAIN} train / {len(test)} test images; teacher {t_config.steps} steps "
          f"{teacher.history.seconds:.0f} s, F2D2 {recipe.rule} {d_config.steps} steps {model.history.seconds:.0f} s "
          f"(batch {cfg['batch']}, bf16 {t_config.bf16 and device.type == 'cuda'})")
    print(f"{'method':36s} {'NFE':>5s} {'bpd':>8s} {'gap':>8s} {'seconds':>8s}")
    for r in rows:
        print(f"{r.method:36s} {r.nfe:5d} {r.bpd:8.4f} {r.gap:+8.4f} {r.seconds:8.2f}")
    print(f"{'CIFAR-10 config, random data':36s} {'params':>8s} {'steps':>6s} {'img/s':>8s} {'peak GiB':>9s}")
    for r in cifar:
        print(f"{r['cifar10 config']:36s} {r['params_M']:7.1f}M {r['steps']:6d} {r['img_per_s']:8.0f} "
              f"{r['peak_GiB']:9.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": name, "tiny": args.tiny, "total_s": total,
                                         "teacher_config": asdict(t_config), "distill_config": asdict(d_config),
                                         "teacher_s": teacher.history.seconds, "distill_s": model.history.seconds,
                                         "bpd": [r._asdict() for r in rows], "cifar10": cifar}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
