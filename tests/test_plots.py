"""plots: the point grid, density images, the estimate against the truth, and sliders (precomputed frames behind a
range input that works without a kernel)."""

import base64
import re

import matplotlib
import numpy as np
import pytest
import torch

import f2d2mini as f2

matplotlib.use("Agg")


def test_grid_is_row_major_with_y_up_the_rows():
    points = f2.plots.grid(limit=1.0, size=3)
    assert torch.equal(points[:3, 1], torch.full((3,), -1.0))  # first row: bottom edge
    assert torch.equal(points[:3, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.equal(points[-1], torch.tensor([1.0, 1.0]))


def test_density_image_takes_a_function_or_grid_values():
    dens = f2.toy.density("gaussians8")
    fig, axes = f2.plots.small_multiples(2)
    f2.plots.density_image(axes[0], dens.log_prob, size=20)
    f2.plots.density_image(axes[1], dens.log_prob(f2.plots.grid(size=20)), size=20)
    first, second = (ax.get_images()[0].get_array() for ax in axes)
    assert len(axes) == 2 and (first == second).all()
    assert first.max() == pytest.approx(dens.log_prob(f2.plots.grid(size=20)).exp().max().item(), rel=1e-6)


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


def draw_line(ax, slope):
    ax.plot([0, 1], [0, slope])
    ax.set_ylim(-3, 3)


def test_one_frame_per_value_each_different():
    player = f2.plots.slider(draw_line, [-2, 0, 2], label="slope", start=0)
    assert len(player.frames) == 3 and len(set(player.frames)) == 3
    assert all(frame.startswith(b"\x89PNG") for frame in player.frames)
    assert player.labels == ("slope = -2", "slope = 0", "slope = 2") and player.start == 1


def test_html_shows_the_start_frame_and_hides_the_others():
    player = f2.plots.slider(draw_line, [1, 2, 3], label="K", start=2)
    html = player._repr_html_()
    assert '<input type="range" min="0" max="2" step="1" value="1"' in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"[^>]*style="([^"]*)"', html)
    assert [base64.b64decode(src) for src, _ in images] == list(player.frames)
    assert ["display:none" in style for _, style in images] == [True, False, True]
    assert "<output>K = 2</output>" in html and "oninput=" in html and "<script" not in html


def test_panels_labels_and_jpeg():
    seen = []

    def draw(axes, value):
        seen.append(len(axes))
        for ax in axes:
            ax.imshow([[value, 0], [0, 1]])

    player = f2.plots.slider(draw, [0.2, 0.8], labels=["low", "high"], panels=2, figsize=(4, 2),
                             format="jpeg")
    assert seen == [2, 2] and player.labels == ("low", "high")
    assert all(frame.startswith(b"\xff\xd8") for frame in player.frames)  # JPEG
    assert "data:image/jpeg;base64," in player._repr_html_()
    assert repr(player) == "Slider(2 frames: low, high)"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="at least one value"):
        f2.plots.slider(draw_line, [])
    with pytest.raises(ValueError, match="format"):
        f2.plots.slider(draw_line, [1], format="gif")
    with pytest.raises(ValueError, match="2 labels for 1 values"):
        f2.plots.slider(draw_line, [1], labels=["a", "b"])


def test_figures_are_closed():
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    f2.plots.slider(draw_line, [1, 2])
    assert len(plt.get_fignums()) == before
