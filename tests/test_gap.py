"""gap: a map's log-likelihood gap to its teacher, split into the end term and the divergence term, checked on the
exact flow of a Gaussian mixture, on a map that lands short by a known factor, and against the two likelihoods."""

import pytest
import torch
from helpers import EXACT, GMM, points
from torch import nn

import f2d2mini as f2
from f2d2mini import gap, ode
from f2d2mini.flowmap import FlowMapOutput, ODEFlowMap
from f2d2mini.times import per_point

SOLVE = dict(divergence="exact", rtol=1e-7, atol=1e-7)  # the teacher's reference, far below the tolerances below
# nats: the exact map's jumps are RK4 with 64 steps over half of [0, 1] or less; on these points its log-density
# terms are off by 6e-5 at most (a single jump over all of [0, 1] by up to 3e-4)
EXACT_TOL = 1e-4
K_EXACT = (2,)  # two jumps of 64 RK4 steps each: the exact map is the slow part of these tests


def test_the_exact_map_has_no_gap():
    """The mixture's exact flow map lands where the teacher's ODE lands, with its divergence: both terms vanish."""
    x = points(8)[0]
    res = gap.split(GMM.velocity, EXACT, x, ks=K_EXACT, **SOLVE)
    for terms in res.terms.values():
        assert terms.end.abs().max() < EXACT_TOL and terms.divergence.abs().max() < EXACT_TOL
        assert torch.allclose(terms.landing, torch.ones_like(terms.landing), atol=1e-3)


class ShortLanding(nn.Module):
    """The mixture's exact flow map, but every jump that ends at s = 0 lands ``c`` times as far from the origin; the
    divergence left exact."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x, t, s):
        out = EXACT(x, t, s)
        gap_ = per_point(torch.as_tensor(s) - torch.as_tensor(t), x)
        land = x + gap_ * out.u
        land = torch.where(per_point(torch.as_tensor(s) == 0, x), self.c * land, land)
        return FlowMapOutput((land - x) / gap_, out.D)


def test_a_short_landing_is_an_end_term_of_known_size():
    """Landing at c x(0) instead of x(0) moves log N by (1 - c^2) |x(0)|^2 / 2 > 0 (the map too optimistic) and
    leaves the divergence term at zero."""
    x, c = points(8)[0], 0.9
    res = gap.split(GMM.velocity, ShortLanding(c), x, ks=K_EXACT, **SOLVE)
    x0 = res.reference.x0
    expected = (1 - c**2) * x0.pow(2).sum(1) / 2
    assert (expected > 0).all()
    for terms in res.terms.values():
        assert torch.allclose(terms.end, expected, atol=EXACT_TOL)
        assert terms.divergence.abs().max() < EXACT_TOL
        assert torch.allclose(terms.landing, torch.full_like(terms.landing, c), atol=1e-3)


def test_the_terms_add_up_to_the_difference_of_the_two_likelihoods():
    """An inexact map (two Euler steps per jump): end + divergence = log_prob(map) - the teacher's ODE log_prob."""
    x = points(8)[0]
    rough = ODEFlowMap(GMM.velocity, "euler", 2)
    res = gap.split(GMM.velocity, rough, x, ks=(1, 2, 8), **SOLVE)
    teacher = ode.log_prob(GMM.velocity, x, **SOLVE)
    for k, terms in res.terms.items():
        assert terms.end.abs().max() > 1e-3  # not the exact map: there is a gap to split
        assert torch.allclose(terms.total, f2.flowmap.log_prob(rough, x, k) - teacher, atol=1e-10)


def test_split_names_bad_arguments():
    x = points(4)[0]
    with pytest.raises(ValueError, match="steps"):
        gap.split(GMM.velocity, EXACT, x, ks=(0,), **SOLVE)
    other_base = ShortLanding(1.0)
    other_base.sigma0 = 2 * GMM.sigma0
    with pytest.raises(ValueError, match="teacher's base sigma0 is 1.0 but the flow map's is 2.0"):
        gap.split(GMM.velocity, other_base, x, **SOLVE)
