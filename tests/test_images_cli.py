"""``f2d2mini images ...``: a tiny digits round trip (teacher, resume, distill, bpd, sample, and the ood bench on the
maps it made) and clear exits on bad input."""

import torch
from helpers import run

import f2d2mini as f2
from f2d2mini.images import cli as images_cli

TINY = ("--steps", "6", "--batch-size", "8", "--device", "cpu")


def test_digits_round_trip(capsys, tmp_path):
    teacher, fmap = tmp_path / "teacher_digits.pt", tmp_path / "f2d2_digits.pt"
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--checkpoint-every", "3",
                     "--out", str(teacher))
    assert code == 0 and teacher.is_file() and "saved" in text
    state = images_cli.state_path(teacher)
    assert state.name == "teacher_digits.state.pt" and torch.load(state, weights_only=True)["step"] == 6
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--out", str(teacher), "--resume")
    assert code == 0 and "saved" in text  # resumed at the last step: nothing left to train
    code, text = run(capsys, "images", "distill", "--data", "digits", *TINY, "--warm-steps", "2", "--teacher",
                     str(teacher), "--coverage-fraction", "0", "--out", str(fmap))  # the recipe's coverage: 2,000
    assert code == 0 and fmap.is_file()  # U-Net solves before the first step, minutes on a CPU (chapter 7 runs it)
    assert f2.load(fmap).metadata["train_config"]["coverage_fraction"] == 0
    code, text = run(capsys, "images", "bpd", str(fmap), "--teacher", str(teacher), "--n", "8", "--solver", "euler",
                     "--ode-steps", "2", "--ks", "1", "2", "--device", "cpu")
    assert code == 0 and "teacher ODE euler-2" in text and "F2D2 K = 2" in text
    png = tmp_path / "grid.png"
    code, text = run(capsys, "images", "sample", str(fmap), "--n", "4", "--steps", "2", "--out", str(png),
                     "--device", "cpu")
    assert code == 0 and png.stat().st_size > 0 and "2 jumps" in text
    code, text = run(capsys, "images", "bpd", str(teacher), "--device", "cpu")
    assert code == 2 and "holds a UNetVelocity; expected a UNetFlowMap" in text
    report = tmp_path / "ood.json"
    code, text = run(capsys, "bench", "ood", "--maps", str(fmap), "--teacher", str(teacher), "--n", "2", "--solver",
                     "euler", "--ode-steps", "2", "--device", "cpu", "--json", str(report))
    assert code == 0 and "uniform noise" in text and "gap K=8" in text and report.is_file()
    assert "inconsistent" in text  # a map distilled on the data path carries a consistency limit


def test_bad_inputs_exit_2(capsys, tmp_path):
    code, text = run(capsys, "images", "teacher", "--data", "svhn")
    assert code == 2 and "invalid choice: 'svhn'" in text and "cifar10" in text
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--out", str(tmp_path / "t.pt"),
                     "--resume")
    assert code == 2 and "cannot resume: no training state at" in text
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--rule", "lsd")
    assert code == 2 and "unrecognized arguments: --rule" in text
