"""nets: the time embedding and the random Fourier features against their definitions, the MLP's layers, and the
velocity's call contract and checkpoint round trip with its Fourier matrix."""

import math

import pytest
import torch

import f2d2mini as f2
from f2d2mini.nets import MLP, SPACE_FEATURES, FourierFeatures, MLPConfig, TimeEmbedding, VelocityMLP

EPS32 = torch.finfo(torch.float32).eps


@pytest.mark.parametrize(("frequencies", "max_frequency"), [(16, 100.0), (5, 30.0)])
def test_time_embedding_is_t_then_sines_and_cosines_of_log_spaced_frequencies(frequencies, max_frequency):
    """[t, sin(w_k t), cos(w_k t)] with w_k = max^(k / (F - 1)): 1 to max, a constant ratio between neighbours. w is
    float32: exp of a rounded log-spaced grid is within 2 (1 + log max) eps32 of its value, so the phase w t within
    that times w t."""
    embed = TimeEmbedding(frequencies, max_frequency)
    w = max_frequency ** (torch.arange(frequencies, dtype=torch.float64) / (frequencies - 1))
    w_tol = 2 * (1 + math.log(max_frequency)) * EPS32
    torch.testing.assert_close(embed.w.double(), w, rtol=w_tol, atol=0)
    assert embed.w[0].item() == 1.0 and embed.dim == 1 + 2 * frequencies
    assert "w" not in embed.state_dict()  # rebuilt from the config, not saved
    t = torch.tensor([0.0, 0.25, -0.5, 1.0], dtype=torch.float64)
    out = embed(t)
    assert out.shape == (4, embed.dim) and torch.equal(out[:, 0], t)
    phase_tol = w_tol * max_frequency * t.abs().max().item() + 4 * torch.finfo(torch.float64).eps
    torch.testing.assert_close(out[:, 1:1 + frequencies], torch.sin(t[:, None] * w), rtol=0, atol=phase_tol)
    torch.testing.assert_close(out[:, 1 + frequencies:], torch.cos(t[:, None] * w), rtol=0, atol=phase_tol)


def test_fourier_features_are_seeded_gaussian_frequencies_that_scale_linearly():
    one = FourierFeatures(3, 5, 1.0, seed=1)
    torch.testing.assert_close(one.B, torch.randn(3, 5, generator=torch.Generator().manual_seed(1)), rtol=0, atol=0)
    assert torch.equal(FourierFeatures(3, 5, 1.0, seed=1).B, one.B)  # same seed, same matrix
    assert not torch.equal(FourierFeatures(3, 5, 1.0, seed=2).B, one.B)
    assert torch.equal(FourierFeatures(3, 5, 2.5, seed=1).B, 2.5 * one.B)
    assert set(one.state_dict()) == {"B"} and one.dim == 3 + 2 * 5


def test_fourier_features_of_a_scaled_basis_vector_are_sines_and_cosines_of_its_row_of_b():
    """x = a e_i gives x B = a B[i]: the output is [a e_i, sin(a B[i]), cos(a B[i])]."""
    features = FourierFeatures(3, 4, 2.0, seed=0).double()
    a = 0.7
    out = features(a * torch.eye(3, dtype=torch.float64))
    B = features.B.double()
    torch.testing.assert_close(out[:, :3], a * torch.eye(3, dtype=torch.float64), rtol=0, atol=0)
    torch.testing.assert_close(out[:, 3:7], torch.sin(a * B))
    torch.testing.assert_close(out[:, 7:], torch.cos(a * B))
    assert (out[:, 3:7].pow(2) + out[:, 7:].pow(2) - 1).abs().max() < 1e-15


def test_zero_fourier_features_are_the_identity():
    features = FourierFeatures(2, 0, 1.0)
    x = torch.randn(5, 2)
    assert features(x) is x and features.dim == 2


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_mlp_has_depth_hidden_silu_layers_then_a_linear_output(depth):
    net = MLP(7, 2, 16, depth)
    widths = [7] + [16] * depth + [2]
    linears = [(m.in_features, m.out_features) for m in net if isinstance(m, torch.nn.Linear)]
    assert linears == list(zip(widths[:-1], widths[1:]))
    assert sum(isinstance(m, torch.nn.SiLU) for m in net) == depth and isinstance(net[-1], torch.nn.Linear)


def test_the_mlp_computes_what_its_layers_compute_in_turn():
    torch.manual_seed(0)
    net, h = MLP(5, 3, 8, 2), torch.randn(4, 5)
    expected = h
    for layer in net:  # through each module's __call__, as nn.Sequential would
        expected = layer(expected)
    assert torch.equal(net(h), expected)


def test_the_velocitys_first_layer_takes_x_its_fourier_features_and_the_time_embedding():
    model = VelocityMLP(MLPConfig(dim=3, width=8, depth=1, time_frequencies=4, space_features=SPACE_FEATURES))
    assert model.net[0].in_features == 3 + 2 * SPACE_FEATURES + 1 + 2 * 4 and model.net[-1].out_features == 3


def test_a_float_time_is_a_batch_of_that_time():
    torch.manual_seed(0)
    model = VelocityMLP(MLPConfig(dim=3, width=16, depth=2, time_frequencies=3, space_features=4))
    x = torch.randn(6, 3)
    out = model(x, 0.3)
    assert out.shape == (6, 3)
    assert torch.equal(out, model(x, torch.full((6,), 0.3))) and torch.equal(out, model(x, torch.tensor(0.3)))
    per_point = model(x, torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]))  # each row its own time
    assert torch.equal(per_point[2], model(x, 0.4)[2]) and not torch.equal(per_point[0], out[0])


def test_a_saved_velocity_with_fourier_features_reloads_bit_for_bit(tmp_path):
    """B is a saved buffer: a matrix that its seed would not rebuild comes back from the file."""
    torch.manual_seed(0)
    config = MLPConfig(dim=3, width=16, depth=2, time_frequencies=3, max_frequency=30.0, space_features=8,
                       space_scale=2.0, sigma0=0.5)
    model = VelocityMLP(config)
    with torch.no_grad():
        model.features.B.copy_(FourierFeatures(3, 8, 2.0, seed=5).B)  # not seed 0's
    loaded = f2.load(f2.checkpoint.save(model, tmp_path / "v.pt"))
    assert loaded.config == config and torch.equal(loaded.features.B, model.features.B)
    x, t = torch.randn(10, 3), torch.rand(10)
    assert torch.equal(loaded(x, t), model(x, t))
