"""plots.versus: the estimate against the truth on the same axes, with the identity line over both ranges."""

import matplotlib
import numpy as np
import torch

import f2d2mini as f2

matplotlib.use("Agg")


def test_versus_draws_points_and_identity_line():
    import matplotlib.pyplot as plt

    truth, estimate = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([-1.0, 1.5, 3.0])
    fig, ax = plt.subplots()
    assert f2.plots.versus(ax, truth, estimate, label="x") is ax
    np.testing.assert_allclose(ax.collections[0].get_offsets(), np.stack([truth, estimate], 1))
    (line,) = ax.lines
    np.testing.assert_allclose(line.get_xdata(), [-1.0, 3.0])  # min and max over truth and estimate
    np.testing.assert_allclose(line.get_ydata(), line.get_xdata())  # estimate = truth
    plt.close(fig)
