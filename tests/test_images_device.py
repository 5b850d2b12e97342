"""What a first GPU run of the image path would hit, checked on the CPU: tensors made on the images' device (the
``meta`` device stands in for CUDA), evaluation in true float32 with a capped and reported NFE, evaluation chunks
sized per dataset, and ``--compile`` only where torch.compile reaches."""

import pytest
import torch
from test_images import TINY_NET, GaussianVelocity

from f2d2mini import flowmap, ode
from f2d2mini.images import data, likelihood, quality, unet
from f2d2mini.images import train as images_train

torch.set_num_threads(1)
IMAGES = torch.randint(0, 17, (6, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_dequantization_noise_is_made_on_the_images_device():
    """On the meta device a tensor made on the CPU and combined with the images raises, as CUDA would."""
    k = IMAGES.to("meta")
    assert likelihood.dequantized(k, 17, 0, "meta").device.type == "meta"
    assert quality._centred(k, 17).device.type == "meta"
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


def test_evaluation_chunks_are_sized_per_dataset():
    """The divergence's reverse pass holds the activations of a whole chunk: CIFAR-10 gets the smallest."""
    sizes = {name: data.eval_batch(torch.zeros(0, *shape)) for name, shape in data.SHAPES.items()}
    assert sizes == data.EVAL_BATCH and sizes["cifar10"] < sizes["mnist"]
    assert data.eval_batch(torch.zeros(0, 1, 4, 4)) == data.EVAL_BATCH_OTHER


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


def test_compile_is_skipped_with_a_warning_for_the_jvp_rules():
    torch.manual_seed(0)
    teacher = unet.UNetVelocity(TINY_NET)
    config = images_train.ImageDistillConfig(steps=1, warm_steps=0, batch_size=8, warmup=1, progress=False,
                                             compile=True)
    with pytest.warns(UserWarning, match="compile=True with rule 'lsd'.*training uncompiled"):
        model = images_train.distill(teacher, data.load("digits"), "lsd", config)
    assert model.metadata["train_config"]["compile"] is False
