"""bench.images: the GPU check's --tiny mode on the CPU, on the real MNIST test files, and its exit when MNIST is
not where it was pointed."""

from helpers import run

from f2d2mini.images import data


def test_gpu_check_tiny_runs_on_the_cpu(real_mnist, capsys, tmp_path):
    code, text = run(capsys, "bench", "gpu", "--tiny", "--device", "cpu", "--json", str(tmp_path / "gpu.json"))
    assert code == 0 and "F2D2 K = 8" in text and "CIFAR-10 config" in text and (tmp_path / "gpu.json").is_file()
    code, text = run(capsys, "bench", "gpu", "--mnist", str(tmp_path / "nowhere"), "--device", "cpu")
    assert code == 2 and str(tmp_path / "nowhere") in text and data.MNIST_ENV in text
