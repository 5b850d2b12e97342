"""The times training draws: skewed times and the single steps of the K-step schedules."""

import torch

import f2d2mini as f2


def test_skewed_times_have_the_closed_form_distribution():
    """P(t <= a) = 1 - (1 - a)^(1 / power) for t = 1 - (1 - U)^power."""
    n, power = 20_000, 2.0
    t = f2.times.skewed(n, power, torch.Generator().manual_seed(0))
    assert 0 <= t.min() and t.max() <= 1
    for a in (0.1, 0.5, 0.9):
        expected = 1 - (1 - a) ** (1 / power)
        assert abs((t <= a).double().mean().item() - expected) < 5 * (expected * (1 - expected) / n) ** 0.5


def test_grid_pairs_are_single_steps_of_the_evaluation_grids():
    t, s = f2.times.step_pairs(4000, f2.flowmap.EVAL_STEPS, torch.Generator().manual_seed(0))
    gap = (s - t).abs()
    steps = torch.round(1 / gap)
    assert set(steps.tolist()) == {1.0, 2.0, 4.0, 8.0}  # every K is drawn, one step of 1/K each
    torch.testing.assert_close(gap * steps, torch.ones_like(gap))
    torch.testing.assert_close(t * steps, torch.round(t * steps))  # t and s on the grid k / K
    torch.testing.assert_close(s * steps, torch.round(s * steps))
    backward = (s < t).double().mean().item()
    assert abs(backward - 0.5) < 5 * 0.5 / 4000**0.5  # both directions, equally often
