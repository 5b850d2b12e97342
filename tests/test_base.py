"""base: the base distribution N(0, sigma0^2 I) and which sigma0 a model owns. Every model's saved config holds its
base; the likelihoods (ODE, flow map, image bits per dim) and distillation use it; a mismatch is an error naming both
values. The tests stay together here, the one owner of sigma0, though some enter through another module."""

import pytest
import torch

import f2d2mini as f2

MLP = f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2)


def test_a_teacher_saves_its_base_and_the_likelihood_uses_it(tmp_path):
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2, sigma0=0.5))
    f2.save(teacher, tmp_path / "t.pt")
    loaded = f2.load(tmp_path / "t.pt")
    assert loaded.config.sigma0 == 0.5
    x = torch.randn(5, 2)
    by_ode = f2.ode.likelihood(loaded, x, "euler", 2)
    torch.testing.assert_close(by_ode.log_prob, f2.base.log_prob(by_ode.x0, 0.5) + by_ode.delta)
    with pytest.raises(ValueError, match=r"sigma0 1.0 was asked for, but the velocity was trained with base sigma0 0.5"
                       ):
        f2.ode.likelihood(loaded, x, "euler", 2, sigma0=1.0)


def test_a_map_takes_its_teachers_base_and_a_mismatch_is_named():
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2, sigma0=2.0))
    model = f2.flowmap.JointFlowMap.from_teacher(teacher)
    assert model.config.sigma0 == 2.0 and f2.base.same_sigma0(teacher, model) == 2.0
    other = f2.flowmap.JointFlowMap(f2.flowmap.FlowMapConfig(**{**vars(MLP), "sigma0": 1.0}))
    with pytest.raises(ValueError, match="the teacher's base sigma0 is 2.0 but the flow map's is 1.0"):
        f2.base.same_sigma0(teacher, other)
    with pytest.raises(ValueError, match=r"sigma0 3 was asked for, but the flow map was trained with base sigma0 2.0"):
        f2.flowmap.log_prob(model, torch.zeros(2, 2), 1, sigma0=3)


def test_a_fresh_map_needs_the_teachers_base():
    mix = f2.toy.GaussianMixture([[1.0, 0.0], [-1.0, 0.0]], [[[0.1, 0.0], [0.0, 0.1]]] * 2, [1, 1], sigma0=0.8)
    config = f2.train.DistillConfig(steps=2, warm_steps=1, batch_size=8, coverage_fraction=0.0, progress=False,
                                    net=MLP)
    with pytest.raises(ValueError, match=r"teacher's base sigma0 is 0.8 but config.net.sigma0 is 1.0"):
        f2.train.distill(mix.velocity, mix, "lsd", config)
    config = f2.train.DistillConfig(steps=2, warm_steps=1, batch_size=8, coverage_fraction=0.0, progress=False,
                                    net=f2.nets.MLPConfig(**{**vars(MLP), "sigma0": 0.8}))
    assert f2.train.distill(mix.velocity, mix, "lsd", config).config.sigma0 == 0.8


def test_the_image_bits_per_dim_refuse_a_teacher_and_map_on_different_bases():
    net = f2.images.UNetConfig(widths=(4, 8), embed_dim=8, time_frequencies=2, groups=4)
    teacher = f2.images.UNetVelocity(net)
    model = f2.images.UNetFlowMap.from_teacher(f2.images.UNetVelocity(f2.images.UNetConfig(**{**vars(net),
                                                                                              "sigma0": 0.5})), 64.0)
    images = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="the teacher's base sigma0 is 1.0 but the flow map's is 0.5"):
        f2.images.bpd_table(teacher, model, images, 17, (1,), solver="euler", steps=1)
