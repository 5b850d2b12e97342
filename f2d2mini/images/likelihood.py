"""Bits per dimension of images by the teacher's coupled ODE and by the flow map's K jumps (book chapter 7).

For integer images k with L grey levels per dimension and d = C H W dimensions, dequantize and rescale
y = (k + U) / L, z = 2 y - 1 (log-det of the rescaling: d ln 2). Jensen's inequality gives the bound

    log P(k) >= E_U[log p_Z(z)] + d ln 2 - d ln L,        bpd = -log P(k) / (d ln 2),

estimated here with one fixed draw of U per image (``seed``), the same draw for every model compared and on every
device. Evaluation runs in true float32 (no TF32 on CUDA: :func:`true_float32`), in chunks of
:func:`~f2d2mini.images.data.eval_batch` images, split over the processes of a ``torchrun`` job and gathered.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import NamedTuple

import torch

from f2d2mini import base, checks, distributed, ode
from f2d2mini.images import data as images_data

__all__ = ["BPD", "bits_per_dim", "bpd", "ode_bpd", "bpd_table", "BPDRow", "DEQUANT_SEED", "BPD_FORMATS", "dequantized",
           "device_of", "check_images", "true_float32"]

DEQUANT_SEED = 0  # seed of the dequantization noise U shared by every evaluation
DEFAULT_LEVELS = 256  # grey levels of a tensor of images unless levels= says otherwise (8-bit images)
BPD_FORMATS = {"bpd": ".4f", "gap": "+.4f", "seconds": ".2f"}  # how every bits-per-dim table prints


class BPD(NamedTuple):
    """``bpd``: mean bits per dim (float); ``per_image``: ``[N]`` bits per dim; ``nfe``: network evaluations per
    image (velocity evaluations for the ODE, the most any chunk of images needed; jumps for the flow map);
    ``seconds``: wall-clock time."""

    bpd: float
    per_image: torch.Tensor
    nfe: int
    seconds: float


def bits_per_dim(log_p_z: torch.Tensor, d: int, levels: int) -> torch.Tensor:
    """-(log p_Z(z) + d ln 2 - d ln L) / (d ln 2): bits per dim of the discrete images from the density of z."""
    return -(log_p_z + d * math.log(2) - d * math.log(levels)) / (d * math.log(2))


def _unpack(images, levels: int | None) -> tuple[torch.Tensor, int]:
    """An :class:`~f2d2mini.images.data.Images` split brings its own number of levels (another ``levels`` is an
    error); a tensor of images has :data:`DEFAULT_LEVELS` unless ``levels`` says otherwise."""
    if isinstance(images, images_data.Images):
        if levels is not None and levels != images.levels:
            raise ValueError(f"levels={levels} was passed with {images.name} images, which have {images.levels} grey "
                             f"levels; leave levels unset for an Images split")
        return images.images, images.levels
    return images, DEFAULT_LEVELS if levels is None else levels


def check_images(x: torch.Tensor, levels: int, model, batch_size: int | None = None) -> None:
    """Images: uint8 ``[N, C, H, W]`` (N >= 1: bits per dim are a mean) of the model's shape, with values below
    ``levels``; ``batch_size`` ``None`` or >= 1."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"images must be a uint8 tensor [N, C, H, W] of grey levels, got {got}")
    shape = checks.event_shape(model)
    if shape is not None and tuple(x.shape[1:]) != shape:
        raise ValueError(f"images must have shape [N, {', '.join(map(str, shape))}] for this model, got "
                         f"{tuple(x.shape)}")
    if not len(x):
        raise ValueError(f"images holds no images (shape {tuple(x.shape)}); bits per dim average over at least one")
    if x.is_meta:
        raise ValueError("images is on the meta device (a shape without values); pass a tensor with values")
    checks.positive_int(levels, "levels")
    if batch_size is not None:
        checks.positive_int(batch_size, "batch_size")
    if x.max().item() >= levels:
        raise ValueError(f"images hold grey level {x.max().item()} but levels = {levels} allows 0..{levels - 1}")


def device_of(model) -> torch.device:
    """Where a model's parameters live (the CPU for parameter-free callables such as closed-form velocities)."""
    params = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    return params.device if params is not None else torch.device("cpu")


@contextmanager
def true_float32():
    """Inside, float32 convolutions and matrix products on CUDA run in full float32. cuDNN's default is TF32 for
    convolutions (10-bit mantissas), which would make an ODE solved to a tolerance of 1e-5 nominal. The previous
    settings come back on exit."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = before


def dequantized(x: torch.Tensor, levels: int, seed: int, device) -> torch.Tensor:
    """z of integer images ``x`` on ``device``, with U drawn from ``seed`` on the CPU: the same U on every device."""
    noise = torch.rand(x.shape, generator=base.make_generator(seed))
    return images_data.dequantize(x.to(device), levels, noise=noise.to(device))


def _chunked(fn, z: torch.Tensor, batch: int | None) -> tuple[torch.Tensor, int]:
    """``fn(chunk) -> (log p [n], nfe)`` over chunks of this process's share of ``z``, in true float32: log p ``[N]``
    (float64, CPU) gathered from every process, and the most evaluations any chunk needed."""
    outs, nfe = [torch.zeros(0, dtype=torch.float64)], 0
    with true_float32():
        for chunk in distributed.shard(z).split(batch if batch is not None else images_data.eval_batch(z)):
            lp, n = fn(chunk)
            outs.append(lp.double().cpu())
            nfe = max(nfe, n)
    return distributed.gather(torch.cat(outs)), max(distributed.gather_objects(nfe))


def bpd(model, images: torch.Tensor, steps: int = 4, *, levels: int | None = None, seed: int = DEQUANT_SEED,
        reversal: str = "exact", batch_size: int | None = None) -> BPD:
    """Bits per dim of integer images under a joint flow map with K = ``steps`` backward jumps (K evaluations).

    Args:
        model: a flow map ``model(x, t, s) -> FlowMapOutput`` whose config owns its base sigma0 (e.g. a
            :class:`~f2d2mini.images.unet.UNetFlowMap`).
        images: uint8 ``[N, C, H, W]`` with values in 0..levels-1, or an
            :class:`~f2d2mini.images.data.Images` split (which brings its ``levels``).
        steps: jumps K from t = 1 to t = 0.
        levels: grey levels L (256 for 8-bit images, the default for a tensor; 17 for the digits); an ``Images``
            split brings its own, and another value is an error.
        seed: dequantization noise seed.
        reversal: ``"exact"`` backward jumps or the reference code's ``"first_order"`` reversal.
        batch_size: images per chunk (default: :func:`~f2d2mini.images.data.eval_batch`).

    Returns:
        :class:`BPD`, ``per_image`` in float64 (the log-densities are computed in the model's dtype).

    Raises:
        ValueError, TypeError: naming the argument: images not uint8 ``[N, *event_shape]`` with N >= 1 and values
            below levels; steps, levels or batch_size out of range; an unknown reversal; images whose
            log-density overflows.
    """
    from f2d2mini import flowmap

    images, levels = _unpack(images, levels)
    check_images(images, levels, model, batch_size)
    checks.steps(steps)
    device = device_of(model)
    z = dequantized(images, levels, seed, device)
    start = time.perf_counter()
    lp, _ = _chunked(lambda c: (flowmap.log_prob(model, c, steps, reversal=reversal), steps), z, batch_size)
    per = bits_per_dim(lp, z[0].numel(), levels)
    return BPD(per.mean().item(), per, steps, time.perf_counter() - start)


def ode_bpd(velocity, images: torch.Tensor, *, levels: int | None = None, solver: str = "dopri5",
            steps: int | None = None, divergence: str = "hutchinson", probes: int = 1, seed: int = DEQUANT_SEED,
            probe_seed: int = 0, sigma0: float | None = None, rtol: float = ode.DEFAULT_TOL,
            atol: float = ode.DEFAULT_TOL, max_nfe: int = ode.MAX_NFE, batch_size: int | None = None) -> BPD:
    """Bits per dim of integer images under a velocity v(x, t) by the coupled ODE (:func:`f2d2mini.ode.likelihood`).

    ``solver``/``steps``: e.g. ``"euler"`` with N steps or adaptive ``"dopri5"`` (at most ``max_nfe`` evaluations
    per chunk); ``divergence``: ``"exact"`` (d passes per evaluation) or ``"hutchinson"`` (``probes`` Rademacher
    vectors per image drawn from ``probe_seed``, held along the path). ``seed``: the dequantization noise.
    ``sigma0``: the velocity's own base by default (:func:`f2d2mini.base.resolve_sigma0`). Raises as :func:`bpd`
    does, and as :func:`f2d2mini.ode.likelihood` does for the solver's arguments.
    """
    images, levels = _unpack(images, levels)
    check_images(images, levels, velocity, batch_size)
    device = device_of(velocity)
    z = dequantized(images, levels, seed, device)
    start = time.perf_counter()

    def one(chunk):
        res = ode.likelihood(velocity, chunk, solver, steps, divergence=divergence, probes=probes, seed=probe_seed,
                             sigma0=sigma0, rtol=rtol, atol=atol, max_nfe=max_nfe)
        return res.log_prob, res.nfe

    lp, nfe = _chunked(one, z, batch_size)
    per = bits_per_dim(lp, z[0].numel(), levels)
    return BPD(per.mean().item(), per, nfe, time.perf_counter() - start)


class BPDRow(NamedTuple):
    """One line of the bits-per-dim table: ``method``, ``nfe`` per image, mean ``bpd``, ``gap`` to the teacher's
    ODE bpd, ``seconds``."""

    method: str
    nfe: int
    bpd: float
    gap: float
    seconds: float


def bpd_table(teacher, model, images: torch.Tensor, levels: int, ks=(1, 2, 4, 8), *, solver: str = "dopri5",
              steps: int | None = None, divergence: str = "hutchinson", probes: int = 1) -> list[BPDRow]:
    """The teacher's ODE bpd and the flow map's at each K, on the same dequantized images. A teacher and a map with
    different base sigma0 are an error naming both."""
    sigma0 = base.same_sigma0(teacher, model)
    ref = ode_bpd(teacher, images, levels=levels, solver=solver, steps=steps, divergence=divergence, probes=probes,
                  sigma0=sigma0)
    name = f"teacher ODE {solver}" + (f"-{steps}" if steps else "") + f" ({divergence})"
    rows = [BPDRow(name, ref.nfe, ref.bpd, 0.0, ref.seconds)]
    for k in ks:
        res = bpd(model, images, k, levels=levels)
        rows.append(BPDRow(f"F2D2 K = {k}", k, res.bpd, res.bpd - ref.bpd, res.seconds))
    return rows
