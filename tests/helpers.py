"""What several test files share: the closed-form 2-D flow, a tiny U-Net, and the command-line capture.

Test files import these by name (``from helpers import TINY_NET``) and never from one another. They are not in
tests/conftest.py: the repository root has a conftest.py too (it runs the book's notebooks), pytest imports both as
the one module ``conftest``, and ``from conftest import ...`` gets whichever it loaded last."""

import torch

import f2d2mini as f2
from f2d2mini import cli
from f2d2mini.flowmap import ODEFlowMap
from f2d2mini.images import train as images_train
from f2d2mini.images import unet

# ---------------------------------------------------------------------------------------------- 2-D: exact flows

GMM = f2.toy.density("gaussians8")
EXACT = ODEFlowMap(GMM.velocity, "rk4", 64)  # 4th order: errors below 1e-5 here (1e-3 with 16 steps)
COARSE = ODEFlowMap(GMM.velocity, "rk4", 16)  # where 1e-3 does not matter


def points(n=32, seed=0):
    """n points spread over the mixture's support, with times t and s in [0, 1], in float64."""
    g = torch.Generator().manual_seed(seed)
    x = 2.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    t, s = torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)
    return x, t, s



def total_derivative(model, v, x, t, s, h):
    """d/dt of a map's output (u, D)(x + tau v, t + tau, s) at tau = 0, by central differences of step h (error
    O(h^2)): the output at (x, t, s), du/dt and dD/dt."""
    with torch.no_grad():
        ahead, behind, now = model(x + h * v, t + h, s), model(x - h * v, t - h, s), model(x, t, s)
    return now, (ahead.u - behind.u) / (2 * h), (ahead.D - behind.D) / (2 * h)


# ---------------------------------------------------------------------------------------------- images

TINY_NET = unet.UNetConfig(widths=(8, 16), embed_dim=16, time_frequencies=4, groups=4)


def tiny_teacher_config(**kw):
    """The image teacher's training config at a dozen steps of the tiny U-Net."""
    return images_train.ImageTeacherConfig(steps=12, batch_size=8, warmup=2, log_every=5, progress=False,
                                           net=TINY_NET, **kw)


# ---------------------------------------------------------------------------------------------- command line


def run(capsys, *argv):
    """``f2d2mini *argv`` in this process: the exit code and everything it printed."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out + out.err


def tiny_teacher(capsys, path):
    """``f2d2mini teacher`` for gaussians8 at 20 steps, saved at path."""
    code, text = run(capsys, "teacher", "--density", "gaussians8", "--steps", "20", "--batch-size", "64",
                     "--device", "cpu", "--out", str(path))
    assert code == 0 and path.is_file() and "saved" in text
