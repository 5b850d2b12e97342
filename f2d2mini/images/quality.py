"""Sample quality of images: mosaics of samples, a Fréchet distance in the features of a small classifier trained here
(no download), and FID through torch-fidelity where its Inception weights can be fetched (book chapter 7).

Fréchet distance between Gaussians fitted to two feature sets (means mu, covariances S):

    FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}).

FID is this distance in the features of an Inception-v3 network; here the classifier is a small CNN trained on
the same dataset in seconds, so the number is comparable only within a dataset and this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F

from f2d2mini import loop, losses
from f2d2mini.images import data as images_data
from f2d2mini.images.train import ImageLoopConfig

__all__ = ["ClassifierConfig", "Classifier", "train_classifier", "accuracy", "features", "frechet_distance",
           "frechet_from_stats", "PrecisionRecall", "precision_recall", "fid", "mosaic", "FIDUnavailable"]

DISTANCE_CHUNK = 1000  # rows of a pairwise distance matrix held at once by precision_recall


@dataclass(frozen=True)
class ClassifierConfig(ImageLoopConfig):
    """A small CNN classifier whose penultimate features define the Fréchet distance. CPU defaults."""

    steps: int = 400
    warmup: int = 20
    ema_decay: float = 0.99
    width: int = 32  # channels of the first conv (the second has twice as many)
    feature_dim: int = 64  # size of the feature vector
    classes: int = 10


class Classifier(nn.Module):
    """(conv-SiLU-pool) twice, flatten, linear -> features ``[B, feature_dim]``, linear -> logits."""

    def __init__(self, channels: int, size: int, config: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        w = config.width
        self.body = nn.Sequential(nn.Conv2d(channels, w, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),
                                  nn.Conv2d(w, 2 * w, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2), nn.Flatten(),
                                  nn.Linear(2 * w * (size // 4) ** 2, config.feature_dim), nn.SiLU())
        self.head = nn.Linear(config.feature_dim, config.classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] in [-1, 1] -> logits [B, classes]
        return self.head(self.body(z))


def train_classifier(data: images_data.Images, config: ClassifierConfig = ClassifierConfig(),
                     seed: int = 0) -> Classifier:
    """Trains :class:`Classifier` on dequantized ``data`` with cross-entropy through :func:`f2d2mini.loop.fit`."""
    torch.manual_seed(seed)
    model = Classifier(data.images.shape[1], data.images.shape[-1], config)
    on_device = {}

    def loss_fn(net, step, gen):
        if gen.device not in on_device:
            on_device[gen.device] = (data.images.to(gen.device), data.labels.to(gen.device))
        images, labels = on_device[gen.device]
        idx = torch.randint(len(images), (config.batch_size,), generator=gen, device=gen.device)
        loss = F.cross_entropy(net(images_data.dequantize(images[idx], data.levels, gen)), labels[idx])
        return losses.LossOutput(loss, {"cls/loss": loss.detach()})

    return loop.fit(model, loss_fn, config, seed=seed, desc=f"classifier {data.name}", unit="img")


def _centred(images: torch.Tensor, levels: int) -> torch.Tensor:
    """uint8 levels -> z at the centre of each bin; float inputs are taken as z in [-1, 1] already."""
    if images.dtype == torch.uint8:
        return images_data.dequantize(images, levels, noise=torch.full(images.shape, 0.5, device=images.device))
    return images


@torch.no_grad()
def features(classifier: Classifier, images: torch.Tensor, levels: int) -> torch.Tensor:
    """Penultimate features ``[N, feature_dim]`` of uint8 images (or of model samples z in [-1, 1])."""
    device = next(classifier.parameters()).device
    chunks = _centred(images, levels).split(images_data.eval_batch(images))
    return torch.cat([classifier.body(c.to(device)).double().cpu() for c in chunks])


@torch.no_grad()
def accuracy(classifier: Classifier, data: images_data.Images) -> float:
    """Fraction of ``data`` the classifier labels correctly."""
    device = next(classifier.parameters()).device
    logits = classifier(_centred(data.images, data.levels).to(device)).cpu()
    return (logits.argmax(1) == data.labels).double().mean().item()


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    """|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}), by symmetric eigendecompositions."""
    mu_a, cov_a, mu_b, cov_b = (a.double() for a in (mu_a, cov_a, mu_b, cov_b))
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp_min(0).sqrt()) @ vecs.T
    middle = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * middle).item()


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, F]`` and ``[M, F]``."""
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1] or min(len(feats_a),
                                                                                              len(feats_b)) < 2:
        raise ValueError(f"need two feature sets [N >= 2, F] with the same F, got {tuple(feats_a.shape)} and "
                         f"{tuple(feats_b.shape)}")
    stats = [(f.double().mean(0), torch.cov(f.double().T)) for f in (feats_a, feats_b)]
    return frechet_from_stats(*stats[0], *stats[1])


class PrecisionRecall(NamedTuple):
    """``precision``: share of generated samples on the real manifold; ``recall``: share of real samples on the
    generated one."""

    precision: float
    recall: float


def _kth_neighbour(feats: torch.Tensor, k: int) -> torch.Tensor:
    """``[N]`` distance from each point to its k-th nearest other point of the same set (the point itself is the
    nearest, at distance 0)."""
    return torch.cat([torch.cdist(c, feats).topk(k + 1, dim=1, largest=False).values[:, -1]
                      for c in feats.split(DISTANCE_CHUNK)])


def _share_inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of ``points`` inside at least one ball of ``centres`` with ``radii`` (closed balls)."""
    inside = [(torch.cdist(c, centres) <= radii).any(1) for c in points.split(DISTANCE_CHUNK)]
    return torch.cat(inside).double().mean().item()


def precision_recall(real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-nearest-neighbour manifolds.

    Each set's manifold is the union of balls around its points with radius the distance to the point's k-th
    nearest neighbour in the same set. Precision is the share of fake points inside the real manifold (quality),
    recall the share of real points inside the fake manifold (diversity).

    Args:
        real_feats: features ``[N, F]`` of real images; fake_feats: ``[M, F]`` of generated ones; both with more
            than ``k`` rows.
        k: the neighbour that sets each radius (the paper's 3).
    """
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if (real_feats.ndim != 2 or fake_feats.ndim != 2 or real_feats.shape[1] != fake_feats.shape[1]
            or min(len(real_feats), len(fake_feats)) <= k):
        raise ValueError(f"need two feature sets [N > k, F] with the same F (k = {k}), got "
                         f"{tuple(real_feats.shape)} and {tuple(fake_feats.shape)}")
    real, fake = real_feats.float(), fake_feats.float()  # float32 distances: 2-5x faster than float64 here
    return PrecisionRecall(_share_inside(fake, real, _kth_neighbour(real, k)),
                           _share_inside(real, fake, _kth_neighbour(fake, k)))


class FIDUnavailable(RuntimeError):
    """FID cannot be computed here: torch-fidelity is missing or its Inception weights cannot be fetched."""


def fid(samples: torch.Tensor, reference: torch.Tensor, levels: int = 256, *, download: bool = True) -> float:
    """FID between two image sets (uint8 ``[N, C, H, W]`` or z in [-1, 1]) with torch-fidelity's Inception-v3.

    Args:
        download: fetch the Inception weights into torch's hub cache when they are not there. With ``False`` no
            network request is made: the weights must already be in ``torch.hub.get_dir()/checkpoints`` (what a
            book build and CI use).

    Raises:
        FIDUnavailable: torch-fidelity is not installed (``pip install 'f2d2mini[fid]'``) or its Inception weights
            are not cached and may not (``download=False``) or could not (no network) be downloaded; use
            :func:`frechet_distance` with :func:`train_classifier` instead. The message is one line.
    """
    try:
        import torch_fidelity
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3
    except ImportError as err:
        raise FIDUnavailable("FID needs torch-fidelity: pip install 'f2d2mini[fid]'") from err
    weights = _inception_weights(URL_INCEPTION_V3)
    advice = ("copy the file there, or use the download-free f2d2mini.images.quality.frechet_distance with "
              "train_classifier")
    if not weights.is_file():
        if not download:
            raise FIDUnavailable(
                f"FID needs torch-fidelity's Inception-v3 weights ({weights.name}), which are not in torch's hub "
                f"cache (torch.hub.get_dir()/checkpoints); download=False makes no network request: {advice}.")
        try:
            FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])  # fetches the weights into the cache
        except Exception as err:  # urllib / http / OS errors, depending on what failed
            raise FIDUnavailable(
                f"FID needs torch-fidelity's Inception-v3 weights, which are not cached and could not be "
                f"downloaded from {URL_INCEPTION_V3} ({type(err).__name__}: {err}); {advice} (into "
                f"torch.hub.get_dir()/checkpoints).") from err

    def as_dataset(x):
        k = images_data.quantize(x, levels) if x.dtype != torch.uint8 else x
        k = (k.float() * (255 / (levels - 1))).round().to(torch.uint8)  # to 8 bits
        return _Uint8Images(k.expand(-1, 3, -1, -1) if k.shape[1] == 1 else k)

    metrics = torch_fidelity.calculate_metrics(input1=as_dataset(samples.cpu()), input2=as_dataset(reference.cpu()),
                                               fid=True, cuda=torch.cuda.is_available(), verbose=False,
                                               feature_extractor_weights_path=str(weights))
    return float(metrics["frechet_inception_distance"])


def _inception_weights(url: str) -> Path:
    """Where torch's hub cache keeps the file of ``url`` (``load_state_dict_from_url``'s own rule)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


class _Uint8Images(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def mosaic(images: torch.Tensor, levels: int = 256, nrow: int = 8, ax=None, title: str | None = None):
    """Draws uint8 images (or samples z in [-1, 1]) as one grid with torchvision's ``make_grid``; returns the
    ``[H, W, 3]`` float array in [0, 1] (and shows it on ``ax`` when given)."""
    from torchvision.utils import make_grid

    z = _centred(images.cpu(), levels).clamp(-1, 1)
    array = make_grid((z + 1) / 2, nrow=nrow, padding=1, pad_value=1.0).permute(1, 2, 0).numpy()
    if ax is not None:
        ax.imshow(array, interpolation="nearest")
        ax.set_axis_off()
        if title:
            ax.set_title(title)
    return array
