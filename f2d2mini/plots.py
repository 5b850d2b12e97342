"""Plots the book draws in several chapters: densities on a grid, samples, small multiples, and sliders.

matplotlib is imported inside the functions, so ``import f2d2mini`` stays light. Every function draws on a given
``ax`` and returns it; the caller owns the figure. :func:`slider` is the exception: it draws its own frames and
returns a player that works in JupyterLab and in the built book, with no kernel and no network.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["PLOT_LIMIT", "GRID_SIZE", "grid", "density_image", "field_image", "samples", "small_multiples", "versus",
           "slider", "Slider"]

PLOT_LIMIT = 4.5  # half-width of the square every 2-D picture shows: the toy densities live in [-4.2, 4.2]^2
GRID_SIZE = 200  # grid points per side for density images


def grid(limit: float = PLOT_LIMIT, size: int = GRID_SIZE) -> torch.Tensor:
    """The ``[size * size, 2]`` points of a square grid over [-limit, limit]^2, row-major with y up the rows."""
    axis = torch.linspace(-limit, limit, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


def density_image(ax, log_prob: Callable[[torch.Tensor], torch.Tensor] | torch.Tensor, *, limit: float = PLOT_LIMIT,
                  size: int = GRID_SIZE, title: str | None = None, vmax: float | None = None, cmap: str = "magma"):
    """Draws p = exp(log_prob) on the grid of :func:`grid`. ``log_prob`` is a function of ``[n, 2]`` points or
    the ``[size * size]`` values already computed on that grid. ``vmax`` fixes the colour scale (e.g. 1/32 for
    the checkerboard) so estimate and truth are comparable."""
    if callable(log_prob):
        with torch.no_grad():
            log_prob = log_prob(grid(limit, size))
    field_image(ax, log_prob.detach().double().exp(), limit=limit, size=size, title=title, vmin=0, vmax=vmax, cmap=cmap)
    return ax


def field_image(ax, values: torch.Tensor, *, limit: float = PLOT_LIMIT, size: int = GRID_SIZE,
                title: str | None = None, vmin: float | None = None, vmax: float | None = None, cmap: str = "magma"):
    """Draws ``[size * size]`` values computed on the grid of :func:`grid` (a log-density, a divergence, an error)
    as an image on the square, with the colour scale [vmin, vmax]; returns the image (for a colour bar)."""
    image = ax.imshow(values.detach().reshape(size, size).cpu().numpy(), origin="lower",
                      extent=(-limit, limit, -limit, limit), cmap=cmap, vmin=vmin, vmax=vmax)
    _square(ax, limit, title)
    return image


def samples(ax, x: torch.Tensor, *, limit: float = PLOT_LIMIT, title: str | None = None, size: float = 1.0,
            color: str = "C0", alpha: float = 0.5):
    """Scatter of 2-D samples ``[n, 2]`` on the standard square."""
    x = x.detach().cpu()
    ax.scatter(x[:, 0], x[:, 1], s=size, color=color, alpha=alpha, linewidths=0)
    _square(ax, limit, title)
    return ax


def small_multiples(n: int, *, width: float = 2.6, height: float | None = None, sharex: bool = True,
                    sharey: bool = True):
    """A one-row figure of ``n`` panels (the static twin of a widget): returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height or width), sharex=sharex, sharey=sharey,
                             squeeze=False, layout="constrained")
    return fig, axes[0]


def _square(ax, limit: float, title: str | None) -> None:
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def versus(ax, truth: torch.Tensor, estimate: torch.Tensor, *, label: str | None = None, size: float = 2.0,
           alpha: float = 0.4):
    """Scatter of an estimate against the truth ``[n]`` on the same axes, with the line estimate = truth."""
    truth, estimate = truth.detach().double().cpu(), estimate.detach().double().cpu()
    ax.scatter(truth, estimate, s=size, alpha=alpha, label=label, linewidths=0)
    lo, hi = min(truth.min(), estimate.min()).item(), max(truth.max(), estimate.max()).item()
    ax.plot([lo, hi], [lo, hi], color="k", lw=1)
    return ax


# The player's one line of JavaScript: show the frame whose index the range input holds, name its value.
_ON_INPUT = ("var p=this.closest('.f2d2mini-slider'),f=p.querySelectorAll('img'),i=+this.value;"
             "for(var k=0;k<f.length;k++)f[k].style.display=k===i?'':'none';"
             "p.querySelector('output').textContent=f[i].dataset.label;")


@dataclass(frozen=True)
class Slider:
    """Precomputed frames behind a range input: plain HTML and one line of JavaScript, no kernel, no network.

    ``frames`` are the encoded images (``format`` is ``"png"`` or ``"jpeg"``), one per value; ``labels`` name them.
    A notebook shows it through ``_repr_html_``: moving the range input shows another frame, in JupyterLab and in
    the book's static pages alike. Made by :func:`slider`.
    """

    frames: tuple[bytes, ...]
    labels: tuple[str, ...]
    start: int = 0
    format: str = "png"
    description: str = ""

    def _repr_html_(self) -> str:
        name = html.escape(self.description or "frame")
        images = "".join(
            f'<img src="data:image/{self.format};base64,{base64.b64encode(frame).decode()}" '
            f'alt="{html.escape(label)}" data-label="{html.escape(label)}" '
            f'style="max-width:100%;height:auto;{"" if k == self.start else "display:none"}">'
            for k, (frame, label) in enumerate(zip(self.frames, self.labels)))
        return (f'<div class="f2d2mini-slider" style="margin:0.5em 0">'
                f'<div style="display:flex;align-items:center;gap:0.8em;font-family:sans-serif;font-size:0.9em">'
                f'<input type="range" min="0" max="{len(self.frames) - 1}" step="1" value="{self.start}" '
                f'aria-label="{name}" style="width:16em" oninput="{html.escape(_ON_INPUT)}">'
                f'<output>{html.escape(self.labels[self.start])}</output></div>'
                f'<div>{images}</div></div>')

    def __repr__(self) -> str:  # the text a notebook shows where it cannot show HTML
        return f"Slider({len(self.frames)} frames: {', '.join(self.labels)})"


def slider(draw: Callable, values: Sequence, *, label: str = "value", labels: Sequence[str] | None = None,
           start=None, panels: int | tuple[int, int] = 1, figsize: tuple[float, float] = (4.0, 4.0),
           dpi: float = 72, format: str = "png") -> Slider:
    """A slider over precomputed frames: ``draw(axes, value)`` draws the frame of each value on fresh axes.

    The interactive twin of a small-multiples figure that needs no kernel: every frame is drawn now, so the built
    book's pages can show it (``interact`` needs a running kernel and shows one frozen frame there).

    Args:
        draw: called once per value on a new figure of ``panels`` axes (one ``Axes`` when ``panels == 1``, else
            the array of :func:`matplotlib.pyplot.subplots`); it draws and returns nothing.
        values: what the slider runs over, in order.
        label: the control's name; frames are labelled ``f"{label} = {value}"`` unless ``labels`` is given.
        labels: one text per value, shown beside the slider.
        start: the value shown first (default: the first).
        panels: the number of axes in a row, or ``(rows, columns)``.
        figsize: size of each frame in inches; with ``dpi`` it sets the page weight of the player.
        dpi: dots per inch of the frames (72 keeps a 10-frame player of small plots under a megabyte).
        format: ``"png"`` for lines and points, ``"jpeg"`` for images (smaller).

    Returns:
        a :class:`Slider`; a notebook cell that ends with it shows the player.
    """
    import matplotlib.pyplot as plt

    values = list(values)
    if not values:
        raise ValueError("slider needs at least one value")
    if format not in ("png", "jpeg"):
        raise ValueError(f"format must be 'png' or 'jpeg', got {format!r}")
    labels = [f"{label} = {v}" for v in values] if labels is None else [str(t) for t in labels]
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values")
    rows, cols = (1, panels) if isinstance(panels, int) else panels
    frames = []
    for value in values:
        fig, axes = plt.subplots(rows, cols, figsize=figsize, layout="constrained")
        try:
            draw(axes, value)
            buffer = io.BytesIO()
            fig.savefig(buffer, format=format, dpi=dpi)
        finally:
            plt.close(fig)
        frames.append(buffer.getvalue())
    return Slider(tuple(frames), tuple(labels), values.index(start) if start is not None else 0, format, label)
