"""Where a map's likelihood holds, judged by the map's own consistency (book chapter 7).

A flow map composes: carried from t = 1 back to t = 0 in eight jumps or in four, a point should land on the same
noise, and on the map's training data it nearly does. Off the data every jump is an extrapolation, and the two
landings need not agree. Their disagreement

    |x_8 - x_4|^2 / (d sigma0^2)

is calibrated on the data after distillation (its largest value there, times :data:`DISAGREEMENT_FACTOR`) and saved
with the map (``model.consistency``, a :class:`Consistency`). It sees images whose landings look like noise by
every statistic of :class:`f2d2mini.coverage.NoiseBand` and still are not where the data land. It costs twelve jumps
per point, three times a four-jump likelihood, so :func:`f2d2mini.flowmap.log_prob` does not run it: ask for it with
:func:`consistent`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from f2d2mini import base, checkpoint, checks, flowmap

__all__ = ["Consistency", "disagreement", "calibrate", "consistent", "CONSISTENCY_STEPS", "DISAGREEMENT_FACTOR"]

CONSISTENCY_STEPS = (4, 8)  # the two numbers of backward jumps whose landings are compared
# The calibrated limit is the data's largest disagreement times this: held-out data reach a little past the
# calibration points, images unlike the data much further, and a limit between errs towards doubting a digit over
# trusting an empty canvas (the measurements that chose it: benchmarks/README.md, "mnist").
DISAGREEMENT_FACTOR = 2.0


@dataclass(frozen=True)
class Consistency:
    """The largest disagreement |x_8 - x_4|^2 / (d sigma0^2) of a point whose likelihood the map is trusted with."""

    limit: float

    def __str__(self) -> str:
        steps = " - x_".join(str(k) for k in reversed(CONSISTENCY_STEPS))
        return f"|x_{steps}|^2 / (d sigma0^2) <= {self.limit:.4f}"


checkpoint.register_attribute("consistency", Consistency)  # saved with the map's weights, restored by f2d2mini.load


def disagreement(model, x: torch.Tensor) -> torch.Tensor:
    """``[B]``: |x_8 - x_4|^2 / (d sigma0^2) of the points ``x`` ``[B, *shape]`` (t = 1), where x_K is the end of
    K backward jumps; 0 for a map that composes exactly. Raises as :func:`f2d2mini.flowmap.log_prob` does for a bad
    ``x`` (float64 points go into a float32 map as float32)."""
    return _disagreement(model, checks.points(x, model, owner="flow map"))


def _disagreement(model, x: torch.Tensor) -> torch.Tensor:
    """:func:`disagreement` of points already checked."""
    sigma0 = base.resolve_sigma0(model, name="flow map")
    with torch.no_grad():
        few, many = (flowmap.jumps(model, x, flowmap.backward_times(k)).x for k in CONSISTENCY_STEPS)
    return (many - few).flatten(1).pow(2).mean(1) / sigma0**2


def calibrate(model, x1: torch.Tensor) -> Consistency:
    """The limit from data points ``x1`` (at least one): their largest :func:`disagreement` times
    :data:`DISAGREEMENT_FACTOR`."""
    x1 = checks.points(x1, model, "x1", min_rows=1, owner="flow map")
    return Consistency(DISAGREEMENT_FACTOR * _disagreement(model, x1).max().item())


def consistent(model, x: torch.Tensor) -> torch.Tensor:
    """``[B]`` booleans: the points of ``x`` whose disagreement is within ``model.consistency``; with
    :func:`f2d2mini.flowmap.trusted`, the points whose likelihood the map can be trusted with.

    Raises:
        ValueError: the map carries no calibrated :class:`Consistency` (image maps distilled on their data get one
            from :func:`f2d2mini.student.distill`).
        ValueError, TypeError: naming ``x``, as :func:`f2d2mini.flowmap.log_prob` does.
    """
    limit = getattr(model, "consistency", None)
    if limit is None:
        raise ValueError(f"this {type(model).__name__} carries no calibrated consistency limit (model.consistency): "
                         f"image maps distilled on their data get one from f2d2mini.distill; for others, set "
                         f"model.consistency = f2d2mini.consistency.calibrate(model, data points)")
    return disagreement(model, x) <= limit.limit
