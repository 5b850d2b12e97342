"""The student of F2D2: a joint flow map for any teacher velocity and any data, and the one call that trains it.

:func:`distill` is the package's front door (``f2d2mini.distill``, book chapter 8): a differentiable teacher
``v(x, t)`` (f2d2mini's, or a model trained elsewhere through :mod:`f2d2mini.adapters`) and data, either a tensor
``[N, *shape]`` or a ``draw(generator, step) -> Batch(x0, x1)``. The map's architecture follows from the teacher
and the data (:func:`student_map`); the teacher is checked on a small batch before any training step
(:func:`f2d2mini.adapters.check_velocity`); training is :func:`f2d2mini.distillation.distill_loss` in
:func:`f2d2mini.loop.fit`. ``f2d2mini.train.distill`` (2-D densities) and ``f2d2mini.images.distill`` (images)
only build their ``draw`` and call it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from f2d2mini import adapters, base, checks, consistency, coverage, distributed, div_profile, flowmap, losses, nets
from f2d2mini import divergence as div
from f2d2mini.distillation import DistillConfig, distill_config, distill_loss, frozen
from f2d2mini.images import unet
from f2d2mini.loop import fit, resolve_device

__all__ = ["distill", "student_map", "default_net", "base_sigma0", "tensor_batches", "check_teacher", "JVP_RULES",
           "STEP_SEED_STRIDE", "CHECK_POINTS", "CHECK_SEED", "PROFILE_SEED",
           "BAND_SEED", "BAND_POINTS", "noise_band"]

JVP_RULES = ("meanflow", "lsd")  # rules whose loss differentiates the map with torch.func.jvp
STEP_SEED_STRIDE = 1_000_003  # a prime: the data drawn at step k (or epoch k) of seed s comes from seed s * STRIDE + k
CHECK_POINTS = 128  # points of the batch on which the teacher is checked before training
CHECK_SEED = 12_345  # the check's own random stream: it draws nothing from the training's
PROFILE_SEED = 54_321  # the divergence profile's own random stream, likewise
BAND_SEED = 24_680  # and the noise band's (its data points)
BAND_POINTS = 256  # data points whose backward jumps calibrate an image map's noise band and consistency limit


def base_sigma0(teacher, config: DistillConfig) -> float:
    """The base sigma0 of the distillation: the teacher's when it declares one, else ``config.net``'s (a fresh map's
    architecture), else :data:`f2d2mini.base.SIGMA0`; a teacher and a ``config.net`` that disagree is an error."""
    declared, net = base.sigma0_of(teacher), config.net
    if declared is not None and net is not None and declared != net.sigma0:
        raise ValueError(f"the teacher's base sigma0 is {declared} but config.net.sigma0 is {net.sigma0}; "
                         f"set the net's sigma0={declared} to distil it")
    return declared if declared is not None else (net.sigma0 if net is not None else base.SIGMA0)


def default_net(shape: tuple[int, ...], sigma0: float) -> nets.MLPConfig | unet.UNetConfig:
    """The architecture of a fresh map for data points of ``shape``: the MLP for vectors ``(d,)``, the U-Net for
    square images ``(C, H, H)``; anything else is an error that says how to choose one. The MLP is the teachers'
    default (with ``nets.SPACE_FEATURES`` Fourier features of x)."""
    if len(shape) == 1:
        return nets.MLPConfig(dim=shape[0], space_features=nets.SPACE_FEATURES, sigma0=sigma0)
    if len(shape) == 3 and shape[1] == shape[2]:
        return unet.UNetConfig(channels=shape[0], size=shape[1], sigma0=sigma0)
    raise ValueError(f"data points of shape {shape}: f2d2mini's maps take vectors [N, d] (an MLP) or square images "
                     f"[N, C, H, H] (a U-Net); reshape the data, or set config.net to a nets.MLPConfig or "
                     f"images.UNetConfig")


def student_map(teacher, shape: tuple[int, ...], config: DistillConfig) -> torch.nn.Module:
    """The untrained map for ``teacher`` on data points of ``shape``, with D scale R = ``config.div_scale``.

    Without ``config.net``, a teacher of f2d2mini's own architectures warm-starts a copy of itself (u(x, t, s) =
    v(x, t), D = 0); any other teacher gets a fresh map of :func:`default_net`. ``config.net`` chooses the
    architecture of a fresh map instead.
    """
    R = config.div_scale
    if config.profile_intervals and (len(shape) != 3 or isinstance(config.net, nets.MLPConfig)):
        raise ValueError(f"profile_intervals={config.profile_intervals} is for U-Net maps of images [N, C, H, H]; "
                         f"set it to 0 for data points of shape {tuple(shape)}")
    if config.net is None and isinstance(teacher, nets.VelocityMLP):
        _same_shape(shape, (teacher.config.dim,))
        return flowmap.JointFlowMap.from_teacher(teacher, R)
    if config.net is None and isinstance(teacher, unet.UNetVelocity):
        c = teacher.config
        _same_shape(shape, (c.channels, c.size, c.size))
        return unet.UNetFlowMap.from_teacher(teacher, R, config.div_hidden, config.profile_intervals)
    net = config.net if config.net is not None else default_net(shape, base_sigma0(teacher, config))
    base_sigma0(teacher, dataclasses.replace(config, net=net))
    fields = {f.name: getattr(net, f.name) for f in dataclasses.fields(type(net))}
    if isinstance(net, unet.UNetConfig):
        fields.update(div_scale=R, div_hidden=config.div_hidden, profile_intervals=config.profile_intervals)
        model = unet.UNetFlowMap(unet.UNetFlowMapConfig(**fields))
    else:
        model = flowmap.JointFlowMap(flowmap.FlowMapConfig(**{**fields, "div_scale": R}))
    _same_shape(shape, model.event_shape)
    return model


def _same_shape(data: tuple[int, ...], model: tuple[int, ...]) -> None:
    if tuple(data) != tuple(model):
        raise ValueError(f"the data's points have shape {tuple(data)} but the map takes points of shape "
                         f"{tuple(model)}; distil a teacher on the data it was trained on (or set config.net)")


def tensor_batches(data: torch.Tensor, batch_size: int, sigma0: float, seed: int) -> Callable:
    """``draw(generator, step) -> Batch(x0, x1)`` over a tensor ``[N, *shape]``: shuffled epochs (each a permutation
    seeded by (seed, epoch), so that a resumed run draws what the uninterrupted one would), ``batch_size`` rows a
    step, and noise x0 ~ N(0, sigma0^2 I) from the loop's generator, on its device."""
    n, cache = len(data), {}

    def order(epoch: int) -> torch.Tensor:
        if epoch not in cache:
            cache.clear()  # at most the epochs of one batch are kept
            gen = base.make_generator(seed * STEP_SEED_STRIDE + epoch)
            cache[epoch] = torch.randperm(n, generator=gen)
        return cache[epoch]

    def draw(gen: torch.Generator, step: int) -> base.Batch:
        device = gen.device
        positions = range(step * batch_size, (step + 1) * batch_size)
        by_epoch = {}
        for i in positions:
            by_epoch.setdefault(i // n, []).append(i % n)
        rows = torch.cat([order(e)[torch.tensor(p)] for e, p in by_epoch.items()])
        x1 = data[rows.to(data.device)].to(device)
        return base.Batch(sigma0 * torch.randn(x1.shape, generator=gen, device=device), x1)

    return draw


def _check_data(data: torch.Tensor) -> torch.Tensor:
    """A float32 copy of ``data`` ``[N, *shape]`` (float64, numpy's default, is converted), checked."""
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"data must be a tensor [N, *shape] or a draw(generator, step) -> Batch(x0, x1) function, "
                        f"got {type(data).__name__}")
    checks.batch(data, "data")
    if len(data) == 0:
        raise ValueError("data has 0 rows; distillation needs at least one data point")
    return data.float()


def check_teacher(teacher, batch: base.Batch, divergence: str, generator: torch.Generator) -> None:
    """Before training: :func:`f2d2mini.adapters.check_velocity` on ``batch``, and one divergence (a
    ``torch.func.vjp``; Hutchinson probes from ``generator``) to show that the teacher is differentiable in x."""
    x0, x1 = batch.x0[:CHECK_POINTS], batch.x1[:CHECK_POINTS]
    adapters.check_velocity(teacher, base.Batch(x0, x1))
    t = torch.full((len(x1),), adapters.CHECK_TIMES[0], dtype=x1.dtype, device=x1.device)
    xt = losses.interpolate(x0, x1, t)
    try:
        with torch.no_grad():
            if divergence == "exact":
                out = div.exact(teacher, xt[:2], t[:2])
            else:
                out = div.hutchinson(teacher, xt, t, generator=generator)
    except Exception as err:  # any failure of user code inside torch.func
        raise adapters.TeacherError(f"the teacher must be differentiable in x with torch.func (F2D2's targets need "
                                    f"its divergence), but torch.func.vjp through it failed: {type(err).__name__}: "
                                    f"{err}") from err
    if not torch.isfinite(out.divergence).all():
        raise adapters.TeacherError("the teacher's divergence is not finite on points of the path from the base to "
                                    "the data")


def distill(teacher, data, rule: str = "shortcut", config: DistillConfig | None = None, *, seed: int = 0,
            name: str = "data", metadata: dict | None = None, state_path: str | Path | None = None,
            resume: bool = False) -> torch.nn.Module:
    """F2D2: distils ``teacher`` into a joint flow map on ``data`` with ``rule``; the package's front door.

    Args:
        teacher: any differentiable ``v(x, t)`` in f2d2mini's convention (t = 0 the base, t = 1 the data; models
            trained elsewhere go through :mod:`f2d2mini.adapters`). Its ``sigma0`` is used when it declares one.
        data: a tensor ``[N, *shape]`` (float32; float64 is converted), drawn in shuffled epochs, or a
            ``draw(generator, step) -> Batch(x0, x1)`` function (called once with its own generator to check the
            teacher).
        rule: ``"shortcut"``, ``"meanflow"`` or ``"lsd"``.
        config: a :class:`~f2d2mini.distillation.DistillConfig`; ``None`` gives the rule's CPU defaults,
            :func:`~f2d2mini.distillation.distill_config`. ``div_scale=None`` means R = d, the data's dimension.
        seed: seeds the map's initialisation and every random draw of training.
        name: the data's name, on the progress bar. metadata: recorded with the map (with the rule).
        state_path, resume: the resumable training state (see :func:`f2d2mini.loop.fit`).

    Returns:
        The EMA map (``sample``, ``sample_and_log_prob``, ``log_prob``) with ``.history``, ``.metadata`` and
        ``.region`` (the cube its likelihood was trained on, ``None`` without coverage); an image map without
        coverage of the cube instead has ``.noise_band`` (:class:`f2d2mini.coverage.NoiseBand`) and
        ``.consistency`` (:class:`f2d2mini.consistency.Consistency`), calibrated on its data. Ready for
        :func:`f2d2mini.save`.

    Raises:
        adapters.TeacherError: the teacher fails on the data (its call, output shape, NaNs, time direction).
        ValueError: bad data, rule or config; a sigma0 mismatch.
    """
    config = distill_config(rule) if config is None else config
    checks.choice(rule, losses.RULES, "rule")
    device = resolve_device(config.device)
    sigma0 = base_sigma0(teacher, config)
    if isinstance(data, torch.Tensor):
        data = distributed.shard(_check_data(data))
        draw = tensor_batches(data, distributed.local_batch(config.batch_size), sigma0, seed)
    elif callable(data):
        draw = data
    else:
        _check_data(data)  # raises, naming what data may be
    check_gen = base.make_generator(CHECK_SEED, device)
    batch = draw(check_gen, 0)
    shape = tuple(batch.x1.shape[1:])
    if config.div_scale is None:
        config = dataclasses.replace(config, div_scale=float(torch.Size(shape).numel()))
    if config.compile and rule in JVP_RULES:
        warnings.warn(f"compile=True with rule {rule!r}: torch.func.jvp runs a compiled module eagerly, so the compile "
                      f"time would be wasted; training uncompiled (rule 'shortcut' compiles)", stacklevel=2)
        config = dataclasses.replace(config, compile=False)
    torch.manual_seed(seed)
    model = student_map(teacher, shape, config)
    base.same_sigma0(teacher, model)
    check_teacher(frozen(teacher, device), batch, config.divergence, check_gen)
    if getattr(model, "profile", None) is not None:  # the teacher's mean -div v over time, before any step
        gen = base.make_generator(PROFILE_SEED, device)
        points = base.draw_points(draw, config.profile_points, gen)
        model.profile.values.copy_(div_profile.estimate(frozen(teacher, device), points, config.profile_intervals,
                                                         gen, divergence_kind=config.divergence))
    local = dataclasses.replace(config, batch_size=distributed.local_batch(config.batch_size))  # one rank's batch
    model = fit(model, distill_loss(teacher, draw, rule, local), config, seed=seed, desc=f"F2D2 {rule} {name}",
                state_path=state_path, resume=resume, unit="img" if len(shape) == 3 else "samples",
                metadata={**(metadata or {}), "rule": rule})
    covered = config.coverage_fraction and config.coverage_source == "cube"
    model.region = coverage.Region(config.coverage_box) if covered else None
    if not covered and len(shape) == 3:  # an image map trusted on its data: where the data's jumps land
        points = base.draw_points(draw, BAND_POINTS, base.make_generator(BAND_SEED, device))
        model.noise_band = noise_band(model, points.x1)
        model.consistency = consistency.calibrate(model, points.x1)
    return model


def noise_band(model, x1: torch.Tensor) -> coverage.NoiseBand:
    """The band in which the K backward jumps of data points ``x1`` land, over every K of
    :data:`f2d2mini.flowmap.EVAL_STEPS`: their |x_K|^2 / (d sigma0^2) and neighbour correlation, widened by
    :data:`f2d2mini.coverage.BAND_MARGIN` and :data:`f2d2mini.coverage.CORRELATION_MARGIN` on each side."""
    sigma0, q, r = base.resolve_sigma0(model, name="flow map"), [], []
    with torch.no_grad():
        for k in flowmap.EVAL_STEPS:
            end = flowmap.jumps(model, x1, flowmap.backward_times(k)).x
            q.append(coverage.NoiseBand.statistic(end, sigma0))
            r.append(coverage.NoiseBand.correlation(end))
    (q_low, q_high), (r_low, r_high) = torch.cat(q).aminmax(), torch.cat(r).aminmax()
    return coverage.NoiseBand(q_low.item() - coverage.BAND_MARGIN, q_high.item() + coverage.BAND_MARGIN,
                              r_low.item() - coverage.CORRELATION_MARGIN, r_high.item() + coverage.CORRELATION_MARGIN)
