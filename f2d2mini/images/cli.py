"""``f2d2mini images ...``: train a U-Net teacher, distil it (F2D2), bits per dim versus K, sample grids.

    f2d2mini images teacher --data digits --device cpu
    f2d2mini images distill --data digits --device cpu
    f2d2mini images bpd data/checkpoints/f2d2_shortcut_digits.pt --teacher data/checkpoints/teacher_digits.pt
    f2d2mini images sample data/checkpoints/f2d2_shortcut_digits.pt --steps 4 --out digits.png
    f2d2mini images teacher --data mnist --device cuda --resume     # continue an interrupted run
    torchrun --standalone --nproc_per_node 8 -m f2d2mini.cli images teacher --data mnist --device cuda

Training writes its whole state to ``OUT.state.pt`` every ``--checkpoint-every`` steps; ``--resume`` continues
from there (with the same number of processes). Defaults come from the dataset's recipe
(``f2d2mini.images.RECIPES``). Under ``torchrun`` every command runs data-parallel (:mod:`f2d2mini.distributed`):
``--batch-size`` is the global batch, rank 0 writes the files and prints.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from f2d2mini import base, checkpoint, distributed, flowmap, losses, ode
from f2d2mini.images import data as images_data
from f2d2mini.images import likelihood, quality, train, unet
from f2d2mini.images.likelihood import BPD_FORMATS
from f2d2mini.loop import resolve_device
from f2d2mini.reports import Table

__all__ = ["add_parser", "run", "state_path"]

GRID_SAMPLES = 64  # images in a sample grid
CHECKPOINT_EVERY = 500  # default steps between saves of the resumable training state


def state_path(out: Path) -> Path:
    """Where training of ``out`` keeps its resumable state: ``NAME.state.pt`` beside it."""
    return out.with_name(f"{out.stem}.state{out.suffix}")


def _training_args(p: argparse.ArgumentParser, device: dict) -> None:
    p.add_argument("--data", choices=images_data.DATASETS, required=True)
    p.add_argument("--root", type=Path, default=Path("data"), help="dataset folder (default: %(default)s)")
    p.add_argument("--out", type=Path, help="checkpoint path (default: data/checkpoints/...)")
    for name, kind in (("steps", int), ("batch-size", int), ("lr", float)):
        p.add_argument(f"--{name}", type=kind, help="default: the dataset's recipe")
    p.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                   help="steps between saves of OUT.state.pt (0: never; default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", **device)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="bf16 autocast on CUDA (recipe default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")


def add_parser(sub, device: dict) -> None:
    """Adds ``images`` and its subcommands to the main parser's subparsers."""
    p = sub.add_parser("images", help="images (digits, mnist, cifar10): teacher, distill, bpd, sample")
    acts = p.add_subparsers(dest="action", required=True)
    t = acts.add_parser("teacher", help="train a U-Net flow-matching teacher and save it")
    _training_args(t, device)
    d = acts.add_parser("distill", help="distil a saved teacher into a U-Net joint flow map (F2D2)")
    _training_args(d, device)
    d.add_argument("--teacher", type=Path, help="teacher checkpoint (default: data/checkpoints/teacher_DATA.pt)")
    d.add_argument("--rule", choices=losses.RULES, help="default: the dataset's recipe")
    d.add_argument("--warm-steps", type=int, help="phase 1 length (default: the dataset's recipe)")
    d.add_argument("--coverage-fraction", type=float, help="share of each batch off the data (0: none)")
    d.add_argument("--probes", type=int, help="Hutchinson probes per image (default: the dataset's recipe)")
    e = acts.add_parser("bpd", help="bits per dim of test images: the teacher's ODE against the flow map's K jumps")
    e.add_argument("checkpoint", type=Path, help="a saved UNetFlowMap")
    e.add_argument("--teacher", type=Path, help="its teacher (default: data/checkpoints/teacher_DATA.pt)")
    e.add_argument("--root", type=Path, default=Path("data"))
    e.add_argument("--n", "--n-images", type=int, default=1000, help="test images (default: %(default)s; under "
                   "torchrun write --n-images: torchrun takes --n for an abbreviation of its own options)")
    e.add_argument("--ks", type=int, nargs="+", default=list(flowmap.EVAL_STEPS), help="jumps K")
    e.add_argument("--solver", choices=ode.SOLVERS, default="dopri5", help="teacher ODE solver")
    e.add_argument("--ode-steps", type=int, help="steps of a fixed-step solver (e.g. euler 100)")
    e.add_argument("--probes", type=int, default=1, help="Hutchinson probes per image along the ODE")
    e.add_argument("--device", **device)
    s = acts.add_parser("sample", help="a grid of samples from a saved teacher or flow map (PNG)")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("--steps", type=int, help=f"flow map: jumps K (4); teacher: Euler steps ({ode.SAMPLE_STEPS})")
    s.add_argument("--n", "--n-images", type=int, default=GRID_SAMPLES, help="samples (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, required=True, help="PNG file")
    s.add_argument("--device", **device)


def _config(base, args, **extra):
    """The recipe's config with the command line's overrides (those given) and the device."""
    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
             "checkpoint_every": args.checkpoint_every, "bf16": args.bf16, **extra}
    return replace(base, device=args.device, compile=args.compile,
                   **{k: v for k, v in given.items() if v is not None})


def _teacher(args) -> int:
    recipe = train.recipe(args.data)
    config = _config(recipe.teacher, args)
    data = distributed.main_first(images_data.load, args.data, args.root, "train")
    out = args.out or checkpoint.teacher_path(args.data)
    model = train.teacher(data, config, args.seed, state_path=state_path(out), resume=args.resume)
    return _save(model, out)


def _save(model, out: Path) -> int:
    if distributed.is_main():
        print(checkpoint.save_trained(model, out))
    return 0


def _distill(args) -> int:
    recipe = train.recipe(args.data)
    rule = args.rule or recipe.rule
    config = _config(train.distill_config(args.data, rule), args, warm_steps=args.warm_steps, probes=args.probes,
                     coverage_fraction=args.coverage_fraction)
    device = resolve_device(args.device)
    teacher = checkpoint.load(args.teacher or checkpoint.teacher_path(args.data), device)
    data = distributed.main_first(images_data.load, args.data, args.root, "train")
    out = args.out or checkpoint.flow_map_path(args.data, rule)
    model = train.distill(teacher, data, rule, config, args.seed, state_path=state_path(out), resume=args.resume)
    return _save(model, out)


def _load(path: Path, cls, device):
    model = checkpoint.load(path, device)
    if not isinstance(model, cls):
        raise ValueError(f"{path} holds a {type(model).__name__}; expected a {cls.__name__}")
    return model


def _bpd(args) -> int:
    device = resolve_device(args.device)
    model = _load(args.checkpoint, unet.UNetFlowMap, device)
    name = model.metadata.get("dataset")
    if name not in images_data.DATASETS:
        raise ValueError(f"{args.checkpoint} does not record its dataset ({', '.join(images_data.DATASETS)})")
    teacher = _load(args.teacher or checkpoint.teacher_path(name), unet.UNetVelocity, device)
    test = distributed.main_first(images_data.load, name, args.root, "test")
    rows = likelihood.bpd_table(teacher, model, test.images[: args.n], test.levels, args.ks, solver=args.solver,
                                steps=args.ode_steps, probes=args.probes)
    if distributed.is_main():
        print(Table(rows, BPD_FORMATS, title=f"{name}: bits per dim of {min(args.n, len(test.images))} test images"))
    return 0


def _sample(args) -> int:
    if not distributed.is_main():
        return 0  # one grid: rank 0 draws it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = resolve_device(args.device)
    model = checkpoint.load(args.checkpoint, device)
    if not isinstance(model, (unet.UNetVelocity, unet.UNetFlowMap)):
        raise ValueError(f"{args.checkpoint} holds a {type(model).__name__}, not an image model")
    c, levels = model.config, images_data.LEVELS.get(model.metadata.get("dataset"), 256)
    noise = base.sample(args.n, (c.channels, c.size, c.size), seed=args.seed, device=device)
    if isinstance(model, unet.UNetFlowMap):
        x, label = model.sample(noise, args.steps or 4), f"F2D2, {args.steps or 4} jumps"
    else:
        steps = args.steps or ode.SAMPLE_STEPS
        x, label = ode.sample(model, noise, steps), f"teacher, Euler {steps} steps"
    fig, ax = plt.subplots(figsize=(6, 6))
    quality.mosaic(x, levels, ax=ax, title=label)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"wrote {args.out} ({label})")
    return 0


ACTIONS = {"teacher": _teacher, "distill": _distill, "bpd": _bpd, "sample": _sample}


def run(args) -> int:
    """Runs ``f2d2mini images ACTION`` (on every process of a ``torchrun`` job, joined into one group)."""
    distributed.setup(resolve_device(args.device))
    try:
        return ACTIONS[args.action](args)
    finally:
        distributed.teardown()
