"""2-D toy densities with exact log-densities, and a Gaussian mixture with a closed-form flow-matching velocity.

Book chapters 0 and 1. Every density draws ``sample(n, seed=...)`` as a float32 ``[n, 2]`` tensor; those with a
closed-form density (checkerboard, gaussians8, rings, any ``GaussianMixture``) give ``log_prob(x)``; the others
raise ``NotImplementedError`` naming the ones that do.
"""

from __future__ import annotations

import math

import torch

from f2d2mini import checks
from f2d2mini.base import make_generator

__all__ = ["Density", "GaussianMixture", "Checkerboard", "Rings", "density", "thin_mixture", "NAMES"]

CHECKERBOARD_HALF_WIDTH = 4.0  # support inside [-4, 4]^2
CHECKERBOARD_CELL = 2.0  # 4 x 4 cells of side 2, 8 of them filled
GAUSSIANS8_RADIUS = 3.0
GAUSSIANS8_STD = 0.4
RINGS_RADII = (1.0, 2.0, 3.0)
RINGS_STD = 0.15
MOONS_NOISE = 0.1
SPIRALS_NOISE = 0.1
PINWHEEL_ARMS, PINWHEEL_RADIAL_STD, PINWHEEL_TANGENTIAL_STD, PINWHEEL_RATE = 5, 0.3, 0.1, 0.25


class Density:
    """A 2-D distribution: ``sample`` always, ``log_prob`` where a closed form exists."""

    name: str = "density"
    dim: int = 2
    has_log_prob: bool = False

    def sample(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws as a float32 ``[n, dim]`` tensor; randomness from ``seed`` or a ``torch.Generator``."""
        checks.positive_int(n, "n")
        gen = generator if generator is not None else make_generator(seed)
        return self._sample(n, gen).to(torch.float32)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of ``x`` ``[n, dim]`` -> ``[n]``."""
        with_exact = ", ".join(n for n in NAMES if _REGISTRY[n]().has_log_prob)
        raise NotImplementedError(
            f"density {self.name!r} has no closed-form log-density; densities with one: {with_exact}")

    def _sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class GaussianMixture(Density):
    """sum_k w_k N(mu_k, Sigma_k), with the exact marginal velocity of the linear path from N(0, sigma0^2 I).

    Along x_t = (1 - t) x0 + t x1 with x0 ~ N(0, sigma0^2 I) and x1 from the mixture, component k of x_t is
    N(t mu_k, C_k(t)) with C_k(t) = t^2 Sigma_k + (1 - t)^2 sigma0^2 I, and the flow-matching velocity
    v(x, t) = E[x1 - x0 | x_t = x] = sum_k pi_k(x, t) [mu_k + (t Sigma_k - (1 - t) sigma0^2 I) C_k^{-1} (x - t mu_k)],
    where pi_k(x, t) is the posterior of component k. We work in each Sigma_k's eigenbasis, where C_k is
    diagonal, so everything is elementwise and smooth in (x, t) (forward- and reverse-mode differentiable).

    Args:
        means: ``[K, d]`` component means.
        covs: ``[K, d, d]`` symmetric positive-definite covariances.
        weights: ``[K]`` positive weights (normalised to sum to 1).
        sigma0: standard deviation of the base N(0, sigma0^2 I) at t = 0.
        name: a label for printing.
    """

    has_log_prob = True

    def __init__(self, means, covs, weights, sigma0: float = 1.0, name: str = "gaussian_mixture"):
        means = torch.as_tensor(means, dtype=torch.float64)
        covs = torch.as_tensor(covs, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if means.ndim != 2:
            raise ValueError(f"means must have shape [K, d], got {tuple(means.shape)}")
        k, d = means.shape
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape [{k}, {d}, {d}] to match means, got {tuple(covs.shape)}")
        if weights.shape != (k,) or not (weights > 0).all():
            raise ValueError(f"weights must be {k} positive numbers, got {weights.tolist()}")
        if not torch.allclose(covs, covs.transpose(1, 2)):
            raise ValueError("covs must be symmetric")
        eigvals, eigvecs = torch.linalg.eigh(covs)
        if not (eigvals > 0).all():
            raise ValueError(f"covs must be positive definite, got eigenvalues {eigvals.tolist()}")
        if not sigma0 > 0:
            raise ValueError(f"sigma0 must be > 0, got {sigma0}")
        self.means, self.covs, self.weights = means, covs, weights / weights.sum()
        self.eigvals, self.eigvecs = eigvals, eigvecs  # Sigma_k = Q_k diag(lambda_k) Q_k^T
        self.sigma0, self.name, self.dim = float(sigma0), name, d

    def _sample(self, n, gen):
        comp = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        eps = torch.randn(n, self.dim, generator=gen, dtype=torch.float64)
        scale = self.eigvecs * self.eigvals.sqrt()[:, None, :]  # Q diag(sqrt(lambda))
        return self.means[comp] + (scale[comp] @ eps[:, :, None])[..., 0]

    def marginal(self, t: float) -> GaussianMixture:
        """The mixture of x_t: components N(t mu_k, t^2 Sigma_k + (1 - t)^2 sigma0^2 I)."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        covs = t**2 * self.covs + (1 - t) ** 2 * self.sigma0**2 * eye
        return GaussianMixture(t * self.means, covs, self.weights, self.sigma0, f"{self.name}@t={t:g}")

    def _posterior_terms(self, x: torch.Tensor, t: torch.Tensor):
        """Per-component pieces at (x, t): eigenbasis residual z, variances c, log-joint. Shapes [B, K, d]."""
        mu, q, lam = (a.to(x) for a in (self.means, self.eigvecs, self.eigvals))
        tb = t[:, None, None]  # [B, 1, 1]
        z = torch.einsum("kji,bkj->bki", q, x[:, None, :] - tb * mu)  # Q_k^T (x - t mu_k)
        c = tb**2 * lam + (1 - tb) ** 2 * self.sigma0**2  # eigenvalues of C_k(t)
        log_normal = -0.5 * (z**2 / c + c.log()).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        log_joint = self.weights.to(x).log() + log_normal  # [B, K]
        return z, c, log_joint

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density ``[n]`` of ``x`` ``[n, d]`` under the mixture."""
        checks.batch(x, dim=self.dim, ndim=2)
        _, _, log_joint = self._posterior_terms(x, torch.ones(len(x), dtype=x.dtype, device=x.device))
        return torch.logsumexp(log_joint, dim=1)

    def velocity(self, x: torch.Tensor, t) -> torch.Tensor:
        """Exact marginal flow-matching velocity v(x, t) ``[n, d]`` of the linear path; ``t`` float or ``[n]``."""
        checks.batch(x, dim=self.dim, ndim=2, finite=False)  # runs inside torch.func transforms
        t = checks.time(t, len(x), x, finite=False)
        z, c, log_joint = self._posterior_terms(x, t)
        tb = t[:, None, None]
        a = tb * self.eigvals.to(x) - (1 - tb) * self.sigma0**2  # eigenvalues of t Sigma_k - (1 - t) sigma0^2 I
        v_k = self.means.to(x) + torch.einsum("kij,bkj->bki", self.eigvecs.to(x), a * z / c)  # [B, K, d]
        return (torch.softmax(log_joint, dim=1)[..., None] * v_k).sum(1)

    def __call__(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.velocity(x, t)


class Checkerboard(Density):
    """Uniform on 8 of the 16 cells of side 2 tiling [-4, 4]^2: log p = -ln 32 on the support, -inf off it."""

    name, has_log_prob = "checkerboard", True

    def _sample(self, n, gen):
        cells_per_side = round(2 * CHECKERBOARD_HALF_WIDTH / CHECKERBOARD_CELL)
        col = torch.randint(0, cells_per_side, (n,), generator=gen)
        row = 2 * torch.randint(0, cells_per_side // 2, (n,), generator=gen) + col % 2  # row + col even
        corner = torch.stack([col, row], 1).double() * CHECKERBOARD_CELL - CHECKERBOARD_HALF_WIDTH
        return corner + CHECKERBOARD_CELL * torch.rand(n, 2, generator=gen, dtype=torch.float64)

    def log_prob(self, x):
        checks.batch(x, dim=2, ndim=2)
        cell = torch.floor((x + CHECKERBOARD_HALF_WIDTH) / CHECKERBOARD_CELL)
        inside = (x.abs() <= CHECKERBOARD_HALF_WIDTH).all(1) & (cell.sum(1) % 2 == 0)
        area = (2 * CHECKERBOARD_HALF_WIDTH) ** 2 / 2
        out = torch.full((len(x),), -math.log(area), dtype=x.dtype, device=x.device)
        return out.masked_fill(~inside, -math.inf)


class Rings(Density):
    """Concentric rings: angle uniform, radius |r_k + sigma eps| with ring k chosen in proportion to r_k.

    Exact density: p(x) = (1 / (2 pi r)) sum_k w_k [N(r; r_k, sigma^2) + N(-r; r_k, sigma^2)], r = |x|.
    """

    name, has_log_prob = "rings", True

    def __init__(self, radii=RINGS_RADII, std: float = RINGS_STD):
        self.radii = torch.tensor(radii, dtype=torch.float64)
        self.weights = self.radii / self.radii.sum()
        self.std = std

    def _sample(self, n, gen):
        ring = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        r = (self.radii[ring] + self.std * torch.randn(n, generator=gen, dtype=torch.float64)).abs()
        angle = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        return torch.stack([r * angle.cos(), r * angle.sin()], 1)

    def log_prob(self, x):
        checks.batch(x, dim=2, ndim=2)
        r = x.double().norm(dim=1, keepdim=True)
        radii, w = self.radii.to(r.device), self.weights.to(r.device)
        log_n = lambda y: -0.5 * ((y - radii) / self.std) ** 2 - math.log(self.std * math.sqrt(2 * math.pi))
        log_radial = torch.logsumexp(w.log() + torch.logaddexp(log_n(r), log_n(-r)), dim=1)
        return (log_radial - torch.log(2 * math.pi * r[:, 0])).to(x.dtype)


class Moons(Density):
    """Two interleaved half circles with Gaussian noise (no closed-form density)."""

    name = "moons"

    def _sample(self, n, gen):
        upper = torch.rand(n, generator=gen) < 0.5
        angle = math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        x = torch.where(upper, angle.cos(), 1 - angle.cos())
        y = torch.where(upper, angle.sin(), 0.5 - angle.sin())
        pts = torch.stack([x - 0.5, y - 0.25], 1) * 2
        return pts + MOONS_NOISE * 2 * torch.randn(n, 2, generator=gen, dtype=torch.float64)


class Spirals(Density):
    """Two interleaved spirals with Gaussian noise (no closed-form density)."""

    name = "spirals"

    def _sample(self, n, gen):
        turn = torch.sqrt(torch.rand(n, generator=gen, dtype=torch.float64)) * 3 * math.pi
        sign = torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0).double()
        pts = sign[:, None] * torch.stack([-turn * turn.cos(), turn * turn.sin()], 1) / 3
        return pts + SPIRALS_NOISE * torch.randn(n, 2, generator=gen, dtype=torch.float64)


class Pinwheel(Density):
    """Gaussian blobs bent into arms by a radius-dependent rotation (no closed-form density)."""

    name = "pinwheel"

    def _sample(self, n, gen):
        arm = torch.randint(0, PINWHEEL_ARMS, (n,), generator=gen)
        stds = torch.tensor([PINWHEEL_RADIAL_STD, PINWHEEL_TANGENTIAL_STD], dtype=torch.float64)
        feat = torch.randn(n, 2, generator=gen, dtype=torch.float64) * stds + torch.tensor([1.0, 0.0]).double()
        angle = 2 * math.pi * arm / PINWHEEL_ARMS + PINWHEEL_RATE * feat[:, 0].exp()
        cos, sin = angle.cos(), angle.sin()
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [n, 2, 2]
        return 2 * (rot @ feat[:, :, None])[..., 0]


def _gaussians8() -> GaussianMixture:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = GAUSSIANS8_RADIUS * torch.stack([angles.cos(), angles.sin()], 1)
    covs = GAUSSIANS8_STD**2 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2)
    return GaussianMixture(means, covs, torch.ones(8), name="gaussians8")


def thin_mixture() -> GaussianMixture:
    """Four thin, tilted components: a few points' ODE paths bend much more than the rest, a hard case for an
    adaptive solver's error control (tests and ``benchmarks/error_norm.py``). Not one of :data:`NAMES`."""
    return GaussianMixture(
        [[0.0, 0.0], [2.5, 1.0], [-2.0, 2.0], [0.5, -2.5]],
        [[[0.01, 0.0], [0.0, 0.5]], [[0.3, 0.25], [0.25, 0.3]], [[0.02, 0.0], [0.0, 0.02]], [[1.0, 0.0], [0.0, 0.005]]],
        [1, 1, 1, 1], name="thin")


_REGISTRY = {
    "checkerboard": Checkerboard,
    "gaussians8": _gaussians8,
    "rings": Rings,
    "moons": Moons,
    "spirals": Spirals,
    "pinwheel": Pinwheel,
}
NAMES = tuple(_REGISTRY)


def density(name: str) -> Density:
    """The toy density called ``name``: one of checkerboard, gaussians8, rings, moons, spirals, pinwheel."""
    checks.choice(name, NAMES, "density")
    return _REGISTRY[name]()
