"""Training on images with the 2-D losses and loop: a U-Net teacher and its F2D2 joint flow map (book chapter 7).

Nothing here is image-specific but the data and the network: the teacher minimises
:func:`f2d2mini.losses.teacher_loss`, the flow map :func:`f2d2mini.distillation.distill_loss` (Hutchinson
divergence targets, phased), both through :func:`f2d2mini.loop.fit` (EMA, clipping, bf16 autocast on CUDA,
checkpoints and resume). One recipe per dataset: ``RECIPES["digits" | "mnist" | "cifar10"]``. Under ``torchrun``
each process trains on its own shard of the data with its share of the batch (:mod:`f2d2mini.distributed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch

from f2d2mini import checks, distributed, loop, losses, student
from f2d2mini.distillation import DistillConfig
from f2d2mini.images import data as images_data
from f2d2mini.images import unet

__all__ = ["ImageLoopConfig", "ImageTeacherConfig", "ImageDistillConfig", "Recipe", "RECIPES", "MNIST_CPU", "RULE",
           "JVP_RULES", "RULE_CHANGES", "recipe", "distill_config", "teacher", "distill"]

RULE = "shortcut"  # the image rule: no JVP, the cheapest per step, and the paper's CIFAR-10 recipe
JVP_RULES = student.JVP_RULES


@dataclass(frozen=True)
class ImageLoopConfig(loop.LoopConfig):
    """The loop settings every image model starts from: batches and a learning rate for 8x8 digits on a CPU."""

    batch_size: int = 128
    lr: float = 2e-3


@dataclass(frozen=True)
class ImageTeacherConfig(ImageLoopConfig):
    """Flow-matching U-Net teacher on images. Defaults: 8x8 digits on a CPU in minutes."""

    steps: int = 1500
    warmup: int = 100
    ema_decay: float = 0.999
    net: unet.UNetConfig = field(default_factory=lambda: unet.UNetConfig(widths=(16, 32), embed_dim=64))  # and sigma0
    time_power: float = 1.0  # t = 1 - (1 - U)^time_power


@dataclass(frozen=True)
class ImageDistillConfig(ImageLoopConfig, DistillConfig):
    """F2D2 on images: the 2-D distillation settings with Hutchinson targets; the map copies the teacher's U-Net
    (warm start: u = v, D = 0) and adds the divergence head. Defaults: digits on a CPU."""

    steps: int = 1000
    warmup: int = 50
    warm_steps: int = 100  # phase 1: velocity part only (short: the warm start already gives u = v)
    d_weight: float = 1.0  # weight of the D loss in phase 2
    divergence: str = "hutchinson"  # Rademacher probes: one reverse pass each
    probes: int = 1
    div_scale: float = 64.0  # R, about the number of dimensions d
    coverage_fraction: float = 0.0  # off-data coverage: see book chapter 7 for what the image maps may be trusted on
    coverage_box: float = 1.0  # the cube [-1, 1]^d that dequantized images live in
    coverage_points: int = 2000  # trajectories of the teacher's backward flow (each a U-Net solve)


class Recipe(NamedTuple):
    """The configs of one dataset: ``teacher`` and ``distill``, and the ``rule`` of the flow map."""

    teacher: ImageTeacherConfig
    distill: ImageDistillConfig
    rule: str = RULE


MNIST_NET = unet.UNetConfig(channels=1, size=28, widths=(32, 64, 128), blocks=1, embed_dim=128)
CIFAR_NET = unet.UNetConfig(channels=3, size=32, widths=(128, 256, 256), blocks=2, embed_dim=256, groups=32)
RECIPES = {
    # a quarter of each batch on the teacher's trajectories from the cube [-1, 1]^64, so that images that are not
    # digits are scored as the teacher scores them (book chapter 7)
    "digits": Recipe(ImageTeacherConfig(), ImageDistillConfig(coverage_fraction=0.25)),
    # MNIST's 256 grey levels make -div v huge near the data end: the Shortcut map learns the K-step schedules only
    # with data-end times and step pairs, as in 2-D (benchmarks/README.md); the digits' 17 levels do not need them.
    "mnist": Recipe(ImageTeacherConfig(steps=6000, batch_size=256, lr=1e-3, net=MNIST_NET, device="auto",
                                       bf16=True),
                    ImageDistillConfig(steps=4000, batch_size=256, warm_steps=1000, div_scale=784.0, device="auto",
                                       bf16=True, time_power=2.0, step_fraction=0.5)),
    "cifar10": Recipe(ImageTeacherConfig(steps=200_000, batch_size=128, lr=2e-4, warmup=5000, ema_decay=0.9999,
                                         net=CIFAR_NET, device="auto", bf16=True),
                      ImageDistillConfig(steps=100_000, batch_size=128, lr=1e-4, warmup=2000, warm_steps=20_000,
                                         ema_decay=0.9999, div_scale=3072.0, device="auto", bf16=True)),
}

MNIST_CPU_NET = unet.UNetConfig(channels=1, size=28, widths=(16, 32, 64), embed_dim=64)  # 0.4 M parameters
# MNIST on two CPU cores in under 25 minutes, evaluation included (f2d2mini bench mnist, the shipped MNIST models;
# the measurements that chose it: benchmarks/README.md, "mnist"). The teacher: small batches at a high learning rate
# (the same images in more, noisier steps) and data-end times, where the likelihood is made. The map: half of each
# batch on the teacher's exact jumps along the data's own trajectories, and D relative to the teacher's divergence
# profile, so that the divergence piled up near t = 1 is not left for the head to learn. Its learning rate is three
# times the image default: the jumps' landings are the slowest thing to fit (they fall short of the teacher's, which
# flatters the likelihood), and a larger step fits more of them in the same minutes.
MNIST_CPU = Recipe(ImageTeacherConfig(steps=9600, batch_size=16, lr=1.2e-2, net=MNIST_CPU_NET, time_power=2.0),
                   ImageDistillConfig(steps=4500, batch_size=32, lr=6e-3, warm_steps=450, div_scale=784.0,
                                      time_power=2.0, step_fraction=0.5, profile_intervals=64,
                                      coverage_source="data", coverage_solver="dopri5", coverage_fraction=0.5,
                                      coverage_points=500, coverage_steps=8))


def recipe(name: str) -> Recipe:
    """The configs of ``name`` (one of :data:`f2d2mini.images.data.DATASETS`)."""
    checks.choice(name, RECIPES, "dataset")
    return RECIPES[name]


# Another rule than the recipe's on a dataset: what it changes in the recipe's distillation config. MeanFlow on the
# digits takes the adaptive weight of 2-D, which keeps its rare large errors from dominating, and more steps than
# Shortcut, whose targets need no JVP (the measurements: benchmarks/README.md, "guidance").
RULE_CHANGES = {"digits": {"meanflow": {"steps": 3000, "adaptive_power": 0.5}}}


def distill_config(name: str, rule: str = RULE) -> ImageDistillConfig:
    """The distillation config of dataset ``name`` for ``rule``: the recipe's, with ``RULE_CHANGES[name][rule]``."""
    checks.choice(rule, losses.RULES, "rule")
    return replace(recipe(name).distill, **RULE_CHANGES.get(name, {}).get(rule, {}))


def _check_shape(data: images_data.Images, net: unet.UNetConfig) -> None:
    if tuple(data.images.shape[1:]) != (net.channels, net.size, net.size):
        raise ValueError(f"{data.name} images have shape {tuple(data.images.shape[1:])} but the network expects "
                         f"{(net.channels, net.size, net.size)}; use the recipe of {data.name}")


def _draw(data: images_data.Images, batch_size: int, sigma0: float) -> Callable:
    """Batches for this process: its share of the global ``batch_size``, from its shard of ``data``, with noise
    from the base N(0, sigma0^2 I)."""
    return images_data.batches(distributed.shard(data), distributed.local_batch(batch_size), sigma0)


def teacher(data: images_data.Images, config: ImageTeacherConfig = ImageTeacherConfig(), seed: int = 0, *,
            state_path: str | Path | None = None, resume: bool = False) -> unet.UNetVelocity:
    """Trains a U-Net velocity v(x, t) by flow matching on dequantized ``data`` in [-1, 1]; returns its EMA.

    ``state_path`` / ``resume``: the training state written every ``config.checkpoint_every`` steps, and
    continuing from it after an interrupt (see :func:`f2d2mini.loop.fit`).
    """
    _check_shape(data, config.net)
    torch.manual_seed(seed)
    model = unet.UNetVelocity(config.net)
    draw = _draw(data, config.batch_size, config.net.sigma0)
    return loop.fit(model, losses.teacher_loss(draw, config.time_power), config, seed=seed, desc=f"teacher {data.name}",
                    state_path=state_path, resume=resume, unit="img", metadata={"dataset": data.name})


def distill(teacher_model, data: images_data.Images, rule: str = RULE,
            config: ImageDistillConfig = ImageDistillConfig(), seed: int = 0, *,
            state_path: str | Path | None = None, resume: bool = False) -> unet.UNetFlowMap:
    """F2D2 on images: :func:`f2d2mini.student.distill` on dequantized ``data`` (rule ``rule``, Hutchinson
    targets); returns the EMA map. A :class:`~f2d2mini.images.unet.UNetVelocity` teacher warm-starts a copy of its
    U-Net (u = v, D = 0) with the divergence head added; any other teacher gets a fresh U-Net map. Under
    ``torchrun`` each process draws from its own shard. With ``config.compile`` the JVP rules train uncompiled (a
    warning says why)."""
    if isinstance(teacher_model, unet.UNetVelocity):
        _check_shape(data, teacher_model.config)
    draw = _draw(data, config.batch_size, student.base_sigma0(teacher_model, config))
    return student.distill(teacher_model, draw, rule, config, seed=seed, name=data.name,
                           metadata={"dataset": data.name}, state_path=state_path, resume=resume)
