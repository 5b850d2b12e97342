"""Training on 2-D densities (book chapters 1 and 4): the flow-matching teacher, and F2D2 distillation of it.

The teacher hands :func:`teacher_loss` (flow matching on batches from any ``draw`` function, also used for images)
to the one training loop, :func:`f2d2mini.loop.fit`; :func:`distill` is the front door
:func:`f2d2mini.student.distill` on fresh samples of a density.
``DistillConfig`` and ``distill_config`` are :mod:`f2d2mini.distillation`'s, named here too so that the 2-D API
reads ``f2.train.distill(teacher, density, rule, f2.train.DistillConfig(...))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from f2d2mini import base, flowmap, losses, nets, student, toy
from f2d2mini.distillation import DistillConfig, distill_config
from f2d2mini.loop import LoopConfig, fit

__all__ = ["TeacherConfig", "DistillConfig", "teacher", "distill", "distill_config",
           "density_batches", "STEP_SEED_STRIDE"]

STEP_SEED_STRIDE = student.STEP_SEED_STRIDE  # step k of seed s draws its data from seed s * STRIDE + k off the CPU


@dataclass(frozen=True)
class TeacherConfig(LoopConfig):
    """Flow-matching teacher on a 2-D density: loop settings and the network (whose config owns the base's sigma0)."""

    steps: int = 13_000  # a few minutes on a laptop CPU (benchmarks/README.md)
    batch_size: int = 512
    lr: float = 5e-3
    net: nets.MLPConfig = field(default_factory=lambda: nets.MLPConfig(space_features=nets.SPACE_FEATURES))
    time_power: float = 2.0  # t = 1 - (1 - U)^time_power, U ~ U(0, 1): 1 is uniform, > 1 favours the data end


def density_batches(density: toy.Density, n: int, sigma0: float, seed: int) -> Callable:
    """``draw(generator, step) -> Batch(x0, x1)``: noise x0 ~ N(0, sigma0^2 I) and fresh data x1 ~ density, both on
    the generator's device. Densities sample on the CPU: CPU runs reuse the loop's generator, others a per-step one.
    """

    def draw(gen: torch.Generator, step: int) -> base.Batch:
        cpu_gen = gen if gen.device.type == "cpu" else base.make_generator(seed * STEP_SEED_STRIDE + step)
        x1 = density.sample(n, generator=cpu_gen).to(gen.device)
        return base.Batch(sigma0 * torch.randn(x1.shape, generator=gen, device=gen.device), x1)

    return draw


def teacher(density: toy.Density, config: TeacherConfig = TeacherConfig(), seed: int = 0) -> nets.VelocityMLP:
    """Trains a flow-matching velocity v(x, t) on ``density`` (fresh samples every step); returns its EMA.

    The loss is :func:`f2d2mini.losses.flow_matching` on the linear path from N(0, sigma0^2 I) (t = 0) to the
    data (t = 1), with t = 1 - (1 - U)^time_power, U ~ U(0, 1).
    """
    torch.manual_seed(seed)
    model = nets.VelocityMLP(config.net)
    draw = density_batches(density, config.batch_size, config.net.sigma0, seed)
    return fit(model, losses.teacher_loss(draw, config.time_power), config, seed=seed, desc=f"teacher {density.name}",
               metadata={"density": density.name})


def distill(teacher, density: toy.Density, rule: str = "lsd", config: DistillConfig | None = None,
            seed: int = 0) -> flowmap.JointFlowMap:
    """F2D2 on a 2-D density: :func:`f2d2mini.student.distill` of ``teacher`` (any differentiable ``v(x, t)``) on
    fresh samples of ``density`` every step.

    ``config`` defaults to the rule's CPU settings, :func:`distill_config` ``(rule)``. A
    :class:`~f2d2mini.nets.VelocityMLP` teacher warm-starts the map (u(x, t, s) = v(x, t), D = 0) with its own
    architecture; any other callable (e.g. ``GaussianMixture.velocity``) gets a fresh map (``config.net``, or the
    MLP for 2-D points). Returns the EMA model with ``.history``, ``.metadata`` and ``.region`` (the square its
    likelihood was trained on, :class:`f2d2mini.coverage.Region`; ``None`` without coverage).
    """
    config = distill_config(rule) if config is None else config
    draw = density_batches(density, config.batch_size, student.base_sigma0(teacher, config), seed)
    return student.distill(teacher, draw, rule, config, seed=seed, name=density.name,
                           metadata={"density": density.name})
