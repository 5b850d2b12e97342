"""images.train: the image recipes (the U-Net teacher and its F2D2 map) end to end on the digits, and ``compile``
skipped where torch.compile does not reach."""

import math
from dataclasses import replace

import pytest
import torch
from helpers import TINY_NET, tiny_teacher_config, total_derivative

import f2d2mini as f2
from f2d2mini.images import data, likelihood, unet
from f2d2mini.images import train as images_train

torch.set_num_threads(1)


def test_digits_pipeline_end_to_end():
    """Teacher, F2D2 (shortcut, then the JVP rule lsd) and the bpd table, with tiny budgets."""
    train_data, test = data.load("digits"), data.load("digits", split="test")
    teacher = images_train.teacher(train_data, replace(tiny_teacher_config(), steps=40, log_every=10, lr=5e-3))
    assert teacher.history.loss[-1] < teacher.history.loss[0]
    distill = images_train.ImageDistillConfig(steps=6, warm_steps=3, batch_size=8, warmup=1, log_every=3,
                                              progress=False)
    for rule in ("shortcut", "lsd"):
        model = images_train.distill(teacher, train_data, rule, distill)
        assert {f"{rule}/D", "tangent/D"} <= set(model.history.metrics)
    # no coverage: trusted where its own data's backward jumps land (a band calibrated on 256 of them)
    z = likelihood.dequantized(train_data.images[:64], train_data.levels, 5, "cpu")
    assert model.region is None and f2.flowmap.trusted(model, z, 4).float().mean() > 0.9
    assert f2.consistency.consistent(model, z).float().mean() > 0.9  # and where its 4- and 8-jump landings agree
    rows = likelihood.bpd_table(teacher, model, test.images[:8], test.levels, (1, 4), solver="euler", steps=4)
    assert [r.nfe for r in rows] == [4, 1, 4]
    assert all(math.isfinite(r.bpd) for r in rows) and rows[0].gap == 0.0
    assert rows[2].gap == pytest.approx(rows[2].bpd - rows[0].bpd)
    x, log_p = model.sample_and_log_prob(3, 2, seed=0)
    assert x.shape == (3, 1, 8, 8) and log_p.shape == (3,)
    with pytest.raises(ValueError, match=r"digits images have shape \(1, 8, 8\) but the network expects"):
        images_train.teacher(train_data, images_train.recipe("mnist").teacher)
    closed_form = f2.gaussian_path.GaussianPathVelocity(1.0)
    fresh = images_train.distill(closed_form, train_data, "shortcut", distill)  # any teacher: a fresh U-Net
    assert isinstance(fresh, unet.UNetFlowMap) and fresh.config.widths == unet.UNetConfig().widths
    with pytest.raises(ValueError, match="unknown dataset"):
        images_train.recipe("svhn")


def test_compile_is_skipped_with_a_warning_for_the_jvp_rules():
    """torch.func.jvp of a compiled module runs it eagerly, so MeanFlow and LSD train uncompiled, and say so."""
    torch.manual_seed(0)
    teacher = unet.UNetVelocity(TINY_NET)
    config = images_train.ImageDistillConfig(steps=1, warm_steps=0, batch_size=8, warmup=1, progress=False,
                                             compile=True)
    with pytest.warns(UserWarning, match="compile=True with rule 'lsd'.*training uncompiled"):
        model = images_train.distill(teacher, data.load("digits"), "lsd", config)
    assert model.metadata["train_config"]["compile"] is False
def test_torch_compile_does_not_reach_through_jvp():
    """Why ``--compile`` is skipped for MeanFlow and LSD: torch.func.jvp of a compiled module runs it eagerly (the
    compiled graph is not called), while a plain call does run it."""
    from torch.func import jvp

    runs = []

    def backend(graph, example_inputs):
        return lambda *args: runs.append(1) or graph(*args)

    net = torch.compile(torch.nn.Linear(3, 3), backend=backend)
    x = torch.randn(2, 3)
    net(x)
    assert len(runs) == 1
    jvp(net, (x,), (torch.ones_like(x),))
    assert len(runs) == 1  # if this ever fails, torch.compile reaches through jvp: let the JVP rules compile



def test_meanflow_jvp_through_the_unet_is_a_finite_difference():
    """The MeanFlow rule's total derivative d/dt = d_t + v . grad_x by forward-mode AD through the U-Net (GroupNorm,
    avg_pool2d, nearest interpolation, the divergence head), against a central difference in float64; then a few
    MeanFlow steps on the digits train with both terms."""
    from f2d2mini import losses

    torch.manual_seed(0)
    config = unet.UNetFlowMapConfig(**vars(TINY_NET), div_hidden=16)
    model = unet.UNetFlowMap(config).double()
    g = torch.Generator().manual_seed(1)
    x, v = (torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64) for _ in range(2))
    t, s = torch.rand(4, generator=g, dtype=torch.float64), torch.rand(4, generator=g, dtype=torch.float64)
    pred = losses.eulerian_prediction(model, v, x, t, s)
    now, du, dd = total_derivative(model, v, x, t, s, h=1e-6)
    torch.testing.assert_close(pred.u, now.u - (s - t)[:, None, None, None] * du, atol=1e-6, rtol=0)
    torch.testing.assert_close(pred.D, now.D - (s - t) * dd, atol=1e-6, rtol=0)
    teacher = images_train.teacher(data.load("digits"), replace(tiny_teacher_config(), steps=4))
    distill = images_train.ImageDistillConfig(steps=4, warm_steps=2, batch_size=8, warmup=1, log_every=2,
                                              progress=False)
    mapped = images_train.distill(teacher, data.load("digits"), "meanflow", distill)
    assert {"meanflow/u", "meanflow/D"} <= set(mapped.history.metrics)
    assert all(math.isfinite(loss) for loss in mapped.history.loss)


def test_a_rule_other_than_the_recipes_gets_its_changes():
    digits = images_train.recipe("digits")
    assert images_train.distill_config("digits", digits.rule) == digits.distill
    meanflow = images_train.distill_config("digits", "meanflow")
    assert meanflow == replace(digits.distill, **images_train.RULE_CHANGES["digits"]["meanflow"])
    assert meanflow.adaptive_power > 0 and meanflow.steps > digits.distill.steps
    assert images_train.distill_config("mnist", "lsd") == images_train.recipe("mnist").distill
    with pytest.raises(ValueError, match="rule"):
        images_train.distill_config("digits", "euler")
