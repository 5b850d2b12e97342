"""The ``f2d2mini`` command line: train a teacher, distil it, evaluate likelihoods, run benchmarks.

    f2d2mini teacher --density checkerboard --out data/checkpoints/teacher_checkerboard.pt
    f2d2mini distill --density checkerboard --rule shortcut
    f2d2mini distill --data my_points.npy --teacher my_teacher.pt            (any data [N, *shape])
    f2d2mini eval data/checkpoints/teacher_checkerboard.pt --solver rk4 --steps 8
    f2d2mini eval data/checkpoints/f2d2_shortcut_checkerboard.pt --steps 4
    f2d2mini bench ode --json benchmarks/results/ode_solvers.json
        (suites: ode, f2d2, error-norm, digits, mnist, gpu, ood, seeds, peer, own, guidance, step-cost,
        chunk-cost)
    f2d2mini images teacher --data digits      (and distill, bpd, sample: see f2d2mini.images.cli)

Checkpoints are written to and read from ``data/checkpoints`` under the working directory unless a path is
given. Bad names and ``--device cuda`` without a GPU exit with status 2 and a message listing the choices.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from f2d2mini import checkpoint, checks, flowmap, losses, ode, student, toy, train
from f2d2mini.bench import cli as bench_cli
from f2d2mini.images import cli as images_cli
from f2d2mini.loop import DEVICES, LoopConfig, resolve_device

__all__ = ["main"]

USAGE_ERROR = 2


def _add_training_args(parser: argparse.ArgumentParser, defaults: LoopConfig | None, device: dict) -> None:
    """The loop settings that every training subcommand exposes, with the config's defaults (``None``: left to
    the command, e.g. the rule's defaults of ``train.distill_config``)."""
    default = lambda name: None if defaults is None else getattr(defaults, name)  # noqa: E731
    parser.add_argument("--steps", type=int, default=default("steps"))
    parser.add_argument("--batch-size", type=int, default=default("batch_size"))
    parser.add_argument("--lr", type=float, default=default("lr"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", **device)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="f2d2mini", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    device = dict(choices=DEVICES, default="auto", help="where to run (default: %(default)s)")

    t = sub.add_parser("teacher", help="train a flow-matching teacher on a 2-D density and save it")
    t.add_argument("--density", choices=toy.NAMES, required=True)
    t.add_argument("--out", type=Path, help="checkpoint path (default: data/checkpoints/teacher_DENSITY.pt)")
    _add_training_args(t, train.TeacherConfig(), device)

    d = sub.add_parser("distill", help="distil a saved teacher into a joint flow map (F2D2) and save it")
    source = d.add_mutually_exclusive_group(required=True)
    source.add_argument("--density", choices=toy.NAMES, help="a 2-D density, sampled afresh every step")
    source.add_argument("--data", type=Path, help="your data: a tensor [N, *shape] saved with torch.save (.pt) or "
                        "numpy.save (.npy), drawn in shuffled epochs (needs --teacher)")
    d.add_argument("--rule", choices=losses.RULES, help="default: lsd for --density, shortcut for --data")
    d.add_argument("--teacher", type=Path, help="teacher checkpoint (default: data/checkpoints/teacher_DENSITY.pt)")
    d.add_argument("--out", type=Path, help="checkpoint path (default: data/checkpoints/f2d2_RULE_NAME.pt, NAME "
                   "the density or the data file's stem)")
    _add_training_args(d, None, device)  # unset: the rule's own defaults, train.distill_config(rule)
    d.add_argument("--warm-steps", type=int, help="steps before the D head joins (default: the rule's)")
    d.add_argument("--coverage-fraction", type=float, help="share of each batch off the data (0: none)")

    e = sub.add_parser("eval", help="log-likelihood of held-out samples under a saved teacher or flow map")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--density", choices=toy.NAMES, help="data to score (default: the one it was trained on)")
    e.add_argument("--n", type=int, default=10_000, help="held-out points")
    e.add_argument("--solver", choices=ode.SOLVERS, default="dopri5", help="teacher: the ODE solver")
    e.add_argument("--steps", type=int, help="teacher: steps of a fixed-step solver; flow map: jumps K (4)")
    e.add_argument("--divergence", choices=ode.DIVERGENCES, default="exact")
    e.add_argument("--reversal", choices=flowmap.REVERSALS, default="exact", help="flow map: backward jumps")
    e.add_argument("--device", **device)

    bench_cli.add_parser(sub, device)
    images_cli.add_parser(sub, device)
    return p


def _cmd_teacher(args) -> int:
    config = train.TeacherConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device)
    model = train.teacher(toy.density(args.density), config, seed=args.seed)
    print(checkpoint.save_trained(model, args.out or checkpoint.teacher_path(args.density)))
    return 0


def _cmd_distill(args) -> int:
    device = resolve_device(args.device)
    if args.data is not None and args.teacher is None:
        raise ValueError("--data needs --teacher: the checkpoint of the velocity to distil")
    rule = args.rule or ("lsd" if args.density else "shortcut")
    teacher = checkpoint.load(args.teacher or checkpoint.teacher_path(args.density), device)
    given = dict(steps=args.steps, warm_steps=args.warm_steps, batch_size=args.batch_size, lr=args.lr,
                 coverage_fraction=args.coverage_fraction)
    config = train.distill_config(rule, device=args.device, **{k: v for k, v in given.items() if v is not None})
    if args.density:
        model = train.distill(teacher, toy.density(args.density), rule, config, seed=args.seed)
    else:
        data = read_tensor(args.data)
        model = student.distill(teacher, data, rule, config, seed=args.seed, name=args.data.stem,
                                metadata={"data": str(args.data)})
    out = args.out or checkpoint.flow_map_path(args.density or args.data.stem, rule)
    print(checkpoint.save_trained(model, out))
    return 0


DATA_SUFFIXES = (".pt", ".npy")


def read_tensor(path: Path):
    """The tensor in ``path``: ``torch.save`` (``.pt``, read with ``weights_only=True``) or ``numpy.save``
    (``.npy``, no pickles)."""
    import numpy as np
    import torch

    checks.choice(path.suffix, DATA_SUFFIXES, f"data file type of {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}")
    try:
        data = (torch.load(path, map_location="cpu", weights_only=True) if path.suffix == ".pt"
                else torch.from_numpy(np.load(path, allow_pickle=False)))
    except Exception as err:  # torch and numpy raise several types, depending on the damage
        raise ValueError(f"{path} is not a readable tensor file ({type(err).__name__})") from err
    if isinstance(data, torch.Tensor):
        return data
    raise ValueError(f"{path} holds a {type(data).__name__}; save one tensor [N, *shape] (torch.save(x, path))")


def _cmd_eval(args) -> int:
    from f2d2mini.bench import heldout

    device = resolve_device(args.device)
    model = checkpoint.load(args.checkpoint, device)
    name = args.density or model.metadata.get("density")
    if name is None:
        raise ValueError(f"{args.checkpoint} does not record its density; pass --density ({', '.join(toy.NAMES)})")
    density = toy.density(name)
    x = heldout(density, args.n, device)
    start = time.perf_counter()
    if isinstance(model, flowmap.JointFlowMap):
        steps = args.steps or 4
        log_prob = model.log_prob(x, steps, reversal=args.reversal)
        method, nfe = f"flow map, {steps} jumps, reversal {args.reversal}", steps
    else:
        res = ode.likelihood(model, x, args.solver, args.steps, divergence=args.divergence)
        log_prob, nfe = res.log_prob, res.nfe
        method = f"solver {args.solver}  steps {args.steps}  divergence {args.divergence}"
    seconds = time.perf_counter() - start
    nll = -log_prob.mean().item()
    print(f"density {name}  n {args.n}  {method}")
    print(f"NLL {nll:.4f} nats   NFE {nfe}   time {seconds:.2f} s")
    if density.has_log_prob:
        entropy = -density.log_prob(x).mean().item()
        print(f"exact entropy {entropy:.4f} nats   gap (NLL - entropy) {nll - entropy:.4f} nats")
    return 0


COMMANDS = {"teacher": _cmd_teacher, "distill": _cmd_distill, "eval": _cmd_eval,
            "bench": bench_cli.run, "images": images_cli.run}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad arguments, as argparse does)."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"f2d2mini {args.command}: error: {err}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
