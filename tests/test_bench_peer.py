"""bench.peer: f2d2mini's dopri5 likelihood agrees with facebookresearch/flow_matching's
``ODESolver.compute_likelihood`` on the same teacher (the issue's bound: 1e-3 nats on average; measured 3e-4 on
2,000 points in benchmarks/README.md), and a missing extra is named."""

import builtins

import pytest
import torch

import f2d2mini as f2
from f2d2mini.bench import peer

PEER_BOUND = 1e-3  # mean |difference| of two dopri5 solves at rtol = atol = 1e-5 (each is within ~3e-4 of the other)


def test_the_ode_likelihood_matches_flow_matching():
    pytest.importorskip("flow_matching.solver", reason="flow_matching (the peers extra) is not installed")
    torch.manual_seed(0)
    teacher = f2.pretrained.teacher("gaussians8")
    x = f2.toy.density("gaussians8").sample(64, seed=3)
    ours = f2.ode.log_prob(teacher, x, "dopri5")
    theirs = peer.peer_log_prob(teacher, x)
    assert theirs.shape == ours.shape == (64,)
    assert (ours - theirs).abs().mean() < PEER_BOUND
    # both are the teacher's density, not the data's: the teacher misses the exact one by far more than they differ
    exact = f2.toy.density("gaussians8").log_prob(x)
    assert (ours - exact).abs().mean() > 10 * (ours - theirs).abs().mean()


def test_a_missing_peer_is_named(monkeypatch):
    real_import = builtins.__import__

    def no_flow_matching(name, *args, **kwargs):
        if name.startswith("flow_matching"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flow_matching)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'f2d2mini\[peers\]'"):
        peer.peer_log_prob(torch.nn.Linear(2, 2), torch.zeros(3, 2))
