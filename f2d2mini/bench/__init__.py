"""Benchmarks measured against exact answers (not timed tests). The command line (``f2d2mini bench SUITE``) and
the scripts only call these; the JSON lands in ``benchmarks/results/``.

    solvers    "ode": the teachers' dopri5 likelihood vs the exact density; Euler / RK4 at K steps vs dopri5;
               "error-norm": the adaptive reference's per-point against whole-batch error control
    flowmaps   "f2d2": flow maps at K = 1, 2, 4, 8 vs the exact density and the teacher; speed; samples; guidance
    images     "digits" (CPU) and "gpu" (MNIST bits per dim vs K, the CIFAR-10 recipe's speed and memory)
    mnist      "mnist": real MNIST on the CPU, the teacher's dopri5 bits per dim against K jumps
    seeds      "seeds": one rule's defaults trained under several seeds (no divergence, the spread of the errors)
    ood        "ood": a digits or MNIST map's bits per dim of images that are not digits, against its teacher
    gap        "gap": where an image map's bits-per-dim gap to its teacher lives (end and divergence terms)
    own        "own": models f2d2mini did not create (a hidden teacher, wine features) through f2d2mini.distill
    peer       "peer": the ODE likelihood and the maps against facebookresearch/flow_matching's ODE solver
    guidance   "guidance": self-guidance of image maps: FD, precision/recall, confidence against the teacher
    stepcost   "step-cost": seconds per F2D2 training step of each rule on images; "chunk-cost": milliseconds per
               image of a teacher ODE step and a map jump against the evaluation chunk's size
    cli        the ``f2d2mini bench`` command
Their tables, JSON reports and timings are :mod:`f2d2mini.reports`.
"""

from f2d2mini.bench import flowmaps, gap, guidance, images, mnist, ood, own, peer, seeds, solvers, stepcost
from f2d2mini.bench.flowmaps import f2d2_suite
from f2d2mini.bench.gap import gap_suite
from f2d2mini.bench.guidance import guidance_suite
from f2d2mini.bench.images import digits_cpu, gpu_check
from f2d2mini.bench.mnist import mnist_cpu
from f2d2mini.bench.ood import ood_suite
from f2d2mini.bench.own import own_suite
from f2d2mini.bench.peer import peer_suite
from f2d2mini.bench.seeds import seeds_suite
from f2d2mini.bench.solvers import HELDOUT_SEED, error_norm_suite, heldout, ode_suite
from f2d2mini.bench.stepcost import chunk_cost_suite, step_cost_suite

__all__ = ["flowmaps", "gap", "guidance", "images", "mnist", "ood", "own", "peer", "seeds", "solvers", "stepcost",
           "f2d2_suite", "digits_cpu", "gpu_check", "mnist_cpu", "ood_suite", "gap_suite", "own_suite", "peer_suite",
           "seeds_suite", "ode_suite", "error_norm_suite", "guidance_suite", "step_cost_suite", "chunk_cost_suite",
           "heldout", "HELDOUT_SEED"]
