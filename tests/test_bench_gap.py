"""bench.gap: the image table of the gap's terms, checked on the closed-form Gaussian path, on made-up gaps, and
through the command line on the shipped digits models."""

import json

import pytest
import torch
from helpers import run

from f2d2mini.bench import gap as bench_gap
from f2d2mini.flowmap import ODEFlowMap
from f2d2mini.gaussian_path import GaussianPathVelocity
from f2d2mini.images import likelihood

BPD_TOL = 1e-3  # the exact map's RK4 jumps and dopri5 at rtol = atol = 1e-5: ~1e-4 nats over d = 16 (as in
# tests/test_images_likelihood.py)


def test_the_exact_map_of_the_gaussian_path_has_no_gap_on_images():
    """The Gaussian path's exact flow map (RK4 jumps) against its own velocity's ODE: every term near zero, and the
    teacher's bits per dim those of :func:`f2d2mini.images.likelihood.ode_bpd`."""
    velocity, levels = GaussianPathVelocity(0.7), 17
    images = torch.randint(0, levels, (6, 1, 4, 4), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    teacher_bpd, per_k = bench_gap.split_images(velocity, ODEFlowMap(velocity, "rk4", 16), images, levels,
                                                ks=(1, 2), divergence="exact")
    expected = likelihood.ode_bpd(velocity, images, levels=levels, divergence="exact").per_image
    assert torch.allclose(teacher_bpd, expected, atol=1e-9)
    for cols in per_k.values():
        for name in ("gap", "end", "divergence"):
            assert cols[name].abs().max() < BPD_TOL, name
        assert torch.allclose(cols["gap"], cols["end"] + cols["divergence"])


def test_split_images_names_images_that_are_not_grey_levels():
    velocity = GaussianPathVelocity(0.7)
    with pytest.raises(TypeError, match="uint8 tensor"):
        bench_gap.split_images(velocity, ODEFlowMap(velocity), torch.rand(2, 1, 4, 4), 17, divergence="exact")


def test_rows_of_made_up_gaps():
    """Gap i on the image with teacher bpd i: the hardest tenth of 20 images is the last two."""
    teacher_bpd = torch.arange(20, dtype=torch.float64)
    g = torch.linspace(-1, 1, 20, dtype=torch.float64)
    per_k = {4: {"gap": g, "end": g / 4, "divergence": 3 * g / 4, "landing": torch.ones(20)}}
    row = bench_gap.gap_rows(teacher_bpd, per_k)[0]
    assert row["K"] == 4 and abs(row["gap"]) < 1e-12 and row["gap q50"] == 0.0
    assert row["hardest tenth"] == g[18:].mean().item() and row["the rest"] == g[:18].mean().item()
    blocks = bench_gap.block_rows(teacher_bpd, per_k, block=8)
    assert [b["images"] for b in blocks] == ["0-7", "8-15", "16-19"]
    assert blocks[2]["gap K=4"] == g[16:].mean().item() and blocks[2]["teacher bpd"] == 17.5


def test_bench_gap_runs_on_the_shipped_digits_models(capsys, tmp_path, monkeypatch):
    """The command's wiring, with a cheap teacher solve (RK4, 4 steps) in place of the digits' dopri5 reference
    (minutes for a few images: the exact divergence costs 64 passes per evaluation)."""
    monkeypatch.setitem(bench_gap.REFERENCES, "digits", dict(solver="rk4", steps=4, divergence="exact"))
    out = tmp_path / "gap.json"
    code, text = run(capsys, "bench", "gap", "--data", "digits", "--n", "3", "--device", "cpu", "--json", str(out))
    assert code == 0, text
    report = json.loads(out.read_text())
    assert report["n"] == 3 and report["reference"]["solver"] == "rk4"
    assert [r["K"] for r in report["rows"]] == [1, 2, 4, 8]
    for row in report["rows"]:
        assert abs(row["gap"] - row["end"] - row["divergence"]) < 1e-9
    assert "hardest tenth" in text
