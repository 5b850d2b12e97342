"""Adapters: models trained elsewhere in f2d2mini's call v(x, t), and the check that names what is wrong."""

import copy

import pytest
import torch
from torch import nn

import f2d2mini as f2
from f2d2mini import adapters

GMM = f2.toy.GaussianMixture([[1.5, 0.0], [-1.5, 0.5]], [[[0.2, 0.0], [0.0, 0.3]]] * 2, [1.0, 2.0])


def path_batch(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return f2.base.Batch(torch.randn(n, 2, generator=g), GMM.sample(n, generator=g))


def test_reverse_time_flips_a_backwards_model_exactly():
    """A model trained with t = 0 data, t = 1 noise has w(x, tau) = -v(x, 1 - tau); reverse_time undoes it."""
    backwards = lambda x, tau: -GMM.velocity(x, 1 - tau)  # noqa: E731
    x, t = torch.randn(50, 2, dtype=torch.float64), torch.rand(50, dtype=torch.float64)
    torch.testing.assert_close(adapters.reverse_time(backwards)(x, t), GMM.velocity(x, t), rtol=0, atol=1e-12)
    with pytest.raises(adapters.TeacherError, match=r"other time direction .*adapters.reverse_time"):
        adapters.check_velocity(adapters.velocity(backwards), path_batch())
    check = adapters.check_velocity(adapters.reverse_time(backwards), path_batch())
    assert check.loss < check.zero_loss < check.reversed_loss  # L(v) = L(0) - E|v|^2 for the marginal velocity


def test_flow_matching_model_wrapper():
    fm = pytest.importorskip("flow_matching.utils", reason="flow_matching (the peers extra) is not installed")

    class Net(nn.Module):  # the keyword call of flow_matching's examples
        def forward(self, x, t):
            return GMM.velocity(x, t.reshape(-1).expand(len(x)))

    wrapped = adapters.flow_matching(fm.ModelWrapper(Net()), sigma0=1.0)
    x, t = torch.randn(20, 2), torch.rand(20)
    torch.testing.assert_close(wrapped(x, t), GMM.velocity(x, t))
    torch.testing.assert_close(wrapped(x, 0.3), GMM.velocity(x, torch.full((20,), 0.3)))
    assert f2.base.sigma0_of(wrapped) == 1.0
    with pytest.raises(adapters.TeacherError, match=r"wrap it as f2d2mini.adapters.flow_matching\(teacher\)"):
        adapters.check_velocity(lambda *, x, t: Net()(x, t), path_batch())


def test_concat_time_is_the_torchcfm_call_and_is_suggested():
    class CatNet(nn.Module):  # torchcfm's MLP: one input [x, t]
        def forward(self, xt):
            return GMM.velocity(xt[:, :-1], xt[:, -1])

    x, t = torch.randn(10, 2), torch.rand(10)
    torch.testing.assert_close(adapters.concat_time(CatNet())(x, t), GMM.velocity(x, t))
    with pytest.raises(adapters.TeacherError, match=r"concat_time\(teacher\)"):
        adapters.check_velocity(CatNet(), path_batch())


@pytest.mark.parametrize(("bad", "message"), [
    (lambda x, t: x[:, :1], r"must return a velocity of x's shape \(768, 2\), got \(768, 1\)"),
    (lambda x, t: x * float(t), r"teacher\(x, t\) with x of shape \(768, 2\) and t of shape \(768,\) failed .*"
                                r"v\(x, t\) with t a \[B\] tensor"),
    (lambda x, t: x / 0 * 0, "non-finite values"),
    (lambda x, t: (x > 0).long(), "returned dtype torch.int64"),
])
def test_a_bad_teacher_is_named(bad, message):
    with pytest.raises(adapters.TeacherError, match=message):
        adapters.check_velocity(bad, path_batch())


def test_a_teacher_that_fits_neither_direction_is_warned_about():
    """An untrained net or data scaled otherwise: worse than v = 0 both ways; training may go on, with a warning."""
    with pytest.warns(adapters.TeacherWarning, match="does not carry the base .* scaled as the teacher was trained"):
        check = adapters.check_velocity(lambda x, t: 5 * x, path_batch())
    assert check.loss > check.zero_loss and check.reversed_loss > check.zero_loss


def test_a_wrapper_travels_with_its_model():
    """Copies and .to() carry the wrapped module (training uses a frozen copy on its device)."""
    net = nn.Linear(3, 2)
    wrapped = adapters.concat_time(net)
    clone = copy.deepcopy(wrapped).requires_grad_(False)
    assert clone.model is not net and clone.model.weight.requires_grad is False and net.weight.requires_grad
    x, t = torch.randn(4, 2), torch.rand(4)
    torch.testing.assert_close(clone(x, t), wrapped(x, t))
