"""images.likelihood: bits per dim by the teacher's ODE and by a map's K jumps against a Gaussian with a closed-form
velocity, evaluated in true float32 with a capped and reported NFE, with noise made on the images' device (the
``meta`` device stands in for CUDA)."""

import math

import pytest
import torch

import f2d2mini as f2
from f2d2mini import flowmap, ode
from f2d2mini.images import data, likelihood

torch.set_num_threads(1)
GaussianVelocity = f2.gaussian_path.GaussianPathVelocity  # the closed form the bits per dim are checked on
IMAGES = torch.randint(0, 17, (6, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_uniform_density_on_the_cube_gives_log2_levels_bits():
    """p_Z uniform on [-1, 1]^d has log p = -d ln 2, so the bound is exactly log2 L bits per dim."""
    d = 64
    assert likelihood.bits_per_dim(torch.tensor([-d * math.log(2)]), d, 17).item() == pytest.approx(math.log2(17))


def _analytic_bpd(images, levels, c):
    z = likelihood.dequantized(images, levels, likelihood.DEQUANT_SEED, "cpu").double()
    return likelihood.bits_per_dim(GaussianVelocity(c).log_prob(z), z[0].numel(), levels)


ODE_BPD_TOL = 1e-3  # dopri5 at rtol = atol = 1e-5 on ~30 nats over d = 16: ~1e-4 nats, far below this


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_ode_bpd_matches_the_analytic_gaussian(divergence):
    """For a linear field J = a(t) I, so a Rademacher probe gives eps^T J eps = a(t) d exactly: both agree."""
    c, levels = 0.5, 17
    images = torch.randint(0, levels, (6, 1, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    res = likelihood.ode_bpd(GaussianVelocity(c), images.to(torch.uint8), levels=levels, divergence=divergence)
    expected = _analytic_bpd(images, levels, c)
    assert torch.allclose(res.per_image, expected, atol=ODE_BPD_TOL)
    assert res.bpd == pytest.approx(expected.mean().item(), abs=ODE_BPD_TOL)


def test_flow_map_bpd_matches_the_analytic_gaussian():
    """The exact flow map of the Gaussian path (ODEFlowMap) gives the analytic bpd at every K."""
    c, levels = 0.7, 17
    images = torch.randint(0, levels, (4, 1, 4, 4), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    model = flowmap.ODEFlowMap(GaussianVelocity(c), solver="rk4", steps=16)
    expected = _analytic_bpd(images, levels, c)
    for k in (1, 2):
        assert torch.allclose(likelihood.bpd(model, images, k, levels=levels).per_image, expected, atol=ODE_BPD_TOL)
    split = data.Images(images, torch.zeros(4).long(), levels, "gauss")  # a split brings its own levels
    assert torch.allclose(likelihood.bpd(model, split, 1).per_image, expected, atol=ODE_BPD_TOL)


def test_bpd_rejects_bad_images():
    model = flowmap.ODEFlowMap(GaussianVelocity(1.0))
    with pytest.raises(TypeError, match="uint8 tensor"):
        likelihood.bpd(model, torch.zeros(2, 1, 4, 4), levels=17)
    with pytest.raises(ValueError, match="grey level 20 but levels = 17"):
        likelihood.bpd(model, torch.full((2, 1, 4, 4), 20, dtype=torch.uint8), levels=17)


def test_dequantization_noise_is_made_on_the_images_device():
    """On the meta device a tensor made on the CPU and combined with the images raises, as CUDA would."""
    assert likelihood.dequantized(IMAGES.to("meta"), 17, 0, "meta").device.type == "meta"
    same = likelihood.dequantized(IMAGES, 17, 0, "cpu")  # U is drawn on the CPU: the same on every device
    assert torch.equal(same, data.dequantize(IMAGES, 17, noise=torch.rand(IMAGES.shape,
                                                                          generator=torch.Generator().manual_seed(0))))


class RecordsPrecision(GaussianVelocity):
    """The Gaussian velocity, noting whether TF32 was allowed at each call."""

    def __init__(self, c):
        super().__init__(c)
        self.seen = set()

    def forward(self, x, t):
        self.seen.add((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return super().forward(x, t)


def test_bits_per_dim_are_evaluated_in_true_float32():
    """cuDNN allows TF32 convolutions by default; the ODE and the flow map's jumps run with it off, and the
    settings come back afterwards."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    velocity = RecordsPrecision(0.5)
    likelihood.ode_bpd(velocity, IMAGES, levels=17, solver="euler", steps=2)
    likelihood.bpd(flowmap.ODEFlowMap(velocity, solver="euler", steps=2), IMAGES, 1, levels=17)
    assert velocity.seen == {(False, False)}
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
    with pytest.raises(RuntimeError), likelihood.true_float32():
        raise RuntimeError("an error inside")
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_adaptive_solves_are_capped_and_report_their_nfe():
    res = likelihood.ode_bpd(GaussianVelocity(0.5), IMAGES, levels=17, batch_size=2)  # dopri5, three chunks
    assert 6 <= res.nfe < ode.MAX_NFE  # dopri5 evaluates at least 6 times per step
    with pytest.raises(ode.NFELimitError, match=r"dopri5 needed more than max_nfe=5 evaluations at rtol=1e-05"):
        likelihood.ode_bpd(GaussianVelocity(0.5), IMAGES, levels=17, max_nfe=5)
    assert ode.integrate(lambda t, y: (y[0],), (torch.ones(2),), 0.0, 1.0, solver="euler", steps=9,
                         max_nfe=5).nfe == 9  # the cap is for adaptive solvers only
