"""The map's own consistency: the disagreement of its 4- and 8-jump landings, its calibration on data, the check
that asks for it, and its round trip through a checkpoint."""

import pytest
import torch

import f2d2mini as f2
from f2d2mini import consistency
from f2d2mini.flowmap import FlowMapOutput


class Stretch(torch.nn.Module):
    """u(x, t, s) = c (s - t) x: each jump of length h multiplies x by 1 + c h^2, so K equal jumps from 1 to 0 land
    on x (1 + c / K^2)^K, and the 4- and 8-jump landings differ by x ((1 + c / 64)^8 - (1 + c / 16)^4)."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x, t, s):
        return FlowMapOutput(self.c * (s - t) * x, torch.zeros(len(x)))


def _gap(c: float) -> float:
    return (1 + c / 64) ** 8 - (1 + c / 16) ** 4


def _with_energy(energy: torch.Tensor) -> torch.Tensor:
    """Images [n, 1, 4, 4] with |x|^2 / d equal to ``energy`` [n]."""
    z = torch.randn(len(energy), 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return z * (energy / z.flatten(1).pow(2).mean(1)).sqrt().view(-1, 1, 1, 1)


def test_the_disagreement_is_the_squared_distance_of_the_two_landings_per_dimension():
    """By hand: |x_8 - x_4|^2 / d = gap(c)^2 |x|^2 / d; zero for a map that composes exactly (c = 0: u = 0)."""
    energy = torch.tensor([0.5, 1.0, 2.0])
    x = _with_energy(energy)
    torch.testing.assert_close(consistency.disagreement(Stretch(0.8), x), _gap(0.8) ** 2 * energy)
    assert (consistency.disagreement(Stretch(0.0), x) == 0).all()
    assert consistency.disagreement(Stretch(0.8), torch.zeros(0, 1, 4, 4)).shape == (0,)


def test_a_float32_image_map_takes_float64_points_and_names_a_wrong_shape():
    model = f2.images.unet.UNetFlowMap()  # 8 x 8 digits
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.testing.assert_close(consistency.disagreement(model, x), consistency.disagreement(model, x.float()))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, 1, 8, 8\], got shape \(3, 1, 9, 9\)"):
        consistency.disagreement(model, torch.zeros(3, 1, 9, 9))


def test_the_limit_is_the_datas_largest_disagreement_times_the_factor_and_decides_consistency():
    model = Stretch(0.8)
    data = _with_energy(torch.linspace(0.5, 1.0, 32))  # the largest disagreement: gap^2 * 1.0
    model.consistency = consistency.calibrate(model, data)
    assert model.consistency.limit == pytest.approx(consistency.DISAGREEMENT_FACTOR * _gap(0.8) ** 2, rel=1e-5)
    factor = consistency.DISAGREEMENT_FACTOR
    points = _with_energy(torch.tensor([1.0, 0.99 * factor, 1.01 * factor, 3 * factor]))
    assert consistency.consistent(model, points).tolist() == [True, True, False, False]
    assert str(model.consistency) == f"|x_8 - x_4|^2 / (d sigma0^2) <= {model.consistency.limit:.4f}"
    with pytest.raises(ValueError, match="x1"):
        consistency.calibrate(model, torch.zeros(0, 1, 4, 4))


def test_a_map_without_a_limit_says_so_and_how_to_calibrate_one():
    with pytest.raises(ValueError, match=r"this Stretch carries no calibrated consistency limit \(model.consistency"
                                         r"\).*consistency.calibrate\(model, data points\)"):
        consistency.consistent(Stretch(0.8), torch.zeros(2, 1, 4, 4))
    model = Stretch(0.8)
    model.consistency = consistency.Consistency(0.1)
    with pytest.raises(ValueError, match="x has 32 non-finite entries"):
        consistency.consistent(model, torch.full((2, 1, 4, 4), float("nan")))


def test_the_limit_is_saved_with_an_image_map_and_restored(tmp_path):
    model = f2.images.unet.UNetFlowMap()
    model.consistency = consistency.Consistency(0.0123)
    loaded = f2.load(f2.save(model, tmp_path / "m.pt"))
    assert loaded.consistency == consistency.Consistency(0.0123) and "consistency" not in loaded.metadata
