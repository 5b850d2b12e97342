"""Small networks for 2-D work: a sinusoidal time embedding, an MLP trunk and the velocity model v(x, t).

Book chapter 1. Every model keeps its architecture in a frozen ``config`` dataclass, which checkpoints save as
JSON, so :func:`f2d2mini.load` can rebuild it without pickled code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from f2d2mini import checkpoint, checks

__all__ = ["TimeEmbedding", "FourierFeatures", "MLP", "MLPConfig", "VelocityMLP"]


class TimeEmbedding(nn.Module):
    """t -> [t, sin(w_k t), cos(w_k t)] with ``frequencies`` angular frequencies w_k log-spaced in [1, max]."""

    def __init__(self, frequencies: int, max_frequency: float):
        super().__init__()
        w = torch.exp(torch.linspace(0.0, math.log(max_frequency), frequencies))
        self.register_buffer("w", w, persistent=False)
        self.dim = 1 + 2 * frequencies

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # [B] -> [B, dim]
        wt = t[:, None] * self.w.to(t)
        return torch.cat([t[:, None], wt.sin(), wt.cos()], dim=1)

    def pair(self, t, s, x: torch.Tensor) -> torch.Tensor:
        """[embed(t), embed(s)] ``[B, 2 dim]`` for the ``B = len(x)`` points of ``x``, t and s floats or ``[B]``
        tensors; two numbers (a jump of a few-step grid) are embedded once and broadcast over the points."""
        if isinstance(t, torch.Tensor) or isinstance(s, torch.Tensor):
            ts = torch.stack([checks.time(u, len(x), x, name, finite=False) for u, name in ((t, "t"), (s, "s"))], 1)
        else:
            ts = torch.tensor([[checks.float_time(t, "t"), checks.float_time(s, "s")]], dtype=x.dtype, device=x.device)
        return self(ts.reshape(-1)).reshape(len(ts), 2 * self.dim).expand(len(x), -1)


class MLP(nn.Sequential):
    """``depth`` hidden layers of ``width`` units with SiLU, then a linear output layer."""

    def __init__(self, d_in: int, d_out: int, width: int, depth: int):
        layers, d = [], d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.SiLU()]
            d = width
        super().__init__(*layers, nn.Linear(d, d_out))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self:  # each layer's forward, not its __call__: nothing hooks these layers, and at a few dozen
            h = layer.forward(h)  # points the module call's bookkeeping is a visible share of a layer's cost
        return h


class FourierFeatures(nn.Module):
    """x -> [x, sin(x B), cos(x B)] with a fixed Gaussian matrix B ``[d, n]`` of scale ``scale`` (seeded, saved):
    random Fourier features that let an MLP draw sharp edges (Tancik et al., 2020)."""

    def __init__(self, dim: int, n: int, scale: float, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("B", scale * torch.randn(dim, n, generator=gen))
        self.dim = dim + 2 * n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.B.shape[1] == 0:
            return x
        xb = x @ self.B.to(x)
        return torch.cat([x, xb.sin(), xb.cos()], dim=1)


SPACE_FEATURES = 32  # random Fourier features of x in the teachers' and the fresh maps' default MLP: without them a
# fresh checkerboard map's K = 4 error is 8% higher (benchmarks/README.md, `own`)


@dataclass(frozen=True)
class MLPConfig:
    """Architecture of :class:`VelocityMLP` (and the 2-D flow map's trunk), and the base it flows from."""

    dim: int = 2  # data dimension d
    width: int = 256  # hidden units per layer
    depth: int = 4  # hidden layers
    time_frequencies: int = 16  # sinusoidal features per time input
    max_frequency: float = 100.0  # largest angular frequency of the time features
    space_features: int = 0  # random Fourier features of x (0: none; the defaults elsewhere: SPACE_FEATURES)
    space_scale: float = 1.0  # standard deviation of their frequencies
    sigma0: float = 1.0  # the base N(0, sigma0^2 I) at t = 0 that the model's flow starts from (saved with it)


@checkpoint.register
class VelocityMLP(nn.Module):
    """The velocity v(x, t): an MLP on [x, embed(t)]. Call ``model(x, t)`` with x ``[B, d]``, t a float or ``[B]``."""

    def __init__(self, config: MLPConfig = MLPConfig()):
        super().__init__()
        self.config = config
        self.embed = TimeEmbedding(config.time_frequencies, config.max_frequency)
        self.features = FourierFeatures(config.dim, config.space_features, config.space_scale)
        self.net = MLP(self.features.dim + self.embed.dim, config.dim, config.width, config.depth)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        checks.batch(x, dim=self.config.dim, ndim=2, finite=False)
        t = checks.time(t, len(x), x, finite=False)
        return self.net(torch.cat([self.features(x), self.embed(t)], dim=1))
