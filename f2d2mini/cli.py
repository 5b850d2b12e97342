"""The ``f2d2mini`` command line: train a teacher, evaluate likelihoods, run benchmarks.

    f2d2mini teacher --density checkerboard --out data/checkpoints/teacher_checkerboard.pt
    f2d2mini distill --density checkerboard --rule shortcut
    f2d2mini eval data/checkpoints/teacher_checkerboard.pt --solver rk4 --steps 8
    f2d2mini eval data/checkpoints/f2d2_shortcut_checkerboard.pt --steps 4
    f2d2mini bench ode --json benchmarks/results/ode_solvers.json
    f2d2mini images teacher --data digits      (and distill, bpd, sample: see f2d2mini.images.cli)

Bad names and ``--device cuda`` without a GPU exit with status 2 and a message listing the choices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from f2d2mini import bench, checkpoint, flowmap, losses, ode, pretrained, toy, train
from f2d2mini.images import cli as images_cli

__all__ = ["main", "HELDOUT_SEED"]

HELDOUT_SEED = 12345  # seed of the held-out evaluation points (training draws from its own seeded stream)
CHECKPOINT_DIR = Path("data/checkpoints")
USAGE_ERROR = 2


def _add_training_args(parser: argparse.ArgumentParser, defaults: train.LoopConfig | None, device: dict) -> None:
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
    device = dict(choices=train.DEVICES, default="auto", help="where to run (default: %(default)s)")

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

    b = sub.add_parser("bench", help="benchmarks against exact densities; print a table and write JSON")
    b.add_argument("suite", choices=("ode", "f2d2"),
                   help="ode: teacher NLL and fixed-step solvers vs dopri5; f2d2: flow maps vs exact and teacher")
    b.add_argument("--rules", nargs="+", choices=losses.RULES, default=list(losses.RULES), help="f2d2 suite")
    b.add_argument("--densities", nargs="+", choices=toy.NAMES, default=["checkerboard", "gaussians8"])
    b.add_argument("--checkpoints", type=Path, default=CHECKPOINT_DIR, help="folder with teacher_DENSITY.pt")
    b.add_argument("--n", type=int, default=10_000, help="held-out points for the dopri5 NLL")
    b.add_argument("--n-sweep", type=int, default=1000, help="points for the fixed-step sweep")
    b.add_argument("--max-steps", type=int, default=1024, help="largest K of the sweep (powers of two)")
    b.add_argument("--json", type=Path, help="output (default: benchmarks/results/SUITE.json)")
    b.add_argument("--device", **device)
    images_cli.add_parser(sub, device)
    return p


def _heldout(density: toy.Density, n: int, device: torch.device) -> torch.Tensor:
    return density.sample(n, seed=HELDOUT_SEED).to(device)


def _cmd_teacher(args) -> int:
    config = train.TeacherConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, device=args.device)
    model = train.teacher(toy.density(args.density), config, seed=args.seed)
    out = args.out or pretrained.teacher_path(args.density, CHECKPOINT_DIR)
    checkpoint.save(model, out, {"density": args.density, "seed": args.seed, "train_config": asdict(config)})
    print(f"saved {out} (trained {model.history.seconds:.0f} s, final loss {model.history.loss[-1]:.4f})")
    return 0


def _cmd_distill(args) -> int:
    device = train.resolve_device(args.device)
    teacher = checkpoint.load(args.teacher or pretrained.teacher_path(args.density, CHECKPOINT_DIR), device)
    given = dict(steps=args.steps, warm_steps=args.warm_steps, batch_size=args.batch_size, lr=args.lr)
    config = train.distill_config(args.rule, device=args.device, **{k: v for k, v in given.items() if v is not None})
    model = train.distill(teacher, toy.density(args.density), args.rule, config, seed=args.seed)
    out = args.out or pretrained.flow_map_path(args.density, args.rule, CHECKPOINT_DIR)
    checkpoint.save(model, out, {"density": args.density, "rule": args.rule, "seed": args.seed,
                                 "train_config": asdict(config)})
    print(f"saved {out} (trained {model.history.seconds:.0f} s, final loss {model.history.loss[-1]:.4f})")
    return 0


def _cmd_eval(args) -> int:
    device = train.resolve_device(args.device)
    model = checkpoint.load(args.checkpoint, device)
    name = args.density or model.metadata.get("density")
    if name is None:
        raise ValueError(f"{args.checkpoint} does not record its density; pass --density ({', '.join(toy.NAMES)})")
    density = toy.density(name)
    x = _heldout(density, args.n, device)
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


def _cmd_bench_ode(args) -> int:
    device = train.resolve_device(args.device)
    steps = [2**i for i in range(args.max_steps.bit_length()) if 2**i <= args.max_steps]
    refs, rows = [], []
    for name in args.densities:
        path = pretrained.teacher_path(name, args.checkpoints)
        if not path.is_file():
            raise FileNotFoundError(f"no teacher at {path}; make it with: f2d2mini teacher --density {name}")
        model, density = checkpoint.load(path, device), toy.density(name)
        x = _heldout(density, args.n, device)
        ref, ref_lp = bench.reference(model, density, x)
        refs.append(ref)
        rows += bench.likelihood_vs_solver(model, density, x[: args.n_sweep], ref_lp[: args.n_sweep], steps=steps)
    print("Teacher likelihood (dopri5, rtol = atol = 1e-5, exact divergence) against the exact density:")
    print(bench.format_table(refs))
    print(f"\nFixed-step coupled ODE against dopri5 on {args.n_sweep} of those points:")
    print(bench.format_table(rows))
    _write_report(args, device, reference=[asdict(r) for r in refs], solvers=[asdict(r) for r in rows])
    return 0


def _write_report(args, device, **tables) -> None:
    path = args.json or Path(f"benchmarks/results/{args.suite}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(), **tables}
    path.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {path}")


GUIDANCE_LRS = (0.0, 0.05, 0.1, 0.2)  # self-guidance step sizes compared by the f2d2 benchmark
N_SAMPLES = 4000  # samples per sample-quality measurement
TEACHER_SAMPLE_STEPS = 100  # Euler steps of the teacher's reference samples


def _cmd_bench_f2d2(args) -> int:
    from f2d2mini import base, guidance, metrics

    device = train.resolve_device(args.device)
    lik, speed, samples, guide = [], [], [], []
    for name in args.densities:
        teacher, density = checkpoint.load(pretrained.teacher_path(name, args.checkpoints), device), toy.density(name)
        x = _heldout(density, args.n, device)
        ref, ref_lp = bench.reference(teacher, density, x)
        exact = density.log_prob(x)
        for k in (1, 2, 4, 8):
            for solver, steps in (("euler", k), ("rk4", k // 4)):
                if steps:
                    lp = ode.likelihood(teacher, x, solver, steps).log_prob
                    lik.append(bench.likelihood_row(density, f"teacher {solver}", k, lp, exact, ref_lp))
        data = density.sample(N_SAMPLES, seed=HELDOUT_SEED + 1).to(device)
        noise = base.sample(N_SAMPLES, (density.dim,), seed=HELDOUT_SEED + 2, device=device)
        swd_teacher = metrics.sliced_wasserstein(ode.sample(teacher, noise, TEACHER_SAMPLE_STEPS), data)
        for rule in args.rules:
            path = pretrained.flow_map_path(name, rule, args.checkpoints)
            if not path.is_file():
                raise FileNotFoundError(f"no flow map at {path}; make it with: "
                                        f"f2d2mini distill --density {name} --rule {rule}")
            model = checkpoint.load(path, device)
            for k in (1, 2, 4, 8):
                for reversal in flowmap.REVERSALS:
                    method = f"f2d2 {rule}" + (" first-order" if reversal == "first_order" else "")
                    lp = model.log_prob(x, k, reversal=reversal)
                    lik.append(bench.likelihood_row(density, method, k, lp, exact, ref_lp))
            k4 = bench.median_seconds(lambda: model.log_prob(x, 4))  # noqa: B023
            speed.append({"density": name, "rule": rule, "n": args.n, "k4_seconds": k4,
                          "dopri5_seconds": ref.seconds, "dopri5_nfe": ref.nfe, "speedup": ref.seconds / k4,
                          "train_seconds": model.metadata.get("history", {}).get("seconds", float("nan"))})
            for k in (1, 2, 4):
                swd = metrics.sliced_wasserstein(model.sample(noise, k), data)
                samples.append({"density": name, "rule": rule, "steps": k, "swd": swd,
                                "swd_teacher_100": swd_teacher, "ratio": swd / swd_teacher})
            for lr in GUIDANCE_LRS:
                x0 = guidance.self_guide(model, noise, lr) if lr > 0 else noise
                x1 = model.sample(x0, 1)
                inside = torch.isfinite(density.log_prob(x1))
                guide.append({"density": name, "rule": rule, "lr": lr,
                              "mean_log_p_inside": density.log_prob(x1[inside]).mean().item(),
                              "support": inside.double().mean().item(), "spread": x1.std(0).mean().item(),
                              "swd": metrics.sliced_wasserstein(x1, data)})
    for title, table in (("Log-likelihood error (nats) of held-out points", lik),
                         ("K = 4 likelihood against dopri5, same run", speed),
                         ("Sample distance to fresh data (sliced W2)", samples),
                         ("Self-guidance, 1-step samples", guide)):
        print(f"\n{title}:\n{bench.format_table(table)}")
    _write_report(args, device, likelihood=[asdict(r) for r in lik], speed=speed, samples=samples, guidance=guide)
    return 0


BENCHMARKS = {"ode": _cmd_bench_ode, "f2d2": _cmd_bench_f2d2}
COMMANDS = {"teacher": _cmd_teacher, "distill": _cmd_distill, "eval": _cmd_eval,
            "bench": lambda args: BENCHMARKS[args.suite](args), "images": images_cli.run}


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
