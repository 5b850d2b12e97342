"""F2D2 distillation for any data (book chapter 4): its config, each rule's CPU defaults, and the phased loss.

A batch splits into a tangent part (s = t: the map's (u, D) regresses onto the teacher's v and -div v) and an
off-diagonal part ((t, s) over the whole square, both directions: one of the rules of :mod:`f2d2mini.losses`).
Training is phased: the D terms have weight 0 for ``warm_steps``, then ``d_weight``. The 2-D front door is
:func:`f2d2mini.train.distill`, the image one :func:`f2d2mini.images.distill`; both hand :func:`distill_loss` to
:func:`f2d2mini.loop.fit`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from f2d2mini import base, checks, coverage, flowmap, losses, nets, ode, times
from f2d2mini.loop import LoopConfig, resolve_device

__all__ = ["DistillConfig", "RULE_CHANGES", "COVERAGE_SOURCES", "BANK_SEED", "PathPoints", "distill_config",
           "distill_loss", "frozen"]


@dataclass(frozen=True)
class DistillConfig(LoopConfig):
    """F2D2 distillation of a teacher velocity into a joint flow map.

    Phased: for ``warm_steps`` only the velocity part u is trained (the D loss has weight 0), then D joins
    with weight ``d_weight``. A fraction ``diagonal_fraction`` of each batch has s = t (tangent targets from
    the teacher); the rest draws (t, s) over the whole square, so backward jumps are trained too. A share
    ``coverage_fraction`` of both parts sits off the data path, on the teacher's trajectories from the square
    [-coverage_box, coverage_box]^d (:mod:`f2d2mini.coverage`), so that the map's likelihood holds there too.
    The defaults are the Lagrangian and MeanFlow rules' CPU settings; :func:`distill_config` gives each rule's.
    """

    steps: int = 9000  # the Lagrangian and MeanFlow rules' CPU budget (timings: benchmarks/README.md)
    batch_size: int = 512
    lr: float = 1e-3
    warm_steps: int = 2000  # phase 1: velocity part only
    diagonal_fraction: float = 0.25  # share of each batch on the diagonal s = t
    d_weight: float = 0.5  # weight of the D loss in phase 2
    div_scale: float | None = None  # R: the map's scalar head regresses D / R (saved in its config); None: R = d
    divergence: str = "exact"  # teacher divergence targets: "exact" (2-D) or "hutchinson"
    probes: int = 1  # Hutchinson probes per point
    time_power: float = 1.0  # t, s = 1 - (1 - U)^time_power: 1 is uniform, > 1 favours the data end
    step_fraction: float = 0.0  # share of the off-diagonal pairs drawn from the K-step schedules used at evaluation
    eval_steps: tuple[int, ...] = flowmap.EVAL_STEPS  # those K: pairs (k/K, (k +- 1)/K), forward and backward
    adaptive_power: float = 0.0  # p of MeanFlow's adaptive per-point weight 1 / (error + c)^p (0: plain squares)
    coverage_fraction: float = 0.25  # share of each part of a batch on the teacher's trajectories (0: none)
    coverage_box: float = 6.0  # half-width B of the square [-B, B]^d covered at t = 1 (saved as model.region)
    coverage_points: int = 5000  # trajectories of the teacher from the square, solved once per run
    coverage_steps: int = 32  # stored states per trajectory, at t = 1 - k / steps (a multiple of every K in eval_steps)
    coverage_source: str = "cube"  # where the trajectories start at t = 1: the square above, or "data" points
    coverage_solver: str = "rk4"  # the bank's solver: fixed RK4 steps, or adaptive "dopri5" (per-point tolerance)
    div_hidden: int = 128  # hidden units of a U-Net map's divergence head
    profile_intervals: int = 0  # J > 0: a U-Net map's D = P(t, s) (1 + head) over the teacher's divergence profile
    profile_points: int = 256  # data-path points whose mean -div v makes the profile at each of its J + 1 knots
    net: nets.MLPConfig | None = None  # a fresh map's architecture (an MLPConfig, or an images.UNetConfig); None: the
    # teacher's own when it is a VelocityMLP or UNetVelocity (warm start), else one chosen from the data's shape


RULE_CHANGES = {
    # Why each rule differs from the defaults: chapter 4 and benchmarks/README.md have the measurements.
    # The adaptive weight keeps the stiff coverage jumps off the data from dominating the loss.
    "lsd": {"adaptive_power": 0.5},
    # With its derivative trained (losses.eulerian_prediction) the Eulerian rule takes a larger step.
    "meanflow": {"lr": 2e-3, "adaptive_power": 0.5},
    # Its targets are its own half jumps, so it needs more steps; data-end times and single steps of the evaluation
    # schedules put them where the likelihood error sits (the other rules lose with these; a larger lr diverges).
    # A short velocity-only phase: D learns from its own half jumps too, and gains more from the extra steps than
    # from a better-settled u.
    "shortcut": {"steps": 10_000, "warm_steps": 1000, "time_power": 2.0, "step_fraction": 0.5,
                 "adaptive_power": 0.5},
}


def distill_config(rule: str = "lsd", **changes) -> DistillConfig:
    """The CPU defaults of ``rule`` (``DistillConfig()`` with ``RULE_CHANGES[rule]``), then ``changes``."""
    checks.choice(rule, losses.RULES, "rule")
    return dataclasses.replace(DistillConfig(), **{**RULE_CHANGES[rule], **changes})


def frozen(teacher, device: torch.device):
    """A teacher module as training uses it: a copy on ``device``, in eval mode, without gradients of its own (any
    other callable, e.g. ``GaussianMixture.velocity``, as it is)."""
    if isinstance(teacher, nn.Module):
        return copy.deepcopy(teacher).to(device).eval().requires_grad_(False)
    return teacher


def distill_loss(teacher, draw: Callable, rule: str, config: DistillConfig) -> Callable:
    """The phased F2D2 loss as a ``fit`` loss, for any data: ``draw(generator, step) -> Batch(x0, x1)``.

    A fraction ``config.diagonal_fraction`` of the batch gets the tangent loss against ``teacher``, the rest the
    off-diagonal ``rule`` at (t, s) over the whole square; the D terms have weight 0 before ``config.warm_steps``.
    A share ``config.coverage_fraction`` of each part comes from the teacher's trajectories from the square
    (:mod:`f2d2mini.coverage`, built at the first step): tangent points there, and the teacher's exact jumps in place
    of the rule's targets. A teacher module is used through a frozen copy on ``config.device``. ``config.div_scale``
    is the map's R (:func:`f2d2mini.student.distill` sets it).
    """
    checks.choice(rule, losses.RULES, "rule")
    checks.choice(config.divergence, ode.DIVERGENCES, "divergence")
    checks.choice(config.coverage_source, COVERAGE_SOURCES, "coverage_source")
    checks.choice(config.coverage_solver, ode.SOLVERS, "coverage_solver")
    if not (isinstance(config.div_scale, (int, float)) and config.div_scale > 0):
        raise ValueError(f"config.div_scale must be the map's R > 0, got {config.div_scale!r}")
    device = resolve_device(config.device)
    teacher = frozen(teacher, device)
    sizes = _sizes(config)
    rule_loss = losses.RULE_LOSSES[rule]
    eval_steps = torch.tensor(config.eval_steps, device=device)  # once, not a host-to-device copy per step
    bank = None

    def loss_fn(model, step, gen):
        nonlocal bank
        x0, x1 = draw(gen, step)
        if bank is None and config.coverage_fraction:  # the data's shape is known now
            bank = _bank(teacher, draw, tuple(x1.shape[1:]), config, device)
        tangent, off = _path_points(x0, x1, bank, sizes, eval_steps, config.time_power, gen)
        weights = dict(d_weight=0.0 if step < config.warm_steps else config.d_weight, div_scale=config.div_scale,
                       adaptive_power=config.adaptive_power)
        target = losses.teacher_targets(teacher, tangent.x, tangent.t, config.divergence, config.probes, gen)
        diag = losses.tangent(model, target, tangent.x, tangent.t, **weights)
        off = rule_loss(model, teacher, off.x, off.t, off.s, divergence=config.divergence, probes=config.probes,
                        generator=gen, **weights)
        if sizes.covered_jumps:  # drawn after the rule has drawn its probes from the same stream
            jump = coverage.jumps(bank, sizes.covered_jumps, eval_steps, gen)
            cover = losses.teacher_jumps(model, jump.x, jump.t, jump.s, losses.Targets(jump.u, jump.D), **weights)
            off = losses.LossOutput(off.loss + cover.loss, {**off.metrics, **cover.metrics})
        return losses.LossOutput(diag.loss + off.loss, {**diag.metrics, **off.metrics})

    return loss_fn


COVERAGE_SOURCES = ("cube", "data")
BANK_SEED = 0  # the random stream of the bank's start points and probes (never the training's)


def _bank(teacher, draw: Callable, shape: tuple[int, ...], config: DistillConfig, device) -> coverage.TrajectoryBank:
    """The teacher's trajectories from ``config.coverage_points`` points of the square (``coverage_source="cube"``)
    or of the data (``"data"``: batches of ``draw`` from the bank's own stream)."""
    solve = dict(divergence=config.divergence, progress=config.progress, solver=config.coverage_solver)
    if config.coverage_source == "cube":
        return coverage.trajectories(teacher, config.coverage_box, shape, config.coverage_points,
                                     config.coverage_steps, device=device, seed=BANK_SEED, **solve)
    gen = base.make_generator(BANK_SEED, device)
    x1 = base.draw_points(draw, config.coverage_points, gen).x1
    return coverage.carry_back(teacher, x1, config.coverage_steps, generator=gen, **solve)


class _Sizes(NamedTuple):
    """How a batch divides: ``diagonal`` tangent points (``covered_tangent`` of them from the coverage bank), then
    the off-diagonal ones (``on_schedule`` of them single steps of the K-step schedules, ``covered_jumps`` the
    teacher's jumps from the bank, the rest where the rule sets the targets)."""

    diagonal: int
    on_schedule: int
    covered_tangent: int
    covered_jumps: int
    off_diagonal: int


class PathPoints(NamedTuple):
    """Points ``x`` ``[n, *shape]`` at times ``t`` with jumps to ``s`` (``[n]`` each; s = t on the diagonal)."""

    x: torch.Tensor
    t: torch.Tensor
    s: torch.Tensor


def _sizes(config: DistillConfig) -> _Sizes:
    n_diag = round(config.batch_size * config.diagonal_fraction)
    n_off = config.batch_size - n_diag
    if not 0 < n_diag < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} with diagonal_fraction {config.diagonal_fraction} leaves "
                         f"{n_diag} tangent and {n_off} off-diagonal points; both need >= 1")
    jumps = round(n_off * config.coverage_fraction)
    if config.coverage_fraction and (jumps == n_off or any(config.coverage_steps % k for k in config.eval_steps)):
        raise ValueError(f"coverage_fraction {config.coverage_fraction} must leave off-diagonal points to the rule "
                         f"(it leaves {n_off - jumps}), and coverage_steps {config.coverage_steps} must be a "
                         f"multiple of every K in eval_steps {config.eval_steps}")
    return _Sizes(n_diag, round(n_off * config.step_fraction), round(n_diag * config.coverage_fraction), jumps, n_off)


def _path_points(x0, x1, bank, sizes: _Sizes, eval_steps, time_power: float, gen) -> tuple[PathPoints, PathPoints]:
    """The batch's tangent points (on the data path, then ``sizes.covered_tangent`` stored states of the bank) and
    its off-diagonal points for the rule, on the data path at (t, s) of :func:`_pairs`."""
    t, s = _pairs(len(x1), sizes.diagonal, sizes.on_schedule, eval_steps, time_power, gen)
    xt = losses.interpolate(x0, x1, t)
    on_path = sizes.diagonal - sizes.covered_tangent
    tangent = PathPoints(xt[:on_path], t[:on_path], t[:on_path])
    if sizes.covered_tangent:
        cover = coverage.tangent_points(bank, sizes.covered_tangent, gen)
        t_all = torch.cat([tangent.t, cover.t])
        tangent = PathPoints(torch.cat([tangent.x, cover.x]), t_all, t_all)
    rule = slice(sizes.diagonal, len(x1) - sizes.covered_jumps)
    return tangent, PathPoints(xt[rule], t[rule], s[rule])


def _pairs(n: int, n_diag: int, n_steps: int, eval_steps: torch.Tensor, time_power: float, gen) -> times.TimePairs:
    """The batch's (t, s): the first ``n_diag`` on the diagonal, the next ``n_steps`` single steps of the K-step
    schedules, the rest skewed times over the whole square."""
    t = times.skewed(n, time_power, gen)
    s = torch.cat([t[:n_diag], times.skewed(n - n_diag, time_power, gen)])
    if n_steps:
        t[n_diag:n_diag + n_steps], s[n_diag:n_diag + n_steps] = times.step_pairs(n_steps, eval_steps, gen)
    return times.TimePairs(t, s)
