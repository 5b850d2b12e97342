"""metrics.log_density_gap: zero in expectation for exact draws, clearly negative for wrong ones."""

import torch

import f2d2mini as f2


def test_exact_draws_have_no_gap():
    torch.set_num_threads(1)
    dens = f2.toy.density("gaussians8")
    gaps = [f2.metrics.log_density_gap(dens, dens.sample(2_000, seed=100 + i), seed=i) for i in range(20)]
    z = torch.tensor([g.gap / g.std_error for g in gaps])
    assert z.abs().max() < 4  # each a standardised difference of two independent means
    assert abs(z.mean()) < 4 / 20**0.5  # and no bias across repeats


def test_wrong_draws_have_a_negative_gap():
    dens = f2.toy.density("gaussians8")
    shifted = dens.sample(2_000, seed=1) + torch.tensor([0.5, 0.0])  # off the modes by more than one std (0.4)
    out = f2.metrics.log_density_gap(dens, shifted, draws=4_000, seed=2)
    assert out.gap < -20 * out.std_error
