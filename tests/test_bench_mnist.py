"""bench.mnist: ``f2d2mini bench mnist --quick`` on the real MNIST test files, and benchmarks/mnist_cpu.py as that
command."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import run

from f2d2mini.bench import images as bench_images


def test_mnist_cpu_benchmark_quick(real_mnist, capsys, tmp_path):
    """``f2d2mini bench mnist --quick`` (= python benchmarks/mnist_cpu.py --quick): the full benchmark's code path at
    tiny budgets, on the real MNIST test files."""
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
