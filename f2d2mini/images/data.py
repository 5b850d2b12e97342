"""Image data: loaders, scaling to [-1, 1] with uniform dequantization, and training batches (book chapter 7).

Images are kept as integer grey levels k in {0, ..., L - 1}, a uint8 tensor ``[N, C, H, W]``. The model sees

    y = (k + U) / L,  U ~ U(0, 1)^d,      z = 2 y - 1 in [-1, 1]^d,

so a density on z gives a lower bound on the probability of the discrete image (see :mod:`.likelihood`).

Datasets: scikit-learn's bundled 8x8 ``digits`` (grey levels 0..16, L = 17, no download: the CPU dataset),
``mnist`` and ``cifar10`` (L = 256). MNIST and CIFAR-10 are read from their original files under ``root``
(``root/MNIST/raw/*-idx3-ubyte[.gz]``, ``root/cifar-10-batches-py/*``: torchvision's layout); when missing,
torchvision downloads them there first.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from f2d2mini import base, checks

__all__ = ["Images", "DATASETS", "SPLITS", "LEVELS", "SHAPES", "EVAL_BATCH", "eval_batch", "load", "read_idx",
           "read_cifar_batch", "dequantize", "quantize", "batches", "mnist_files", "mnist_root", "IdxFiles",
           "MNIST_ENV", "SHARED_MNIST"]

DATASETS = ("digits", "mnist", "cifar10")
SPLITS = ("train", "test")
LEVELS = {"digits": 17, "mnist": 256, "cifar10": 256}  # grey levels L per dataset
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # (C, H, W) per dataset
# Images per chunk when a whole split is evaluated (bits per dim, classifier features), per dataset: the divergence's
# reverse pass keeps every activation of the chunk, and on a CPU a chunk of several hundred MNIST images makes every
# evaluation dearer per image than one of a hundred (f2d2mini bench chunk-cost), so larger images get smaller chunks.
EVAL_BATCH = {"digits": 1000, "mnist": 100, "cifar10": 100}
EVAL_BATCH_OTHER = 500  # images of any other shape
DIGITS_TEST = 297  # the last 297 of scikit-learn's 1797 digits are the test split (the first 1500 train)
MNIST_PREFIX = {"train": "train", "test": "t10k"}
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR_FOLDER = "cifar-10-batches-py"
MNIST_ENV = "F2D2MINI_MNIST"  # a folder holding MNIST's files (see mnist_root)
SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"  # beside the repository
IDX_DTYPE = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}  # idx type codes


class Images(NamedTuple):
    """A dataset split: ``images`` uint8 ``[N, C, H, W]`` with values in 0..levels-1, ``labels`` int64 ``[N]``,
    ``levels`` L (number of grey levels per channel) and the dataset ``name``."""

    images: torch.Tensor
    labels: torch.Tensor
    levels: int
    name: str


def load(name: str, root: str | Path = "data", split: str = "train", download: bool = True) -> Images:
    """Loads a split of ``digits``, ``mnist`` or ``cifar10`` as uint8 images ``[N, C, H, W]``.

    Args:
        name: one of :data:`DATASETS`.
        root: folder holding (or receiving) the MNIST / CIFAR-10 files in torchvision's layout (MNIST's may also
            lie in ``root`` itself, as :func:`mnist_root` finds them); unused for digits.
        split: ``"train"`` or ``"test"``.
        download: let torchvision fetch missing MNIST / CIFAR-10 files into ``root``.

    Raises:
        FileNotFoundError: the files are missing and could not be downloaded; the message names the folder and
            the files to place there by hand.
    """
    checks.choice(name, DATASETS, "dataset")
    checks.choice(split, SPLITS, "split")
    if name == "digits":
        return _digits(split)
    root = Path(root)
    if name == "mnist":
        files = mnist_files(root, split)
        if files is None:
            _download(name, root, download)
            files = mnist_files(root, split)
        images, labels = read_idx(files[0]), read_idx(files[1])
        return Images(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)),
                      LEVELS[name], name)
    folder = root / CIFAR_FOLDER
    if not all((folder / f).is_file() for f in CIFAR_FILES[split]):
        _download(name, root, download)
    parts = [read_cifar_batch(folder / f) for f in CIFAR_FILES[split]]
    return Images(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]), LEVELS[name], name)


def eval_batch(images: torch.Tensor) -> int:
    """Images per evaluation chunk for ``images`` ``[N, C, H, W]``: :data:`EVAL_BATCH` of the dataset of that shape."""
    names = [name for name, shape in SHAPES.items() if tuple(images.shape[1:]) == shape]
    return EVAL_BATCH[names[0]] if names else EVAL_BATCH_OTHER


def _digits(split: str) -> Images:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.uint8))[:, None]  # [1797, 1, 8, 8], values 0..16
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    cut = len(images) - DIGITS_TEST
    part = slice(0, cut) if split == "train" else slice(cut, None)
    return Images(images[part].contiguous(), labels[part].contiguous(), LEVELS["digits"], "digits")


class IdxFiles(NamedTuple):
    """The ``images`` and ``labels`` idx files of an MNIST split."""

    images: Path
    labels: Path


def mnist_files(root: str | Path, split: str) -> IdxFiles | None:
    """The (images, labels) idx files of an MNIST split (plain or .gz) under ``root/MNIST/raw`` (torchvision's
    layout) or directly in ``root`` (the files as downloaded), or ``None``."""
    for folder in (Path(root) / "MNIST" / "raw", Path(root)):
        found = []
        for kind in ("images-idx3", "labels-idx1"):
            stem = folder / f"{MNIST_PREFIX[split]}-{kind}-ubyte"
            found.append(next((p for p in (stem, stem.with_name(stem.name + ".gz")) if p.is_file()), None))
        if None not in found:
            return IdxFiles(*found)
    return None


def mnist_root(explicit: str | Path | None = None) -> Path:
    """Where MNIST's files are looked for when no ``root`` is given: ``explicit`` (a flag) if given, else
    ``$F2D2MINI_MNIST`` if set, else ``shared/data/mnist`` beside the repository (which holds the test split). A
    choice that was made is never silently replaced; the folder must hold the test split."""
    folder = Path(explicit) if explicit else Path(os.environ[MNIST_ENV]) if os.environ.get(MNIST_ENV) else SHARED_MNIST
    if mnist_files(folder, "test") is None:
        how = "the flag" if explicit else (f"${MNIST_ENV}" if os.environ.get(MNIST_ENV) else "the default")
        raise FileNotFoundError(f"MNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz not found in "
                                f"{folder} (chosen by {how}); pass --mnist DIR or set {MNIST_ENV} to a folder holding "
                                f"them")
    return folder


def read_idx(path: str | Path) -> np.ndarray:
    """Reads an idx file (MNIST's format, optionally gzipped): magic 0 0 type ndim, big-endian sizes, data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPE:
        raise ValueError(f"{path} is not an idx file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=IDX_DTYPE[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {data.size} values")
    return data.reshape(shape)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10's batch dicts, allowing only the numpy classes they are made of (no arbitrary code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("_codecs", "encode")}  # how protocol-2 pickles written by Python 3 store bytes (a pure function)

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR-10 batch files hold only numpy arrays, found {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> Images:
    """One CIFAR-10 python batch file: a pickled dict with ``data`` uint8 ``[n, 3072]`` (channel-major 32x32)
    and ``labels``. Returns its images uint8 ``[n, 3, 32, 32]`` and labels int64 ``[n]``."""
    with open(path, "rb") as fh:
        batch = _CifarUnpickler(fh, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: expected data of shape [n, 3072], got {data.shape}")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return Images(images, torch.tensor(batch[b"labels"], dtype=torch.int64), LEVELS["cifar10"], "cifar10")


def _download(name: str, root: Path, download: bool) -> None:
    manual = (f"place {', '.join(f'{MNIST_PREFIX[s]}-{{images-idx3,labels-idx1}}-ubyte.gz' for s in SPLITS)} "
              f"in {root / 'MNIST' / 'raw'}" if name == "mnist" else
              f"unpack cifar-10-python.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into {root} so that "
              f"{root / CIFAR_FOLDER}/data_batch_1 exists")
    if not download:
        raise FileNotFoundError(f"{name} files not found under {root} and download=False; {manual}")
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.CIFAR10
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as err:  # urllib, http and checksum errors, depending on what failed
        raise FileNotFoundError(f"could not download {name} into {root} ({type(err).__name__}: {err}); "
                                f"without network, {manual}") from err


def dequantize(k: torch.Tensor, levels: int, generator: torch.Generator | None = None,
               noise: torch.Tensor | None = None) -> torch.Tensor:
    """Integer images ``[B, C, H, W]`` -> z = 2 (k + U) / L - 1 in [-1, 1], U ~ U(0, 1) (or the given ``noise``)."""
    if noise is None:
        noise = torch.rand(k.shape, generator=generator, device=k.device)
    return 2 * (k.float() + noise) / levels - 1


def quantize(z: torch.Tensor, levels: int) -> torch.Tensor:
    """The inverse of :func:`dequantize`: k = floor((z + 1) L / 2), clipped to 0..L-1, as uint8."""
    return ((z + 1) * levels / 2).floor().clamp(0, levels - 1).to(torch.uint8)


def batches(data: Images, batch_size: int, sigma0: float = 1.0) -> Callable:
    """``draw(generator, step) -> Batch(x0, x1)`` for :func:`f2d2mini.loop.fit` losses: noise x0 ~ N(0, sigma0^2 I)
    and dequantized images x1 ``[B, C, H, W]`` drawn with replacement, both on the generator's device."""
    checks.positive_int(batch_size, "batch_size")
    on_device = {}

    def draw(gen: torch.Generator, step: int) -> base.Batch:
        device = gen.device
        if device not in on_device:  # the whole split lives on the training device, as uint8
            on_device[device] = data.images.to(device)
        images = on_device[device]
        idx = torch.randint(len(images), (batch_size,), generator=gen, device=device)
        x1 = dequantize(images[idx], data.levels, gen)
        return base.Batch(sigma0 * torch.randn(x1.shape, generator=gen, device=device), x1)

    return draw
