"""Where a flow map's likelihood can be trusted: the region its distillation covered (book chapters 4 and 5).

Distilled on the data path x_t = (1 - t) x0 + t x1 alone, a map has seen at t = 1 only points on the data, so the
first backward jump from any other point is an extrapolation, and a K-step likelihood there can be off by
hundreds of nats. Coverage trains a share of each batch where a likelihood query goes instead: on the teacher's
own trajectories from a square [-B, B]^d at the data end back to t = 0. Before training, uniform points of the
square are carried back by the teacher's coupled ODE (fixed-step RK4), and the states x(tau_k) and the
accumulated divergence delta(tau_k) = int_1^tau_k div v are kept at tau_k = 1 - k / steps (a
:class:`TrajectoryBank`). A coverage point is a stored state with

- the tangent targets of the teacher there (s = t), or
- the teacher's own jump to another stored time (s != t): u = (x(s) - x(t)) / (s - t) and
  D = -(delta(s) - delta(t)) / (s - t), the exact average velocity and average -div v of the teacher's flow.

The rules' own targets (half jumps, derivatives) bootstrap from the map, which off the data has nothing to
bootstrap from: the teacher's field there is stiff near t = 1 (a point beside the checkerboard's cells moves far
in the first jump back, with -div v of tens per unit time), and targets built from the map's own jumps miss it
(chapter 5 shows what that does to a density). The square is saved with the map (``model.region``,
a :class:`Region`); :func:`warn_outside` warns once when a likelihood is asked for outside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from f2d2mini import base, checkpoint, ode, times
from f2d2mini import divergence as div

__all__ = ["Region", "TrajectoryBank", "CoverageBatch", "trajectories", "carry_back", "tangent_points", "jumps",
           "warn_outside", "warn_endpoints", "NoiseBand", "BAND_MARGIN", "CORRELATION_MARGIN", "OutsideRegionWarning",
           "SUBSTEPS", "BANK_TOL", "BANK_CHUNK"]

SUBSTEPS = 8  # RK4 steps between two stored states: the teacher's jumps must be exact targets, and the bank is
# built once per run, so accuracy wins over cost here
BANK_TOL = 1e-3  # rtol = atol of an adaptive bank solve, per point: the jumps' targets to a fraction of a nat
# Points per adaptive solve: each chunk takes the steps its own stiffest point needs, and a small chunk makes each
# evaluation cheaper per point on a CPU (as images.data.EVAL_BATCH["mnist"]).
BANK_CHUNK = 100


@dataclass(frozen=True)
class Region:
    """The square [-half_width, half_width]^d at t = 1 that a map's distillation covered (coverage)."""

    half_width: float

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """``[B]`` booleans: the points of ``x`` ``[B, *shape]`` inside the square."""
        return (x.flatten(1).abs() <= self.half_width).all(1)

    def __str__(self) -> str:
        return f"[-{self.half_width:g}, {self.half_width:g}]^d"


checkpoint.register_attribute("region", Region)  # saved with the map's weights, restored by f2d2mini.load


class OutsideRegionWarning(RuntimeWarning):
    """A likelihood was asked for at points outside the region the map was trained on."""


class TrajectoryBank(NamedTuple):
    """The teacher's trajectories from uniform points of the square: ``x`` ``[steps + 1, points, *shape]`` and
    ``delta`` ``[steps + 1, points]`` = int_1^tau_k div v along each, at tau_k = 1 - k / steps."""

    x: torch.Tensor
    delta: torch.Tensor


class CoverageBatch(NamedTuple):
    """Coverage points ``x`` at times ``t``, jumps to ``s`` (= t for tangent points) and, for jumps, the teacher's
    exact ``u`` and ``D`` (``None`` for tangent points, whose targets come from the teacher at (x, t))."""

    x: torch.Tensor
    t: torch.Tensor
    s: torch.Tensor
    u: torch.Tensor | None
    D: torch.Tensor | None


def trajectories(teacher, half_width: float, shape: tuple[int, ...], points: int, steps: int, *,
                 divergence: str = "exact", device: torch.device | str = "cpu", seed: int = 0,
                 progress: bool = False, solver: str = "rk4", tol: float = BANK_TOL) -> TrajectoryBank:
    """Carries ``points`` uniform points of [-half_width, half_width]^shape from t = 1 to t = 0 along the teacher's
    coupled ODE (:func:`carry_back`), keeping the states at tau_k = 1 - k / steps."""
    gen = base.make_generator(seed, device)
    x = (2 * torch.rand((points, *shape), generator=gen, device=device) - 1) * half_width
    return carry_back(teacher, x, steps, divergence=divergence, generator=gen, progress=progress, solver=solver,
                      tol=tol)


def carry_back(teacher, x: torch.Tensor, steps: int, *, divergence: str = "exact",
               generator: torch.Generator | None = None, progress: bool = False, solver: str = "rk4",
               tol: float = BANK_TOL) -> TrajectoryBank:
    """Carries the points ``x`` ``[points, *shape]`` at t = 1 back to t = 0 along the teacher's coupled ODE, keeping the
    states at tau_k = 1 - k / steps (``progress``: a bar).

    ``solver="rk4"`` takes :data:`SUBSTEPS` steps per stored interval, all points at once; an adaptive solver
    (``"dopri5"``) makes one solve per chunk of :data:`BANK_CHUNK` points at rtol = atol = ``tol`` per point, each
    taking the steps its own stiffest point needs, and reads the stored states from its dense output (images need
    far fewer evaluations so than with fixed steps). A Hutchinson divergence holds one probe per trajectory along
    it, drawn from ``generator``."""
    eps = div.probes(x, 1, generator=generator) if divergence == "hutchinson" else None
    size = BANK_CHUNK if solver in ode.ADAPTIVE else len(x)
    starts = range(0, len(x), size)
    with tqdm(total=len(x), desc="coverage: the teacher's trajectories", disable=not progress) as bar:
        parts = [_carry(teacher, x[i:i + size], None if eps is None else eps[:, i:i + size], steps, divergence,
                        solver, tol, bar) for i in starts]
    return TrajectoryBank(torch.cat([part.x for part in parts], 1), torch.cat([part.delta for part in parts], 1))


def _carry(teacher, x, eps, steps: int, divergence: str, solver: str, tol: float, bar) -> TrajectoryBank:
    rhs, delta = ode.coupled(teacher, divergence, eps), torch.zeros(len(x), dtype=x.dtype, device=x.device)
    h = 1.0 / steps
    with torch.no_grad():
        if solver in ode.ADAPTIVE:
            sol = ode.integrate(rhs, (x, delta), 1.0, 0.0, solver=solver, rtol=tol, atol=tol,
                                stops=[1 - k * h for k in range(1, steps)])
            states = [(x, delta), *sol.stops, sol.state]
        else:
            states = [(x, delta)]
            for k in range(steps):
                states.append(ode.integrate(rhs, states[-1], 1 - k * h, 1 - (k + 1) * h, solver=solver,
                                            steps=SUBSTEPS).state)
    bar.update(len(x))
    return TrajectoryBank(torch.stack([s[0] for s in states]), torch.stack([s[1] for s in states]))


def tangent_points(bank: TrajectoryBank, n: int, gen: torch.Generator) -> CoverageBatch:
    """``n`` stored states at their times, for the tangent condition (s = t)."""
    steps, points = bank.x.shape[0] - 1, bank.x.shape[1]
    j = torch.randint(points, (n,), generator=gen, device=gen.device)
    k = torch.randint(steps + 1, (n,), generator=gen, device=gen.device)
    t = 1 - k.to(bank.x.dtype) / steps
    return CoverageBatch(bank.x[k, j], t, t, None, None)


def jumps(bank: TrajectoryBank, n: int, eval_steps: torch.Tensor, gen: torch.Generator) -> CoverageBatch:
    """``n`` jumps between two stored times of one trajectory with the teacher's exact u and D: half of them
    single steps of the K-step schedules (``eval_steps``, which must divide the bank's steps), half any two times."""
    steps, points = bank.x.shape[0] - 1, bank.x.shape[1]
    j = torch.randint(points, (n,), generator=gen, device=gen.device)
    kt = torch.randint(steps + 1, (n,), generator=gen, device=gen.device)
    ks = torch.randint(steps, (n,), generator=gen, device=gen.device)
    ks = ks + (ks >= kt).long()  # any other stored time
    on_schedule = n // 2
    gt, gs = times.step_pairs(on_schedule, eval_steps, gen)
    kt[:on_schedule], ks[:on_schedule] = torch.round((1 - gt) * steps).long(), torch.round((1 - gs) * steps).long()
    t, s = 1 - kt.to(bank.x.dtype) / steps, 1 - ks.to(bank.x.dtype) / steps
    gap = s - t
    start, end = bank.x[kt, j], bank.x[ks, j]
    u = (end - start) / times.per_point(gap, start)
    return CoverageBatch(bank.x[kt, j], t, s, u, -(bank.delta[ks, j] - bank.delta[kt, j]) / gap)


def warn_outside(model, x: torch.Tensor) -> None:
    """Warns once per model when ``x`` has points outside ``model.region``, or when the map covered no region and has
    no ``model.noise_band`` either (it was distilled on the data path alone: its likelihood is trusted on the data,
    not off it)."""
    if getattr(model, "_warned_outside", False):
        return
    region = getattr(model, "region", None)
    if region is None:
        if getattr(model, "noise_band", None) is not None:
            return  # the endpoints decide: warn_endpoints
        message = ("this flow map was distilled on the data path alone (no coverage, so no model.region): its "
                   "log-likelihood is trusted on the data, not off it (see book chapter 5)")
    else:
        outside = int((~region.contains(x)).sum())
        if not outside:
            return
        message = (f"{outside} of {len(x)} points lie outside the region this flow map was trained on, {region}; "
                   f"its log-likelihood there is an extrapolation (see book chapter 5)")
    _warn_once(model, message)


def _warn_once(model, message: str) -> None:
    """The one :class:`OutsideRegionWarning` of ``model`` (from the caller of the warning function's caller)."""
    warnings.warn(message, OutsideRegionWarning, stacklevel=4)
    model._warned_outside = True


@dataclass(frozen=True)
class NoiseBand:
    """Where the likelihood of an image map distilled on the data is trusted: the points whose K backward jumps land
    where its training data's landed, judged by two statistics of the landing that noise of the base fixes: its
    energy |x_K|^2 / (d sigma0^2) in [low, high] (for noise about 1 +- sqrt(2 / d)) and its neighbour correlation
    in [corr_low, corr_high] (for white noise about 0 +- 1 / sqrt(pairs)). Images unlike the data land outside:
    noise, grey, white or inverted images with too much energy, black ones with about the energy of noise but
    neighbours that agree. The map was never trained on the paths they take, and its log-likelihood there is an
    extrapolation."""

    low: float
    high: float
    corr_low: float
    corr_high: float

    @staticmethod
    def statistic(end: torch.Tensor, sigma0: float) -> torch.Tensor:
        """|x_K|^2 / (d sigma0^2) ``[B]`` of the end points ``end`` ``[B, *shape]`` of backward jumps."""
        return end.flatten(1).pow(2).mean(1) / sigma0**2

    @staticmethod
    def correlation(end: torch.Tensor) -> torch.Tensor:
        """The mean product of neighbouring pixels (left-right and up-down, within each channel) over the mean
        square ``[B]`` of the end points ``end`` ``[B, C, H, W]``: the products are uncorrelated in white noise, so
        this is about 0 +- 1 / sqrt(pairs) there, whatever its scale."""
        across, down = end[..., :, 1:] * end[..., :, :-1], end[..., 1:, :] * end[..., :-1, :]
        pairs = across.shape[1:].numel() + down.shape[1:].numel()  # per image, also for an empty batch
        return (across.flatten(1).sum(1) + down.flatten(1).sum(1)) / pairs / end.flatten(1).pow(2).mean(1)

    def contains(self, end: torch.Tensor, sigma0: float) -> torch.Tensor:
        """``[B]`` booleans: the end points ``end`` ``[B, *shape]`` of the backward jumps inside the band."""
        q, r = self.statistic(end, sigma0), self.correlation(end)
        return (q >= self.low) & (q <= self.high) & (r >= self.corr_low) & (r <= self.corr_high)

    def __str__(self) -> str:
        return (f"|x_K|^2 / (d sigma0^2) in [{self.low:.2f}, {self.high:.2f}] and neighbour correlation in "
                f"[{self.corr_low:.3f}, {self.corr_high:.3f}]")


checkpoint.register_attribute("noise_band", NoiseBand)  # saved with the map's weights, restored by f2d2mini.load
BAND_MARGIN = 0.1  # the calibrated band widened by this on each side (two standard deviations of |z|^2 / d, d = 784)
# and its neighbour correlation's: two standard deviations in white noise of 28 x 28 pixels (1,512 pairs)
CORRELATION_MARGIN = 0.05


def warn_endpoints(model, end: torch.Tensor, sigma0: float, steps: int) -> None:
    """Warns once per model when some of the end points ``end`` of ``steps`` backward jumps lie outside
    ``model.noise_band`` (maps without one: nothing to check)."""
    band = getattr(model, "noise_band", None)
    if band is None or getattr(model, "_warned_outside", False):
        return
    outside = int((~band.contains(end, sigma0)).sum())
    if outside:
        _warn_once(model, f"{outside} of {len(end)} points jump back ({steps} jumps) outside the band where this "
                          f"flow map's training data land, {band}: they are unlike its data, and their "
                          f"log-likelihood is an extrapolation (see book chapter 7)")
