"""A small U-Net: the image velocity v(x, t) and the image joint flow map (x, t, s) -> (u, D) (book chapter 7).

Both share one body: sinusoidal time features (:class:`f2d2mini.nets.TimeEmbedding`) of each time go through an
MLP into an embedding added in every residual block; the encoder halves the resolution per level, the decoder
doubles it back and concatenates the encoder's features at the same level (the skips). The flow map embeds t and
s, and its divergence head reads globally pooled late features (the bottleneck's and the decoder's last), not a
flattened feature map:

    D(x, t, s) = R * MLP([mean_hw(h_mid), mean_hw(h_out), emb(t, s)]),

with R = ``config.div_scale`` saved in the checkpoint; with a divergence profile (``config.profile_intervals``,
:mod:`f2d2mini.div_profile`) the head is a relative correction instead, D = P(t, s) (1 + MLP(...)). GroupNorm
normalises each image on its own, so samples stay independent, as divergences require.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from f2d2mini import checkpoint, checks, div_profile, nets
from f2d2mini.flowmap import FewStepMethods, FlowMapOutput

__all__ = ["UNetConfig", "UNetFlowMapConfig", "UNet", "UNetVelocity", "UNetFlowMap"]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of the image U-Net. Defaults: a tiny net for scikit-learn's 8x8 digits on a CPU."""

    channels: int = 1  # image channels C
    size: int = 8  # image height = width; must be divisible by 2^(len(widths) - 1)
    widths: tuple[int, ...] = (32, 64)  # feature channels per resolution level (the first is the full resolution)
    blocks: int = 1  # residual blocks per level (encoder and decoder)
    embed_dim: int = 128  # width of the time embedding
    time_frequencies: int = 16  # sinusoidal features per time input
    max_frequency: float = 100.0  # largest angular frequency of the time features
    groups: int = 8  # GroupNorm groups (must divide every width)
    sigma0: float = 1.0  # the base N(0, sigma0^2 I) at t = 0 that the model's flow starts from (saved with it)

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))  # JSON round trips give lists
        if self.size % 2 ** (len(self.widths) - 1):
            raise ValueError(f"size {self.size} must be divisible by 2^(levels - 1) = {2 ** (len(self.widths) - 1)}")
        bad = [w for w in self.widths if w % self.groups]
        if bad:
            raise ValueError(f"groups {self.groups} must divide every width; it does not divide {bad}")


@dataclass(frozen=True)
class UNetFlowMapConfig(UNetConfig):
    """The flow map's U-Net: the velocity's fields (its base sigma0 among them) plus the divergence head and its
    scale R."""

    div_scale: float = 64.0  # R: the head regresses D / R (about the number of dimensions d)
    div_hidden: int = 128  # hidden units of the divergence head
    profile_intervals: int = 0  # J > 0: D = P(t, s) (1 + head) over the teacher's divergence profile on J intervals


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added in between, and a residual connection."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in, groups), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(embed_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # [B, c_in, H, W], [B, E]
        a = self.conv1(F.silu(self.norm1(h))) + self.emb(emb)[:, :, None, None]
        a = self.conv2(F.silu(self.norm2(a)))
        return self.skip(h) + a  # [B, c_out, H, W]


def _groups(c: int, groups: int) -> int:
    return groups if c % groups == 0 else 1  # concatenated skips may have widths the group count does not divide


class UNet(nn.Module):
    """The shared body: ``forward(x, times) -> (out [B, C, H, W], pooled [B, widths[-1] + widths[0] + E])``.

    ``times`` is a list of ``[B]`` tensors (one for v(x, t), two for the map (x, t, s)); their sinusoidal features
    are concatenated and mapped to one embedding.
    """

    def __init__(self, config: UNetConfig, n_times: int):
        super().__init__()
        c, w, e = config, config.widths, config.embed_dim
        self.embed = nets.TimeEmbedding(c.time_frequencies, c.max_frequency)
        self.time_mlp = nn.Sequential(nn.Linear(n_times * self.embed.dim, e), nn.SiLU(), nn.Linear(e, e))
        self.stem = nn.Conv2d(c.channels, w[0], 3, padding=1)
        self.down = nn.ModuleList()
        prev = w[0]
        for width in w:
            self.down.append(nn.ModuleList(ResBlock(prev if i == 0 else width, width, e, c.groups)
                                           for i in range(c.blocks)))
            prev = width
        self.mid = nn.ModuleList([ResBlock(w[-1], w[-1], e, c.groups), ResBlock(w[-1], w[-1], e, c.groups)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(w))):
            c_in = prev + w[level]  # upsampled features + the skip
            self.up.append(nn.ModuleList(ResBlock(c_in if i == 0 else w[level], w[level], e, c.groups)
                                         for i in range(c.blocks)))
            prev = w[level]
        self.out_norm = nn.GroupNorm(c.groups, w[0])
        self.out = nn.Conv2d(w[0], c.channels, 3, padding=1)
        self.pooled_dim = w[-1] + w[0] + e
        self.to(memory_format=torch.channels_last)  # NHWC convolutions: about 2x faster on a CPU, and on GPUs

    def forward(self, x: torch.Tensor, times: list[torch.Tensor]):
        emb = self.time_mlp(torch.cat([self.embed(t) for t in times], dim=1))  # [B, E]
        h, skips = self.stem(x.contiguous(memory_format=torch.channels_last)), []
        for level, blocks in enumerate(self.down):
            if level > 0:
                h = F.avg_pool2d(h, 2)  # halve the resolution
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        mid = h.mean((2, 3))  # [B, widths[-1]]
        for i, blocks in enumerate(self.up):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # double it back
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
        h = F.silu(self.out_norm(h))
        return self.out(h), torch.cat([mid, h.mean((2, 3)), emb], dim=1)


def _check_shape(x: torch.Tensor, config: UNetConfig) -> None:
    checks.batch(x, ndim=4, finite=False)
    if tuple(x.shape[1:]) != (config.channels, config.size, config.size):
        raise ValueError(f"x must have shape [batch, {config.channels}, {config.size}, {config.size}], "
                         f"got {tuple(x.shape)}")


@checkpoint.register
class UNetVelocity(nn.Module):
    """The velocity v(x, t) of images: call ``model(x, t)`` with x ``[B, C, H, W]`` and t a float or ``[B]``."""

    def __init__(self, config: UNetConfig = UNetConfig()):
        super().__init__()
        self.config = config
        self.body = UNet(config, n_times=1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        _check_shape(x, self.config)
        t = checks.time(t, len(x), x, finite=False)
        return self.body(x, [t])[0]


@checkpoint.register
class UNetFlowMap(FewStepMethods, nn.Module):
    """The joint flow map of images: ``model(x, t, s) -> FlowMapOutput(u [B, C, H, W], D [B])``, with t and s
    floats or ``[B]`` tensors; D is in natural units (nats per unit time), the head regresses D / R."""

    def __init__(self, config: UNetFlowMapConfig = UNetFlowMapConfig()):
        super().__init__()
        self.config = config
        self.body = UNet(config, n_times=2)
        self.div_head = nn.Sequential(nn.Linear(self.body.pooled_dim, config.div_hidden), nn.SiLU(),
                                      nn.Linear(config.div_hidden, 1))
        intervals = config.profile_intervals
        self.profile = div_profile.DivergenceProfile(intervals) if intervals else None  # filled by div_profile.estimate

    @classmethod
    def from_teacher(cls, teacher: UNetVelocity, div_scale: float, div_hidden: int = UNetFlowMapConfig.div_hidden,
                     profile_intervals: int = 0) -> UNetFlowMap:
        """A map with u(x, t, s) = v(x, t) for every s and D = 0 (D = P(t, s) with a profile): the teacher's weights
        (and base sigma0), zero weights on the features of s and on the divergence head's last layer. The warm start
        of phased training."""
        config = UNetFlowMapConfig(**asdict(teacher.config), div_scale=div_scale, div_hidden=div_hidden,
                                   profile_intervals=profile_intervals)
        model = cls(config)
        own, src = model.body.state_dict(), teacher.body.state_dict()
        first = "time_mlp.0.weight"  # [E, 2 * features]: the t half from the teacher, the s half zero
        for key, value in src.items():
            if key == first:
                own[key] = torch.cat([value, torch.zeros_like(value)], dim=1)
            else:
                own[key] = value
        model.body.load_state_dict(own)
        with torch.no_grad():
            model.div_head[-1].weight.zero_()
            model.div_head[-1].bias.zero_()
        return model

    def forward(self, x: torch.Tensor, t, s) -> FlowMapOutput:
        _check_shape(x, self.config)
        t = checks.time(t, len(x), x, "t", finite=False)
        s = checks.time(s, len(x), x, "s", finite=False)
        u, pooled = self.body(x, [t, s])
        head = self.div_head(pooled)[:, 0]
        if self.profile is None:
            return FlowMapOutput(u, self.config.div_scale * head)
        return FlowMapOutput(u, self.profile.average(t, s) * (1 + head))

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one image: ``(C, H, W)``; samples and data live in [-1, 1]."""
        return (self.config.channels, self.config.size, self.config.size)
