"""images.data: the loaders (real MNIST files, fake CIFAR-10 files, the digits), where MNIST is looked for,
dequantization, and evaluation chunks sized per dataset."""

import gzip
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import f2d2mini
from f2d2mini.images import data

torch.set_num_threads(1)
MNIST_DIR = data.SHARED_MNIST  # the real MNIST test split beside the repository


def test_digits_has_17_levels_and_fixed_splits():
    train, test = data.load("digits", split="train"), data.load("digits", split="test")
    assert train.images.shape == (1500, 1, 8, 8) and test.images.shape == (297, 1, 8, 8)
    assert train.images.dtype == torch.uint8 and train.levels == 17
    assert train.images.max().item() == 16 and train.images.min().item() == 0
    assert set(test.labels.tolist()) == set(range(10))


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"real MNIST test files not found in {MNIST_DIR}")
def test_mnist_loader_reads_the_real_test_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(MNIST_DIR / name, raw / name)
    test = data.load("mnist", tmp_path, split="test", download=False)
    assert test.images.shape == (10_000, 1, 28, 28) and test.images.dtype == torch.uint8 and test.levels == 256
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first MNIST test labels
    assert torch.bincount(test.labels).tolist()[:2] == [980, 1135]  # zeros and ones in the test split
    assert test.images.max().item() == 255 and test.images[:, :, 0, :].max().item() == 0  # blank top rows
    with pytest.raises(FileNotFoundError, match=r"download=False.*train-\{images-idx3"):
        data.load("mnist", tmp_path, split="train", download=False)


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


def test_idx_reader_round_trip_and_bad_magic(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(bytes([0, 0, 0x08, 3]) + np.array([2, 3, 4], dtype=">u4").tobytes() + array.tobytes())
    assert np.array_equal(data.read_idx(path), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        data.read_idx(tmp_path / "bad")


def _write_cifar(folder: Path, name: str, n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    batch = {b"batch_label": name.encode(), b"labels": list(range(n)), b"data": rows,
             b"filenames": [f"{i}.png".encode() for i in range(n)]}
    with open(folder / name, "wb") as fh:
        pickle.dump(batch, fh, protocol=2)  # the original files are Python 2 pickles of such dicts
    return rows


def test_cifar_loader_reads_the_real_format(tmp_path):
    folder = tmp_path / data.CIFAR_FOLDER
    folder.mkdir()
    rows = _write_cifar(folder, "test_batch", 5, 0)
    for i in range(1, 6):
        _write_cifar(folder, f"data_batch_{i}", 3, i)
    test = data.load("cifar10", tmp_path, split="test", download=False)
    assert test.images.shape == (5, 3, 32, 32) and test.levels == 256
    i, c, y, x = 3, 2, 17, 5  # each row holds the red, green and blue planes, each row-major 32 x 32
    assert test.images[i, c, y, x].item() == rows[i, c * 1024 + y * 32 + x]
    assert data.load("cifar10", tmp_path, split="train", download=False).images.shape == (15, 3, 32, 32)


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil()}, fh, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        data.read_cifar_batch(tmp_path / "test_batch")


def test_download_failure_names_the_folder_and_the_manual_route(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(FileNotFoundError, match=f"could not download cifar10 into {tmp_path}.*without network"):
        data.load("cifar10", tmp_path, split="test")


def test_bad_dataset_and_split_name_the_choices():
    with pytest.raises(ValueError, match="unknown dataset 'svhn'.*digits, mnist, cifar10"):
        data.load("svhn")
    with pytest.raises(ValueError, match="unknown split 'val'.*train, test"):
        data.load("digits", split="val")


def test_dequantize_and_quantize_are_inverse():
    k = torch.randint(0, 17, (50, 1, 8, 8), dtype=torch.uint8)
    z = data.dequantize(k, 17, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() < 1
    assert torch.equal(data.quantize(z, 17), k)


def test_evaluation_chunks_are_sized_per_dataset():
    """The divergence's reverse pass holds the activations of a whole chunk: CIFAR-10 gets no more than the others."""
    sizes = {name: data.eval_batch(torch.zeros(0, *shape)) for name, shape in data.SHAPES.items()}
    assert sizes == data.EVAL_BATCH and sizes["cifar10"] == min(sizes.values())
    assert data.eval_batch(torch.zeros(0, 1, 4, 4)) == data.EVAL_BATCH_OTHER
