"""``f2d2mini bench SUITE``: parses a suite's arguments, runs it, prints its tables and writes its JSON report.

Suites: ode, f2d2, digits, mnist, gpu, ood, gap, seeds, peer, own, error-norm, guidance, step-cost, chunk-cost
(``f2d2mini bench --help``; ``benchmarks/README.md`` says what each measures). The JSON lands in
``benchmarks/results/SUITE.json`` (dashes as underscores; ``SUITE_DATA.json`` for the suites of one dataset,
:data:`PER_DATASET`) unless ``--json`` says otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from f2d2mini import checkpoint, losses, ode, toy
from f2d2mini.bench.flowmaps import GRID_SIZE
from f2d2mini.bench.stepcost import ChunkCostConfig, StepCostConfig
from f2d2mini.loop import resolve_device
from f2d2mini.reports import write_report

__all__ = ["add_parser", "run", "RESULTS_DIR"]

RESULTS_DIR = Path("benchmarks") / "results"  # where ``f2d2mini bench SUITE`` writes SUITE.json by default
PER_DATASET = ("guidance", "step-cost", "chunk-cost", "gap")  # suites of one dataset: SUITE_DATA.json


def add_parser(sub, device: dict) -> None:
    """Adds ``bench`` and its suites to the main parser's subparsers."""
    b = sub.add_parser("bench", help="benchmarks against exact answers; print tables and write JSON")
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
    _add_split(mnist, "train on 9,000 test images (default) or on the training split from --root")
    mnist.add_argument("--seed", type=int, default=0, help="seed of the teacher and the map (default: %(default)s)")
    ood = suites.add_parser("ood", help="a digits or MNIST map's bits per dim of images that are not digits vs its "
                            "teacher")
    ood.add_argument("--maps", nargs="+", type=Path, default=[checkpoint.flow_map_path("digits", "shortcut")],
                     help="flow maps of one teacher (default: %(default)s)")
    ood.add_argument("--teacher", type=Path, help="its teacher (default: the shipped teacher of the maps' dataset)")
    ood.add_argument("--n", type=int, default=100, help="images of each kind (default: %(default)s)")
    ood.add_argument("--solver", choices=ode.SOLVERS, default="dopri5", help="the teacher's ODE solver")
    ood.add_argument("--ode-steps", type=int, help="steps of a fixed-step solver (e.g. rk4 8)")
    gap = suites.add_parser("gap", help="where an image map's bits-per-dim gap to its teacher lives: end and "
                            "divergence terms, spread, hardest images")
    gap.add_argument("--n", type=int, help="held-out images (default: all; MNIST's 1,000)")
    seeds = suites.add_parser("seeds", help="one rule's defaults trained under several seeds: divergence, spread")
    seeds.add_argument("--rule", choices=losses.RULES, default="meanflow")
    seeds.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    seeds.add_argument("--densities", nargs="+", choices=toy.NAMES, default=["checkerboard"])
    seeds.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR, help="folder with the teachers")
    error_norm = suites.add_parser("error-norm", help="dopri5 with per-point vs whole-batch error control")
    error_norm.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR, help="folder with the teachers")
    peer = suites.add_parser("peer", help="ODE likelihood and maps against facebookresearch/flow_matching's solver")
    peer.add_argument("--densities", nargs="+", choices=toy.NAMES, default=["checkerboard", "gaussians8"])
    peer.add_argument("--rules", nargs="+", choices=losses.RULES, default=list(losses.RULES))
    peer.add_argument("--maps", nargs="*", type=Path, default=[],
                      help="more maps of the first density's teacher (e.g. made by f2d2mini distill --data)")
    peer.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR, help="folder with the teachers")
    peer.add_argument("--n", type=int, default=2000, help="held-out points (default: %(default)s)")
    own = suites.add_parser("own", help="models f2d2mini did not create, distilled through f2d2mini.distill")
    own.add_argument("--parts", nargs="+", choices=("checkerboard", "wine"), default=["checkerboard", "wine"])
    own.add_argument("--checkpoints", type=Path, default=checkpoint.DEFAULT_DIR, help="folder with the teachers")
    own.add_argument("--n", type=int, default=10_000, help="held-out checkerboard points (default: %(default)s)")
    own.add_argument("--out", type=Path, help="folder to save the distilled maps in")
    gpu = suites.add_parser("gpu", help="one GPU, no network: MNIST bits per dim vs K, CIFAR-10 speed/memory")
    gpu.add_argument("--tiny", action="store_true", help="tiny budgets: checks that everything runs (CPU, < 2 min)")
    guide = suites.add_parser("guidance", help="self-guidance of image maps: FD, precision/recall vs the teacher")
    guide.add_argument("--maps", nargs="+", type=Path, help="flow maps (default: data/checkpoints/f2d2_RULE_DATA.pt "
                       "of every rule there)")
    guide.add_argument("--n", type=int, help="samples per map row (default: the dataset's, 10,000 for the digits)")
    guide.add_argument("--teacher-n", type=int, help="samples of the teacher's rows (default: the dataset's)")
    guide.add_argument("--lrs", type=float, nargs="+", help="learning rates of one guided step (default: a grid)")
    cost = suites.add_parser("step-cost", help="seconds per F2D2 training step of each rule on images (medians)")
    cost.add_argument("--rules", nargs="+", choices=losses.RULES, default=["shortcut", "meanflow"])
    cost.add_argument("--steps", type=int,
                      help=f"steps per rule (default: {StepCostConfig.steps}; --quick: the quick budget's)")
    cost.add_argument("--batch-size", type=int, help="default: the dataset's recipe")
    chunks = suites.add_parser("chunk-cost", help="milliseconds per image of a teacher ODE step and a map jump vs "
                               "the evaluation chunk's size")
    chunks.add_argument("--chunks", type=int, nargs="+",
                        help=f"images per chunk (default: {' '.join(map(str, ChunkCostConfig.chunks))})")
    for s in (chunks, gap):
        s.add_argument("--map", type=Path, help="the flow map (default: data/checkpoints/f2d2_shortcut_DATA.pt)")
    for s in (guide, cost, chunks, gap):
        s.add_argument("--data", choices=("digits", "mnist"), default="digits")
        s.add_argument("--teacher", type=Path, help="the teacher (default: data/checkpoints/teacher_DATA.pt)")
    for s in (guide, cost, chunks):
        s.add_argument("--quick", action="store_true", help="tiny budgets: checks that everything runs (seconds)")
    _add_split(guide, "MNIST: the maps' and classifier's training images, as in bench mnist")
    for s in (mnist, gpu, ood, guide, cost, chunks, gap):
        s.add_argument("--mnist", type=Path, help="folder with MNIST's t10k idx files (default: see the docs)")
    for s in (ode_, f2d2, digits, mnist, gpu, ood, gap, seeds, peer, own, error_norm, guide, cost, chunks):
        s.add_argument("--json", type=Path, help="output (default: benchmarks/results/SUITE.json)")
        s.add_argument("--device", **device)


def _add_split(parser, what: str) -> None:
    """``--train-split`` (``what`` it means for the suite) and the ``--root`` of the training split."""
    parser.add_argument("--train-split", choices=("test", "train"), default="test", help=what)
    parser.add_argument("--root", type=Path, default=Path("data"), help="dataset folder for --train-split train")


def _suite(args, device, json_path) -> dict:
    """The suite's ``{"tables": {name: Table}, "report": JSON-ready fields}``."""
    from f2d2mini import bench

    suites = {
        "ode": lambda: bench.ode_suite(args.densities, args.checkpoints, args.n, args.n_sweep, args.max_steps, device),
        "f2d2": lambda: bench.f2d2_suite(args.rules, args.densities, args.checkpoints, args.n, device, args.grid_size),
        "digits": lambda: bench.digits_cpu(args.out, args.rule, args.teacher),
        "mnist": lambda: bench.mnist_cpu(args.out, json_path.with_suffix(".png"), mnist=args.mnist, quick=args.quick,
                                         train_split=args.train_split, root=args.root, device=args.device,
                                         seed=args.seed),
        "gpu": lambda: bench.gpu_check(args.mnist, args.tiny, args.device),
        "seeds": lambda: bench.seeds_suite(args.rule, args.densities, args.seeds, args.checkpoints, device),
        "error-norm": lambda: bench.error_norm_suite(args.checkpoints, device),
        "own": lambda: bench.own_suite(args.checkpoints, args.n, args.out, args.parts, device),
        "peer": lambda: bench.peer_suite(args.densities, args.rules, args.maps, args.checkpoints, args.n, device),
        "ood": lambda: bench.ood_suite(args.maps, args.teacher, args.n, device, mnist=args.mnist,
                                       solver=args.solver, steps=args.ode_steps),
        "gap": lambda: bench.gap_suite(args.data, args.teacher, args.map, args.n, device, mnist=args.mnist),
        "guidance": lambda: bench.guidance_suite(args.data, _maps(args.maps), args.teacher, _guidance_config(args),
                                                 device, root=args.root, mnist=args.mnist,
                                                 train_split=args.train_split),
        "step-cost": lambda: bench.step_cost_suite(args.data, args.rules, args.teacher, _cost_config(args), device,
                                                   batch_size=args.batch_size, mnist=args.mnist),
        "chunk-cost": lambda: bench.chunk_cost_suite(args.data, args.teacher, args.map, _chunk_config(args), device,
                                                     mnist=args.mnist),
    }
    return suites[args.suite]()


def _maps(paths) -> dict | None:
    """``--maps`` as ``{file name: path}``."""
    return {p.stem: p for p in paths} if paths else None


def _guidance_config(args):
    from f2d2mini.bench import guidance

    config = guidance.QUICK if args.quick else guidance.RECIPES[args.data]
    given = {"n": args.n, "teacher_n": args.teacher_n, "lrs": tuple(args.lrs) if args.lrs else None}
    return replace(config, **{k: v for k, v in given.items() if v is not None})


def _cost_config(args):
    from f2d2mini.bench import stepcost

    config = stepcost.QUICK if args.quick else stepcost.StepCostConfig()
    return replace(config, steps=args.steps) if args.steps is not None else config


def _chunk_config(args):
    from f2d2mini.bench import stepcost

    config = stepcost.CHUNK_QUICK if args.quick else stepcost.ChunkCostConfig()
    return replace(config, chunks=tuple(args.chunks)) if args.chunks else config


def run(args) -> int:
    """Runs ``f2d2mini bench SUITE``: prints its tables and writes its JSON report."""
    device = resolve_device(args.device)
    name = args.suite.replace("-", "_") + (f"_{args.data}" if args.suite in PER_DATASET else "")
    json_path = args.json or RESULTS_DIR / f"{name}.json"
    result = _suite(args, device, json_path)
    for table in result["tables"].values():
        print(f"\n{table}")
    path = write_report(json_path, device, **result["report"])
    print(f"\nwrote {path}")
    return 0
