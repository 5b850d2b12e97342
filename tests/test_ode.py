"""Solvers and the coupled likelihood ODE against closed forms."""

import math

import pytest
import torch

import f2d2mini as f2

ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
LAMBDA = -1.3  # dy/dt = LAMBDA * y on [0, 1]


@pytest.mark.parametrize("solver", ORDERS)
def test_fixed_step_solvers_converge_at_their_order(solver):
    y0 = (torch.ones(1, dtype=torch.float64),)
    exact = math.exp(LAMBDA)
    errs = [abs(f2.ode.integrate(lambda t, y: (LAMBDA * y[0],), y0, 0.0, 1.0, solver=solver, steps=k)
                .state[0].item() - exact) for k in (16, 32)]
    assert math.log2(errs[0] / errs[1]) == pytest.approx(ORDERS[solver], abs=0.1)


@pytest.mark.parametrize("solver,stages", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_nfe_counts_rhs_evaluations(solver, stages):
    sol = f2.ode.integrate(lambda t, y: (y[0],), (torch.ones(1),), 0.0, 1.0, solver=solver, steps=5)
    assert sol.nfe == 5 * stages


def test_constant_velocity_gives_shifted_base_density():
    """v = c moves x back to x - c with zero divergence: log p_1(x) = log p_0(x - c) for every solver."""
    c = torch.tensor([1.0, -2.0], dtype=torch.float64)
    x = torch.randn(10, 2, dtype=torch.float64)
    for solver, steps in [("euler", 1), ("rk4", 3), ("dopri5", None)]:
        res = f2.ode.likelihood(lambda z, t: c.expand_as(z) + 0 * z, x, solver, steps)
        assert torch.allclose(res.x0, x - c) and torch.allclose(res.log_prob, f2.base.log_prob(x - c))


def test_gmm_velocity_gives_exact_log_density_with_dopri5():
    gmm = f2.toy.density("gaussians8")
    x = gmm.sample(500, seed=0)
    res = f2.ode.likelihood(gmm.velocity, x, "dopri5", divergence="exact")
    assert (res.log_prob - gmm.log_prob(x)).abs().mean().item() < 1e-3
    assert res.nfe > 20


THIN = f2.toy.thin_mixture()  # thin, tilted components: a few points' paths bend much more than the rest


def test_the_adaptive_reference_is_right_per_point():
    """Default dopri5 (rtol = atol = 1e-5) controls each sample's error: the worst of 2,000 points is within
    1e-3 nats of the exact log-density. torchdiffeq's batch-RMS control lets single tail points stray further."""
    x = THIN.sample(2000, seed=0)
    exact = THIN.log_prob(x)
    per_point = (f2.ode.likelihood(THIN.velocity, x).log_prob - exact).abs()
    assert per_point.max().item() < 1e-3
    batch = (f2.ode.likelihood(THIN.velocity, x, error_norm="batch").log_prob - exact).abs()
    assert batch.max().item() > 1e-3 > batch.mean().item()  # right on average, not per point


def test_hutchinson_likelihood_is_unbiased_on_the_gmm():
    gmm = f2.toy.density("gaussians8")
    x = gmm.sample(2000, seed=1).double()
    exact = f2.ode.likelihood(gmm.velocity, x, "rk4", 16)
    hutch = f2.ode.likelihood(gmm.velocity, x, "rk4", 16, divergence="hutchinson", seed=0)
    diff = hutch.log_prob - exact.log_prob
    assert abs(diff.mean().item()) < 5 * diff.std().item() / math.sqrt(len(x))  # unbiased within 5 stderr
    assert diff.std().item() > 1e-3  # it is an estimate, not the exact value


def test_sampling_the_gmm_flow_reaches_the_mixture():
    gmm = f2.toy.density("gaussians8")
    x1 = f2.ode.sample(gmm.velocity, f2.base.sample(4000, (2,), seed=0), steps=None, solver="dopri5")
    data = gmm.sample(4000, seed=1)
    # mean exact log-density of transported noise equals the mixture's (negative) entropy within 5 stderr
    lp, lp_data = gmm.log_prob(x1), gmm.log_prob(data)
    assert abs(lp.mean() - lp_data.mean()).item() < 5 * lp_data.std().item() * math.sqrt(2 / 4000)


def test_solver_argument_errors():
    f = lambda t, y: y
    with pytest.raises(ValueError, match="unknown solver 'rk5'.*euler.*dopri5"):
        f2.ode.integrate(f, (torch.ones(1),), 0.0, 1.0, solver="rk5", steps=2)
    with pytest.raises(ValueError, match="fixed-step: pass steps"):
        f2.ode.integrate(f, (torch.ones(1),), 0.0, 1.0, solver="euler")
    with pytest.raises(ValueError, match="adaptive"):
        f2.ode.integrate(f, (torch.ones(1),), 0.0, 1.0, solver="dopri5", steps=4)
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        f2.ode.integrate(f, (torch.ones(1),), 0.0, 1.0, solver="rk4", steps=0)
    with pytest.raises(ValueError, match="unknown divergence 'trace'"):
        f2.ode.log_prob(lambda x, t: x, torch.zeros(2, 2), "rk4", 2, divergence="trace")


@pytest.mark.parametrize("bad,match", [(torch.zeros(4), "at least 2 axes"),
                                       (torch.tensor([[0.0, float("inf")]]), "non-finite"),
                                       (torch.zeros(2, 2, dtype=torch.long), "floating-point")])
def test_ode_entry_points_reject_bad_points(bad, match):
    v = lambda x, t: x
    with pytest.raises((ValueError, TypeError), match=match):
        f2.ode.log_prob(v, bad, "euler", 1)
    with pytest.raises((ValueError, TypeError), match=match):
        f2.ode.sample(v, bad, steps=1)


def test_adaptive_stops_are_the_solution_at_those_times():
    """dy/dt = LAMBDA * y reported at intermediate times from one dopri5 solve: y(t) = exp(LAMBDA t) at each; a
    fixed-step solver refuses stops."""
    y0 = (torch.ones(1, dtype=torch.float64),)
    stops = [0.25, 0.5, 0.75]
    sol = f2.ode.integrate(lambda t, y: (LAMBDA * y[0],), y0, 0.0, 1.0, solver="dopri5", rtol=1e-9, atol=1e-9,
                           stops=stops)
    assert [s[0].item() for s in sol.stops] == pytest.approx([math.exp(LAMBDA * t) for t in stops], rel=1e-7)
    assert sol.state[0].item() == pytest.approx(math.exp(LAMBDA), rel=1e-7)
    with pytest.raises(ValueError, match="stops"):
        f2.ode.integrate(lambda t, y: (y[0],), y0, 0.0, 1.0, solver="rk4", steps=4, stops=stops)
