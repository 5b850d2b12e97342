"""Load-or-train of the shipped checkpoints, the fast-mode switch, and the shared plots."""

import shutil

import matplotlib
import pytest
import torch

import f2d2mini as f2

matplotlib.use("Agg")


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv(f2.pretrained.FAST_ENV, "1")
    assert f2.pretrained.fast_mode()
    monkeypatch.setenv(f2.pretrained.FAST_ENV, "0")
    assert not f2.pretrained.fast_mode()
    monkeypatch.delenv(f2.pretrained.FAST_ENV)
    assert not f2.pretrained.fast_mode()


def test_paths_follow_the_cli_names(tmp_path):
    assert f2.checkpoint.teacher_path("rings", tmp_path) == tmp_path / "teacher_rings.pt"
    assert f2.checkpoint.flow_map_path("rings", "meanflow", tmp_path) == tmp_path / "f2d2_meanflow_rings.pt"
    assert f2.checkpoint.teacher_path("digits") == f2.checkpoint.DEFAULT_DIR / "teacher_digits.pt"
    assert f2.pretrained.SHIPPED_DIR == f2.pretrained.SHIPPED_DIR.parents[1] / f2.checkpoint.DEFAULT_DIR


def test_shipped_files_load_without_training():
    teacher = f2.pretrained.teacher("gaussians8")
    model = f2.pretrained.flow_map("gaussians8", "lsd")
    assert isinstance(teacher, f2.nets.VelocityMLP) and not teacher.training
    assert isinstance(model, f2.flowmap.JointFlowMap) and not model.training
    assert model.metadata["rule"] == "lsd"


def test_missing_flow_map_is_distilled_in_fast_mode(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv(f2.pretrained.FAST_ENV, "1")
    monkeypatch.setattr(f2.pretrained, "FAST_STEPS", 6)
    shutil.copy(f2.checkpoint.teacher_path("gaussians8", f2.pretrained.SHIPPED_DIR), tmp_path)
    model = f2.pretrained.flow_map("gaussians8", "shortcut", tmp_path)
    assert isinstance(model, f2.flowmap.JointFlowMap)
    assert model.history.step[-1] == 6  # the tiny budget, not the default config
    assert model.metadata["train_config"]["warm_steps"] == 6 // 3 and model.metadata["rule"] == "shortcut"
    assert not f2.checkpoint.flow_map_path("gaussians8", "shortcut", tmp_path).exists()  # fast runs are not saved


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="density"):
        f2.pretrained.teacher("moon", tmp_path)
    with pytest.raises(ValueError, match="rule"):
        f2.pretrained.flow_map("gaussians8", "euler", tmp_path)


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
