"""The ``f2d2mini`` command line: train a teacher, distil it, evaluate likelihoods, run benchmarks.

    f2d2mini teacher --density checkerboard --out data/checkpoints/teacher_checkerboard.pt
    f2d2mini distill --density checkerboard --rule shortcut
    f2d2mini eval data/checkpoints/teacher_checkerboard.pt --solver rk4 --steps 8
    f2d2mini eval data/checkpoints/f2d2_shortcut_checkerboard.pt --steps 4
    f2d2mini bench ode --json benchmarks/results/ode_solvers.json      (suites: ode, f2d2, digits, mnist, gpu)
    f2d2mini images teacher --data digits      (and distill, bpd, sample: see f2d2mini.images.cli)

Checkpoints are written to and read from ``data/checkpoints`` under the working directory unless a path is
given. Bad names and ``--device cuda`` without a GPU exit with status 2 and a message listing the choices.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from f2d2mini import checkpoint, flowmap, losses, ode, toy, train
from f2d2mini.bench.flowmaps import GRID_SIZE
from f2d2mini.images import cli as images_cli
from f2d2mini.loop import DEVICES, LoopConfig, resolve_device

__all__ = ["main"]

USAGE_ERROR = 2
RESULTS_DIR = Path("benchmarks") / "results"  # where ``f2d2mini bench SUITE`` writes SUITE.json by default


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
    d.add_argument("--density", choices=toy.NAMES, required=True)
    d.add_argument("--rule", choices=losses.RULES, default="lsd")
    d.add_argument("--teacher", type=Path, help="teacher checkpoint (default: data/checkpoints/teacher_DENSITY.pt)")
    d.add_argument("--out", type=Path, help="checkpoint path (default: data/checkpoints/f2d2_RULE_DENSITY.pt)")
    _add_training_args(d, None, device)  # unset: the rule's own defaults, train.distill_config(rule)
    d.add_argument("--warm-steps", type=int, help="steps before the D head joins (default: the rule's)")

    e = sub.add_parser("eval", help="log-likelihood of held-out samples under a saved teacher or flow map")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--density", choices=toy.NAMES, help="data to score (default: the one it was trained on)")
    e.add_argument("--n", type=int, default=10_000, help="held-out points")
    e.add_argument("--solver", choices=ode.SOLVERS, default="dopri5", help="teacher: the ODE solver")
    e.add_argument("--steps", type=int, help="teacher: steps of a fixed-step solver; flow map: jumps K (4)")
    e.add_argument("--divergence", choices=ode.DIVERGENCES, default="exact")
    e.add_argument("--reversal", choices=flowmap.REVERSALS, default="exact", help="flow map: backward jumps")
    e.add_argument("--device", **device)

    _bench_parser(sub.add_parser("bench", help="benchmarks against exact answers; print tables and write JSON"),
                  device)
    images_cli.add_parser(sub, device)
    return p


def _bench_parser(b: argparse.ArgumentParser, device: dict) -> None:
    suites = b.add_subparsers(dest="suite", required=True)
    ode_ = suites.add_parser("ode", help="teacher NLL vs exact entropy; fixed-step solvers vs dopri5")
    f2d2 = suites.add_parser("f2d2", help="flow maps at K = 1, 2, 4, 8 vs exact and teacher; speed; samples")
    f2d2.add_argument("--rules", nargs="+", choices=losses.RULES, default=list(losses.RULES))
    f2d2.add_argument("--grid-size", type=int, default=GRID_SIZE,
                      help="points per side of the grid suite on [-6, 6]^2 (default: %(default)s)")
    for s in (ode_, f2d2):
        s.add_argument("--densities", nargs="+", choices=toy.NAMES, default=["checkerboard", "gaussians8"])
        s.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR,
                       help="folder with teacher_DENSITY.pt (default: %(default)s)")
        s.add_argument("--n", type=int, default=10_000, help="held-out points for the dopri5 NLL")
    ode_.add_argument("--n-sweep", type=int, default=1000, help="points for the fixed-step sweep")
    ode_.add_argument("--max-steps", type=int, default=1024, help="largest K of the sweep (powers of two)")
    digits = suites.add_parser("digits", help="digits on the CPU: teacher, F2D2, bits per dim vs K, samples")
    digits.add_argument("--out", type=Path, required=True, help="folder for the checkpoints and samples.png")
    digits.add_argument("--rule", choices=losses.RULES, help="default: the digits recipe's")
    digits.add_argument("--teacher", type=Path, help="reuse this teacher checkpoint instead of training one")
    mnist = suites.add_parser("mnist", help="real MNIST on the CPU: teacher, F2D2, bits per dim vs K, samples")
    mnist.add_argument("--out", type=Path, required=True, help="folder for the checkpoints")
    mnist.add_argument("--quick", action="store_true", help="tiny budgets: checks that everything runs (a minute)")
    mnist.add_argument("--train-split", choices=("test", "train"), default="test",
                       help="train on 9,000 test images (default) or on the training split from --root")
    mnist.add_argument("--root", type=Path, default=Path("data"), help="dataset folder for --train-split train")
    ood = suites.add_parser("ood", help="a digits map's bits per dim of images that are not digits vs its teacher")
    ood.add_argument("--maps", nargs="+", type=Path, default=[checkpoint.flow_map_path("digits", "shortcut")],
                     help="flow maps of one teacher (default: %(default)s)")
    ood.add_argument("--teacher", type=Path, help="its teacher (default: data/checkpoints/teacher_digits.pt)")
    ood.add_argument("--n", type=int, default=100, help="images of each kind (default: %(default)s)")
    ood.add_argument("--solver", choices=ode.SOLVERS, default="dopri5", help="the teacher's ODE solver")
    ood.add_argument("--ode-steps", type=int, help="steps of a fixed-step solver (e.g. rk4 8)")
    seeds = suites.add_parser("seeds", help="one rule's defaults trained under several seeds: divergence, spread")
    seeds.add_argument("--rule", choices=losses.RULES, default="meanflow")
    seeds.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    seeds.add_argument("--densities", nargs="+", choices=toy.NAMES, default=["checkerboard"])
    seeds.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR, help="folder with the teachers")
    gpu = suites.add_parser("gpu", help="one GPU, no network: MNIST bits per dim vs K, CIFAR-10 speed/memory")
    gpu.add_argument("--tiny", action="store_true", help="tiny budgets: checks that everything runs (CPU, < 2 min)")
    for s in (mnist, gpu):
        s.add_argument("--mnist", type=Path, help="folder with MNIST's t10k idx files (default: see the docs)")
    for s in (ode_, f2d2, digits, mnist, gpu, ood, seeds):
        s.add_argument("--json", type=Path, help="output (default: benchmarks/results/SUITE.json)")
        s.add_argument("--device", **device)


def _cmd_teacher(args) -> int:
    config = train.TeacherConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device)
    model = train.teacher(toy.density(args.density), config, seed=args.seed)
    _save(model, args.out or checkpoint.teacher_path(args.density))
    return 0


def _save(model, out: Path) -> None:
    checkpoint.save(model, out)
    print(f"saved {out} (trained {model.history.seconds:.0f} s, final loss {model.history.loss[-1]:.4f})")


def _cmd_distill(args) -> int:
    device = resolve_device(args.device)
    teacher = checkpoint.load(args.teacher or checkpoint.teacher_path(args.density), device)
    given = dict(steps=args.steps, warm_steps=args.warm_steps, batch_size=args.batch_size, lr=args.lr)
    config = train.distill_config(args.rule, device=args.device, **{k: v for k, v in given.items() if v is not None})
    model = train.distill(teacher, toy.density(args.density), args.rule, config, seed=args.seed)
    _save(model, args.out or checkpoint.flow_map_path(args.density, args.rule))
    return 0


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


def _suite(args, device, json_path) -> dict:
    """Runs ``f2d2mini bench SUITE``: ``{"tables": {name: Table}, "report": JSON-ready fields}``."""
    from f2d2mini import bench

    if args.suite in ("ode", "f2d2"):
        tables = (bench.ode_suite(args.densities, args.checkpoints, args.n, args.n_sweep, args.max_steps, device)
                  if args.suite == "ode" else
                  bench.f2d2_suite(args.rules, args.densities, args.checkpoints, args.n, device, args.grid_size))
        return {"tables": tables, "report": {name: table.rows for name, table in tables.items()}}
    suites = {
        "digits": lambda: bench.digits_cpu(args.out, args.rule, args.teacher),
        "mnist": lambda: bench.mnist_cpu(args.out, json_path.with_suffix(".png"), mnist=args.mnist, quick=args.quick,
                                         train_split=args.train_split, root=args.root, device=args.device),
        "gpu": lambda: bench.gpu_check(args.mnist, args.tiny, args.device),
        "seeds": lambda: bench.seeds_suite(args.rule, args.densities, args.seeds, args.checkpoints, device),
        "ood": lambda: bench.ood_suite(args.maps, args.teacher, args.n, device, solver=args.solver,
                                       steps=args.ode_steps),
    }
    return suites[args.suite]()


def _cmd_bench(args) -> int:
    from f2d2mini import bench

    device = resolve_device(args.device)
    json_path = args.json or RESULTS_DIR / f"{args.suite}.json"
    result = _suite(args, device, json_path)
    for table in result["tables"].values():
        print(f"\n{table}")
    path = bench.write_report(json_path, device, **result["report"])
    print(f"\nwrote {path}")
    return 0


COMMANDS = {"teacher": _cmd_teacher, "distill": _cmd_distill, "eval": _cmd_eval,
            "bench": _cmd_bench, "images": images_cli.run}


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
