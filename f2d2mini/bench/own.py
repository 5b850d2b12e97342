"""Your own model (``f2d2mini bench own``): velocities that f2d2mini did not create, distilled through the front door
:func:`f2d2mini.distill` with the rule's defaults, against their own per-point dopri5 likelihood (book chapter 8).

Two parts. ``checkerboard``: the shipped checkerboard teacher hidden inside a plain ``nn.Module`` and inside a
facebookresearch/flow_matching ``ModelWrapper`` (when installed), distilled from a data tensor (the wrapper in a
short run that must give the same map bit for bit); the map's K-step error on held-out points and its density on
the grid suite's grid, beside the shipped Shortcut map. ``wine``: a
velocity trained in plain PyTorch (:func:`plain_teacher`, the loop chapter 8 writes by hand) on scikit-learn's wine
features (13 dimensions, standardised, no download), distilled the same way; its K-step error on held-out rows,
the first-order reversal beside it, and its speed against the teacher's dopri5.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from f2d2mini import adapters, base, checkpoint, distillation, flowmap, nets, ode, student, toy
from f2d2mini.bench.flowmaps import grid_reference, grid_rows
from f2d2mini.bench.peer import PEER_MISSING
from f2d2mini.bench.solvers import heldout, load_saved
from f2d2mini.reports import Table, median_seconds

__all__ = ["PlainVelocity", "plain_teacher", "wine", "own_suite", "DATA_POINTS", "DATA_SEED", "WINE_HELDOUT",
           "WINE_SEED", "WINE_TEACHER", "WINE_FEATURES", "WINE_WIDTH", "WINE_DISTILL", "WINE_REFERENCE_REPEATS",
           "MAP_REPEATS", "WRAPPER_CHECK"]

DATA_POINTS = 50_000  # the checkerboard "dataset" the wrapped teacher is distilled from
DATA_SEED = 7  # its seed (the held-out points have bench.HELDOUT_SEED)
WINE_HELDOUT = 30  # wine rows held out of training (of 178)
WINE_SEED = 0  # the split's seed
WINE_TEACHER = dict(steps=1000, width=64, noise=0.2)  # plain_teacher on the 148 wine rows: longer or wider runs, or
# no noise, fit the training rows better and the held-out rows worse (it has few rows to learn 13 dimensions from)
WRAPPER_CHECK = dict(steps=300, warm_steps=100)  # a flow_matching ModelWrapper of the hidden teacher must distil to
# the same map, bit for bit, as the hidden teacher itself: a short run shows it without training the map twice
WINE_FEATURES = 13  # scikit-learn's wine: 13 chemical measurements a row
WINE_WIDTH = 96  # hidden units of the wine map: the narrowest tried that the K = 4 error allows (benchmarks/README.md)
WINE_DISTILL = dict(coverage_points=1000,
                    net=nets.MLPConfig(dim=WINE_FEATURES, width=WINE_WIDTH, space_features=nets.SPACE_FEATURES))
# the Shortcut defaults but these: a bank of 1,000 trajectories (the exact divergence costs 13 backward passes a
# point), and a map narrower than the default MLP, so that each jump is cheap beside the 64-wide teacher's solve
WINE_REFERENCE_REPEATS = 5  # the teacher's solve of 30 rows takes a tenth of a second: timed as the maps are, a median
MAP_REPEATS = 25  # a map's likelihood of 30 rows is so short that a busy core's hiccups can double it: a median
# of many


class PlainVelocity(nn.Module):
    """A velocity as someone outside f2d2mini writes it: an MLP on [x, t] with ``forward(x, t)``."""

    def __init__(self, dim: int, width: int = 256, depth: int = 3):
        super().__init__()
        layers, d = [], dim + 1
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.SiLU()]
            d = width
        self.net = nn.Sequential(*layers, nn.Linear(d, dim))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).expand(len(x), 1)], dim=1))


def plain_teacher(data: torch.Tensor, steps: int, *, width: int = 256, noise: float = 0.0, batch_size: int = 256,
                  lr: float = 1e-3, seed: int = 0) -> PlainVelocity:
    """Flow matching in plain PyTorch on the rows of ``data`` ``[N, d]``: Adam, cosine decay, no EMA. ``noise`` > 0
    adds N(0, noise^2 I) to every drawn row (the teacher then learns the data smoothed by that kernel)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = PlainVelocity(data.shape[1], width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        x1 = data[torch.randint(len(data), (batch_size,), generator=gen)]
        if noise:
            x1 = x1 + noise * torch.randn(x1.shape, generator=gen)
        x0, t = torch.randn(x1.shape, generator=gen), torch.rand(batch_size, generator=gen)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        loss = (model(xt, t) - (x1 - x0)).pow(2).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval().requires_grad_(False)


def wine(seed: int = WINE_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's wine features, standardised with the training rows' mean and spread: (train, held-out)."""
    from sklearn.datasets import load_wine

    x = torch.from_numpy(load_wine().data).float()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = x[order[WINE_HELDOUT:]], x[order[:WINE_HELDOUT]]
    mean, std = train.mean(0), train.std(0)
    return (train - mean) / std, (test - mean) / std


def _rows(name: str, label: str, model, x: torch.Tensor, reference: torch.Tensor,
          ref_seconds: Callable[[], float]) -> list[dict]:
    """K-step error against the reference, backward jumps and the first-order reversal, and the speed-up against the
    reference solve, whose time ``ref_seconds()`` gives beside each row's map."""
    rows = []
    for k in flowmap.EVAL_STEPS:
        for reversal in flowmap.REVERSALS:
            err = model.log_prob(x, k, reversal=reversal) - reference
            seconds = median_seconds(lambda: model.log_prob(x, k, reversal=reversal), MAP_REPEATS)  # noqa: B023
            ref = ref_seconds()
            rows.append({"data": name, "map": label, "K": k, "reversal": reversal, "mae": err.abs().mean().item(),
                         "mean error": err.mean().item(), "map ms": 1e3 * seconds, "dopri5 ms": 1e3 * ref,
                         "speedup vs dopri5": ref / seconds})
    return rows


def own_suite(checkpoints: str | Path = checkpoint.DEFAULT_DIR, n: int = 10_000, out: Path | None = None,
              parts=("checkerboard", "wine"), device: torch.device | str = "cpu") -> dict:
    """The two parts (see the module docstring); the maps are saved into ``out`` when given."""
    rows, grid, runs = [], [], []

    def distil(label, teacher, data, name, save=True, **changes):
        start = time.perf_counter()
        config = distillation.distill_config("shortcut", device=torch.device(device).type, **changes)
        model = student.distill(teacher, data, "shortcut", config, name=f"{label} {name}")
        runs.append({"data": name, "map": label, "d": data.shape[1], "rows": len(data), "steps": config.steps,
                     "train seconds": time.perf_counter() - start})
        if out is not None and save:
            checkpoint.save(model, Path(out) / f"f2d2_shortcut_{name}_{label}.pt")
        return model

    if "checkerboard" in parts:
        density = toy.density("checkerboard")
        teacher = load_saved(checkpoint.teacher_path("checkerboard", checkpoints),
                             "f2d2mini teacher --density checkerboard", device)
        x, data = heldout(density, n, device), density.sample(DATA_POINTS, seed=DATA_SEED).to(device)
        start = time.perf_counter()
        reference = ode.log_prob(teacher, x, "dopri5")
        ref_seconds = time.perf_counter() - start
        maps = {"shipped": load_saved(checkpoint.flow_map_path("checkerboard", "shortcut", checkpoints), "", device)}
        maps["plain_module"] = distil("plain_module", _Hidden(teacher), data, "checkerboard")
        try:
            from flow_matching.utils import ModelWrapper
        except ImportError:
            warnings.warn(f"{PEER_MISSING}: the flow_matching ModelWrapper row is left out", stacklevel=2)
        else:
            fm_teacher = adapters.flow_matching(ModelWrapper(_Hidden(teacher)))
            wrapped = distil("flow_matching", fm_teacher, data, "checkerboard", save=False, **WRAPPER_CHECK)
            plain = distil("plain_module", _Hidden(teacher), data, "checkerboard", save=False, **WRAPPER_CHECK)
            runs[-2]["same map as plain_module"] = all(torch.equal(a, b) for a, b in
                                                       zip(wrapped.state_dict().values(), plain.state_dict().values()))
        squares = grid_reference(teacher, density, device)
        for label, model in maps.items():
            rows += _rows("checkerboard", label, model, x, reference, lambda: ref_seconds)  # one cold solve
            grid += [r.__dict__ | {"rule": label} for r in grid_rows(model, "shortcut", density, squares)]
    if "wine" in parts:
        train, test = (part.to(device) for part in wine())
        start = time.perf_counter()
        teacher = plain_teacher(train, **WINE_TEACHER).to(device)
        runs.append({"data": "wine", "map": "teacher (plain PyTorch, no map)", "d": train.shape[1], "rows": len(train),
                     "train seconds": time.perf_counter() - start})
        reference = ode.likelihood(teacher, test, "dopri5")
        def ref_seconds():  # timed beside each map's row: a slower minute of a shared machine slows both
            return median_seconds(lambda: ode.likelihood(teacher, test, "dopri5"), WINE_REFERENCE_REPEATS)

        runs[-1]["teacher NLL held-out"] = -reference.log_prob.mean().item()
        runs[-1]["teacher NLL train"] = -ode.log_prob(teacher, train, "dopri5").mean().item()
        runs[-1]["base NLL held-out"] = -base.log_prob(test).mean().item()
        gaussian = torch.distributions.MultivariateNormal(train.mean(0), torch.cov(train.T))
        runs[-1]["gaussian fit NLL held-out"] = -gaussian.log_prob(test).mean().item()
        model = distil("plain_teacher", teacher, train, "wine", **WINE_DISTILL)
        rows += _rows("wine", "plain_teacher", model, test, reference.log_prob, ref_seconds)
    formats = {"mae": ".4f", "mean error": "+.4f", "map ms": ".3f", "dopri5 ms": ".1f", "speedup vs dopri5": ".0f",
               "train seconds": ".0f"}
    title = (f"Distillations through f2d2mini.distill (Shortcut defaults; wine: a bank of "
             f"{WINE_DISTILL['coverage_points']} trajectories and a {WINE_WIDTH}-wide map)")
    tables = {"runs": Table(runs, formats, title=title),
              "likelihood": Table(rows, formats, title="K-step log-likelihood against the teacher's per-point dopri5"
                                                       " (nats)")}
    if grid:
        tables["grid"] = Table(grid, title="On the grid suite's grid of [-6, 6]^2 against the teacher's dopri5")
    return {"tables": tables, "report": {"runs": runs, "likelihood": rows, "grid": grid}}


class _Hidden(nn.Module):
    """An f2d2mini teacher behind a module f2d2mini does not know (no config, no warm start: a fresh map)."""

    def __init__(self, velocity: nn.Module):
        super().__init__()
        self.velocity = velocity

    def forward(self, x, t):
        return self.velocity(x, t)
