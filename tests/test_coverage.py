"""Coverage: the teacher's backward flow of a square, where a coverage batch is drawn, and the warnings of a map
asked for a likelihood outside the region it was trained on."""

import dataclasses
import warnings

import pytest
import torch

import f2d2mini as f2
from f2d2mini import coverage

GMM = f2.toy.density("gaussians8")


def test_the_bank_is_the_teachers_backward_flow_of_a_uniform_square():
    bank = coverage.flow_bank(GMM.velocity, 5.0, (2,), points=500, steps=8, seed=0)
    assert bank.states.shape == (9, 500, 2)
    start = bank.states[0]
    assert start.abs().max() <= 5.0 and start.abs().max() > 4.5  # uniform in the square
    whole = f2.ode.integrate(lambda t, y: (GMM.velocity(y[0], t),), (start,), 1.0, 0.0, solver="rk4", steps=8)
    torch.testing.assert_close(bank.states[-1], whole.state[0])  # the same 8 RK4 steps, one at a time


def test_draw_interpolates_between_the_stored_states():
    states = torch.arange(3 * 2 * 1, dtype=torch.float32).reshape(3, 2, 1)  # 2 steps: t = 1, 0.5, 0
    bank = coverage.FlowBank(states)
    gen = torch.Generator().manual_seed(0)
    t = torch.tensor([1.0, 0.5, 0.0, 0.75, 0.25])
    x = coverage.draw(bank, t, gen)
    j = torch.randint(2, (5,), generator=torch.Generator().manual_seed(0))  # the trajectories drawn
    expected = torch.stack([states[0, j[0]], states[1, j[1]], states[2, j[2]],
                            (states[0, j[3]] + states[1, j[3]]) / 2, (states[1, j[4]] + states[2, j[4]]) / 2])
    torch.testing.assert_close(x, expected)


def test_a_map_warns_once_outside_its_region_and_names_it():
    model = f2.flowmap.JointFlowMap(f2.flowmap.FlowMapConfig(width=8, depth=1, time_frequencies=2))
    model.region = coverage.Region(6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.log_prob(torch.full((4, 2), 5.9), steps=1)  # inside: silent
    with pytest.warns(coverage.OutsideRegionWarning, match=r"1 of 4 points lie outside .*\[-6, 6\]\^d"):
        model.log_prob(torch.tensor([[0.0, 0.0], [1.0, 1.0], [7.0, 0.0], [0.0, 0.0]]), steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.log_prob(torch.full((2, 2), 9.0), steps=1)  # once per model


def test_a_map_without_coverage_says_so_and_an_exact_map_never_warns():
    model = f2.flowmap.JointFlowMap(f2.flowmap.FlowMapConfig(width=8, depth=1, time_frequencies=2))
    with pytest.warns(coverage.OutsideRegionWarning, match="distilled on the data path alone"):
        model.log_prob(torch.zeros(2, 2), steps=1)
    exact = f2.flowmap.ODEFlowMap(GMM.velocity, "rk4", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f2.flowmap.log_prob(exact, torch.full((2, 2), 100.0), 1)


def test_distillation_covers_a_share_of_each_part_and_saves_the_region(tmp_path):
    config = f2.train.DistillConfig(steps=3, warm_steps=1, batch_size=16, coverage_fraction=0.25,
                                    coverage_points=64, coverage_steps=4, progress=False,
                                    net=f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
    positions = f2.distillation._coverage_positions(4, config, "cpu")
    assert positions.tolist() == [3, 13, 14, 15]  # 1 of 4 tangent points, 3 of 12 off-diagonal ones
    model = f2.train.distill(GMM.velocity, GMM, "lsd", config)
    assert model.region == coverage.Region(config.coverage_box)
    f2.save(model, tmp_path / "map.pt")
    assert f2.load(tmp_path / "map.pt").region == model.region
    uncovered = dataclasses.replace(config, coverage_fraction=0.0)
    assert f2.distillation._coverage_positions(4, uncovered, "cpu").numel() == 0
    assert f2.train.distill(GMM.velocity, GMM, "lsd", uncovered).region is None
