"""cli: bad inputs exit with status 2 and name the choices; tiny round trips (teacher then eval; teacher, distill,
eval and the f2d2 bench on the map the distill command wrote)."""

import json

import pytest
import torch
from helpers import run, tiny_teacher

import f2d2mini as f2


def test_unknown_density_lists_the_choices(capsys):
    code, text = run(capsys, "teacher", "--density", "nope")
    assert code == 2 and "invalid choice: 'nope'" in text and "checkerboard" in text and "pinwheel" in text


def test_unknown_solver_lists_the_choices(capsys, tmp_path):
    code, text = run(capsys, "eval", str(tmp_path / "m.pt"), "--solver", "rk5")
    assert code == 2 and "invalid choice: 'rk5'" in text and "dopri5" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu_exits_2(capsys, tmp_path):
    code, text = run(capsys, "teacher", "--density", "moons", "--steps", "1", "--device", "cuda",
                     "--out", str(tmp_path / "m.pt"))
    assert code == 2 and "no CUDA GPU" in text and "cpu" in text


def test_missing_checkpoint_exits_2(capsys, tmp_path):
    code, text = run(capsys, "eval", str(tmp_path / "none.pt"))
    assert code == 2 and "no checkpoint at" in text


def test_train_then_eval(capsys, tmp_path):
    path = tmp_path / "t.pt"
    tiny_teacher(capsys, path)
    code, text = run(capsys, "eval", str(path), "--n", "200", "--solver", "rk4", "--steps", "4")
    assert code == 0
    assert "NFE 16" in text and "exact entropy" in text and "gap" in text
    code, text = run(capsys, "eval", str(path), "--n", "200", "--solver", "euler")
    assert code == 2 and "pass steps" in text


def test_distill_eval_and_bench_f2d2(capsys, tmp_path):
    ckpts = tmp_path / "ckpts"
    tiny_teacher(capsys, ckpts / "teacher_gaussians8.pt")
    code, text = run(capsys, "distill", "--density", "gaussians8", "--rule", "shortcut", "--steps", "20",
                     "--warm-steps", "5", "--batch-size", "32", "--device", "cpu", "--coverage-fraction", "0",
                     "--teacher", str(ckpts / "teacher_gaussians8.pt"),
                     "--out", str(ckpts / "f2d2_shortcut_gaussians8.pt"))
    assert code == 0 and "saved" in text
    saved = f2.load(ckpts / "f2d2_shortcut_gaussians8.pt").metadata["train_config"]
    rule_defaults = f2.train.distill_config("shortcut")  # flags not given keep the rule's defaults
    assert (saved["steps"], saved["warm_steps"], saved["lr"]) == (20, 5, rule_defaults.lr)
    assert saved["adaptive_power"] == rule_defaults.adaptive_power and saved["coverage_fraction"] == 0  # (no bank
    # of 5,000 teacher trajectories before step one: minutes)
    code, text = run(capsys, "eval", str(ckpts / "f2d2_shortcut_gaussians8.pt"), "--n", "100", "--steps", "2")
    assert code == 0 and "flow map, 2 jumps" in text and "NFE 2" in text
    out = tmp_path / "f2d2.json"
    code, text = run(capsys, "bench", "f2d2", "--densities", "gaussians8", "--rules", "shortcut", "--checkpoints",
                     str(ckpts), "--n", "100", "--grid-size", "41", "--json", str(out), "--device", "cpu")
    assert code == 0 and "speedup" in text and out.is_file()
    grid = json.loads(out.read_text())["grid"]
    assert [row["steps"] for row in grid] == list(f2.flowmap.EVAL_STEPS) and "overshoot" in text
    assert abs(grid[0]["exact_integral"] - 1) < 0.01  # gaussians8 on the grid: its mass lies inside [-6, 6]^2
