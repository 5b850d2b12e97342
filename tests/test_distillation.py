"""distillation: each rule's CPU defaults, the phased loss's refusal of a batch too small to split, and a short F2D2
run on the closed-form Gaussian-mixture teacher."""

import dataclasses
import math

import pytest
from helpers import GMM

import f2d2mini as f2


def test_each_rule_has_its_own_cpu_defaults():
    assert f2.train.distill_config("lsd") == dataclasses.replace(f2.train.DistillConfig(), adaptive_power=0.5)
    shortcut = f2.train.distill_config("shortcut", lr=1e-4)
    assert shortcut.steps == f2.distillation.RULE_CHANGES["shortcut"]["steps"] and shortcut.lr == 1e-4
    meanflow = f2.train.distill_config("meanflow")
    assert meanflow.lr == 2e-3 and meanflow.adaptive_power == 0.5 and meanflow.device == "cpu"
    assert all(f2.train.distill_config(rule).coverage_fraction > 0 for rule in f2.losses.RULES)
    assert set(f2.distillation.RULE_CHANGES) == set(f2.losses.RULES)
    with pytest.raises(ValueError, match="'euler'.*shortcut"):
        f2.train.distill_config("euler")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown rule 'euler'; choose one of: shortcut, meanflow, lsd"):
        f2.train.distill(GMM.velocity, GMM, rule="euler")
    with pytest.raises(ValueError, match="batch_size 2 with diagonal_fraction 0.25 leaves 0 tangent and 2"):
        f2.distillation.distill_loss(GMM.velocity, None, "lsd", f2.train.DistillConfig(batch_size=2, div_scale=1.0))
    with pytest.raises(ValueError, match="leaves 4 tangent and 0 off-diagonal"):
        config = f2.train.DistillConfig(batch_size=4, diagonal_fraction=1.0, div_scale=1.0)
        f2.distillation.distill_loss(GMM.velocity, None, "lsd", config)


def test_short_distillation_from_the_exact_gmm_velocity():
    """A short F2D2 run on the closed-form teacher gives K = 4 likelihoods near the exact density."""
    config = f2.train.DistillConfig(steps=500, warm_steps=100, batch_size=256, lr=2e-3, warmup=20, log_every=50,
                                    progress=False,
                                    net=f2.nets.MLPConfig(width=64, depth=3, time_frequencies=6))
    model = f2.train.distill(GMM.velocity, GMM, "lsd", config, seed=0)
    x = GMM.sample(1000, seed=4)
    err = (model.log_prob(x, steps=4) - GMM.log_prob(x)).abs().mean().item()
    base_err = (f2.base.log_prob(x) - GMM.log_prob(x)).abs().mean().item()  # an untrained identity map
    assert err < 1.0 and err < base_err / 3, (err, base_err)  # loose: 500 steps of a fresh 64-wide map
    assert math.isfinite(model.history.loss[-1])
