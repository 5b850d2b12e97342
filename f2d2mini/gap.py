"""Where a flow map's likelihood gap to its teacher lives: the end term and the divergence term (book chapter 7).

A map's K-step log-likelihood and its teacher's ODE log-likelihood are each a base density at a landing point plus
an accumulated divergence (:func:`f2d2mini.flowmap.log_prob`, :func:`f2d2mini.ode.likelihood`):

    log p_map(x)     = log p_0(x_K)  - sum_k (tau_{k+1} - tau_k) D(x_k, tau_k, tau_{k+1}),
    log p_teacher(x) = log p_0(x(0)) - int_0^1 div v(x(tau), tau) dtau,

so their difference, map minus teacher, is the *end term* log p_0(x_K) - log p_0(x(0)) (where the jumps land
against where the teacher's flow lands: landing nearer the origin than the teacher makes it positive, the map too
optimistic) plus the *divergence term*, the map's accumulated D against the teacher's integral. One ODE solve of
the teacher serves every K.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from f2d2mini import base, checks, flowmap, ode

__all__ = ["GapTerms", "GapSplit", "split"]


class GapTerms(NamedTuple):
    """Per point ``[B]``, map minus teacher, in nats: the ``end`` term and the ``divergence`` term of the
    log-likelihood gap (their sum: :attr:`total`), and ``landing`` = |x_K| / |x(0)|, how far the jumps land from
    the origin against the teacher's end point."""

    end: torch.Tensor
    divergence: torch.Tensor
    landing: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """``[B]`` log p_map(x) - log p_teacher(x) in nats."""
        return self.end + self.divergence


class GapSplit(NamedTuple):
    """The teacher's solve (``reference``: its log-likelihood, end points x(0), divergence integral and NFE) and
    ``terms``: K -> :class:`GapTerms` of the map's K backward jumps."""

    reference: ode.Likelihood
    terms: dict[int, GapTerms]


def split(teacher, model, x: torch.Tensor, ks=flowmap.EVAL_STEPS, **solve) -> GapSplit:
    """The gap of ``model``'s K-step log-likelihood of the points ``x`` ``[B, *shape]`` to ``teacher``'s ODE one, at
    each K of ``ks``, split into its end and divergence terms.

    ``solve``: options of :func:`f2d2mini.ode.likelihood` for the teacher (solver, divergence, probes, seed, rtol,
    atol, ...). A teacher and a map with different base sigma0 are an error naming both; so are the errors of
    :func:`f2d2mini.flowmap.log_prob` and :func:`f2d2mini.ode.likelihood`.
    """
    sigma0 = base.same_sigma0(teacher, model)
    x = checks.points(x, model, owner="flow map")
    for k in ks:
        checks.steps(k)
    reference = ode.likelihood(teacher, x, sigma0=sigma0, **solve)
    start = reference.x0.flatten(1).norm(dim=1)
    terms = {}
    for k in ks:
        with torch.inference_mode():
            out = flowmap.jumps(model, x, flowmap.backward_times(k))
        end = base.log_density(out.x, sigma0) - base.log_density(reference.x0, sigma0)
        # log p_map = log p_0(x_K) - delta_map; log p_teacher = log p_0(x(0)) + delta_teacher (delta = int_1^0 div v)
        terms[k] = GapTerms(end, -out.delta - reference.delta, out.x.flatten(1).norm(dim=1) / start)
    return GapSplit(reference, terms)
