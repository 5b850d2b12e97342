"""``f2d2mini images ...``: a tiny digits round trip (teacher, resume, distill, bpd, sample) and clear exits on bad
input; and the GPU check's --tiny mode on the CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_cli import run  # the same capture of exit code and output as the 2-D command tests

import f2d2mini
from f2d2mini.bench import images as bench_images
from f2d2mini.images import cli as images_cli
from f2d2mini.images import data

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
                     str(teacher), "--out", str(fmap))
    assert code == 0 and fmap.is_file()
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


def test_the_inputs_that_are_not_digits():
    from f2d2mini.bench import ood

    test = f2d2mini.images.load("digits", split="test")
    inputs = ood.ood_inputs(test, 5)
    digits = test.images[:5]
    assert set(inputs) >= {"uniform noise", "constant grey", "inverted digits"}
    assert all(x.shape == digits.shape and x.dtype == torch.uint8 for x in inputs.values())
    assert torch.equal(inputs["inverted digits"].int(), 16 - digits.int())
    shifted = inputs[f"digits shifted {ood.SHIFT} px"]
    assert (shifted[..., :ood.SHIFT] == 0).all() and torch.equal(shifted[..., ood.SHIFT:], digits[..., :-ood.SHIFT])


def test_bad_inputs_exit_2(capsys, tmp_path):
    code, text = run(capsys, "images", "teacher", "--data", "svhn")
    assert code == 2 and "invalid choice: 'svhn'" in text and "cifar10" in text
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--out", str(tmp_path / "t.pt"),
                     "--resume")
    assert code == 2 and "cannot resume: no training state at" in text
    code, text = run(capsys, "images", "teacher", "--data", "digits", *TINY, "--rule", "lsd")
    assert code == 2 and "unrecognized arguments: --rule" in text


def test_gpu_check_tiny_runs_on_the_cpu(capsys, tmp_path):
    try:
        data.mnist_root()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    code, text = run(capsys, "bench", "gpu", "--tiny", "--device", "cpu", "--json", str(tmp_path / "gpu.json"))
    assert code == 0 and "F2D2 K = 8" in text and "CIFAR-10 config" in text and (tmp_path / "gpu.json").is_file()
    code, text = run(capsys, "bench", "gpu", "--mnist", str(tmp_path / "nowhere"), "--device", "cpu")
    assert code == 2 and str(tmp_path / "nowhere") in text and data.MNIST_ENV in text


def test_mnist_is_looked_for_in_the_flag_else_the_environment_else_beside_the_repository(tmp_path, monkeypatch):
    for name in ("flag", "env"):
        (tmp_path / name).mkdir()
        for kind in ("images-idx3", "labels-idx1"):
            (tmp_path / name / f"t10k-{kind}-ubyte.gz").touch()
    monkeypatch.setenv(data.MNIST_ENV, str(tmp_path / "env"))
    assert data.mnist_root(tmp_path / "flag") == tmp_path / "flag"
    assert data.mnist_root() == tmp_path / "env"
    monkeypatch.setenv(data.MNIST_ENV, str(tmp_path / "nowhere"))
    chosen = f"not found in {tmp_path / 'nowhere'} \\(chosen by \\$F2D2MINI_MNIST\\)"
    with pytest.raises(FileNotFoundError, match=chosen):
        data.mnist_root()
    assert data.SHARED_MNIST == Path(f2d2mini.__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def test_mnist_cpu_benchmark_quick(capsys, tmp_path):
    """``f2d2mini bench mnist --quick`` (= python benchmarks/mnist_cpu.py --quick): the full benchmark's code path at
    tiny budgets, on the real MNIST test files."""
    try:
        data.mnist_root()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    report_path = tmp_path / "mnist.json"
    code, text = run(capsys, "bench", "mnist", "--quick", "--out", str(tmp_path / "ck"), "--json", str(report_path),
                     "--device", "cpu")
    assert code == 0 and "teacher ODE dopri5 (Hutchinson, 2 x 1 probes)" in text and "|gap| at K = 4" in text
    report = json.loads(report_path.read_text())
    methods = [row["method"] for row in report["rows"]]
    assert methods[1:5] == [f"F2D2 K = {k}" for k in (1, 2, 4, 8)] and methods[-1].endswith("(first-order reversal)")
    assert report["n_train"] == bench_images.N_TRAIN and report["rows"][0]["stderr"] > 0
    assert report_path.with_suffix(".png").stat().st_size > 0 and (tmp_path / "ck" / "teacher_mnist.pt").is_file()


def test_mnist_cpu_script_is_the_bench_command():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_cpu.py"
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--quick" in done.stdout and "--train-split" in done.stdout
