"""bench.ood: the inputs that are not digits, made from the digits' test split."""

import torch

import f2d2mini
from f2d2mini.bench import ood


def test_the_inputs_that_are_not_digits():
    test = f2d2mini.images.load("digits", split="test")
    inputs = ood.ood_inputs(test, 5)
    digits = test.images[:5]
    assert set(inputs) >= {"uniform noise", "constant grey", "inverted digits"}
    assert all(x.shape == digits.shape and x.dtype == torch.uint8 for x in inputs.values())
    assert torch.equal(inputs["inverted digits"].int(), 16 - digits.int())
    shifted = inputs[f"digits shifted {ood.SHIFT} px"]
    assert (shifted[..., :ood.SHIFT] == 0).all() and torch.equal(shifted[..., ood.SHIFT:], digits[..., :-ood.SHIFT])
