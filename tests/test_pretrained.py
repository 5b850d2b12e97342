"""pretrained: load-or-train of the shipped checkpoints (in the repository's data/checkpoints/) and the fast-mode
switch."""

import shutil
from pathlib import Path

import pytest
import torch

import f2d2mini as f2


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv(f2.pretrained.FAST_ENV, "1")
    assert f2.pretrained.fast_mode()
    monkeypatch.setenv(f2.pretrained.FAST_ENV, "0")
    assert not f2.pretrained.fast_mode()
    monkeypatch.delenv(f2.pretrained.FAST_ENV)
    assert not f2.pretrained.fast_mode()


def test_shipped_files_load_without_training():
    assert f2.pretrained.SHIPPED_DIR == Path(__file__).resolve().parents[1] / "data" / "checkpoints"
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
    assert model.metadata["train_config"]["coverage_points"] == f2.pretrained.FAST_COVERAGE_POINTS
    assert not f2.checkpoint.flow_map_path("gaussians8", "shortcut", tmp_path).exists()  # fast runs are not saved


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="density"):
        f2.pretrained.teacher("moon", tmp_path)
    with pytest.raises(ValueError, match="rule"):
        f2.pretrained.flow_map("gaussians8", "euler", tmp_path)
