"""images.quality: Fréchet distances in closed form, the small classifier's features, FID's errors without network
or without torch-fidelity, and images centred on their own device (the ``meta`` device stands in for CUDA)."""

import sys

import pytest
import torch

from f2d2mini import base
from f2d2mini.images import data, quality

torch.set_num_threads(1)


def test_frechet_distance_of_diagonal_gaussians_is_closed_form():
    """For diagonal covariances FD = |mu_a - mu_b|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    mu_a, mu_b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    va, vb = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([4.0, 1.0, 1.0])
    expected = (mu_a - mu_b).pow(2).sum() + (va.sqrt() - vb.sqrt()).pow(2).sum()
    got = quality.frechet_from_stats(mu_a, torch.diag(va), mu_b, torch.diag(vb))
    assert got == pytest.approx(expected.item(), rel=1e-9)
    feats = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
    assert abs(quality.frechet_distance(feats, feats)) < 1e-8


def test_classifier_features_separate_data_from_noise():
    train_data, test = data.load("digits"), data.load("digits", split="test")
    clf = quality.train_classifier(train_data, quality.ClassifierConfig(steps=150, progress=False))
    assert quality.accuracy(clf, test) > 0.8  # digits are easy: a few seconds of training suffice
    real = quality.features(clf, test.images, 17)
    same = quality.frechet_distance(real[:148], real[148:])
    noise = quality.features(clf, base.sample(297, (1, 8, 8), seed=0).clamp(-1, 1), 17)
    assert quality.frechet_distance(noise, real) > 5 * same  # same: the finite-sample floor of two halves


def test_fid_without_torch_fidelity_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import fails as if not installed
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(quality.FIDUnavailable, match=r"pip install 'f2d2mini\[fid\]'"):
        quality.fid(x, x, levels=17)


def test_fid_without_weights_says_what_to_do(monkeypatch, tmp_path):
    import urllib.error

    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    monkeypatch.setattr(inception, "FeatureExtractorInceptionV3", offline)
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(quality.FIDUnavailable, match="could not be downloaded.*frechet_distance"):
        quality.fid(x, x, levels=17)


def test_fid_with_download_false_makes_no_network_request(monkeypatch, tmp_path):
    """Weights not cached and download=False: a one-line FIDUnavailable before anything touches the network."""
    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")

    def no_network(*args, **kwargs):
        raise AssertionError("fid(download=False) tried to fetch the weights")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(inception, "FeatureExtractorInceptionV3", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(inception, "load_state_dict_from_url", no_network)
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(quality.FIDUnavailable, match="download=False.*frechet_distance") as caught:
        quality.fid(x, x, levels=17, download=False)
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path) not in message  # one line, no local paths


def test_fid_uses_cached_weights_without_download(monkeypatch, tmp_path):
    """Weights in torch's hub cache: torch-fidelity gets their path, so it loads them instead of downloading."""
    torch_fidelity = pytest.importorskip("torch_fidelity")
    inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cached = tmp_path / "checkpoints" / inception.URL_INCEPTION_V3.rsplit("/", 1)[1]
    cached.parent.mkdir()
    cached.write_bytes(b"weights")
    seen = {}

    def calculate_metrics(**kwargs):
        seen.update(kwargs)
        return {"frechet_inception_distance": 1.5}

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch_fidelity, "calculate_metrics", calculate_metrics)
    x = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    assert quality.fid(x, x, levels=17, download=False) == 1.5
    assert seen["feature_extractor_weights_path"] == str(cached)
    assert tuple(seen["input1"][0].shape) == (3, 8, 8) and seen["input1"][0].dtype == torch.uint8


def test_centred_images_stay_on_their_device():
    """The bin centres are made on the images' device: on the meta device a CPU tensor would raise, as on CUDA."""
    images = torch.randint(0, 17, (6, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert quality._centred(images.to("meta"), 17).device.type == "meta"


def test_precision_recall_of_points_on_a_line_by_hand():
    """k = 1 on a line. Real 0, 1, 2, 3: every radius is 1. Fake -0.9, 0.5, 10: radii 1.4, 1.4, 9.5.
    Precision: -0.9 (0.9 from 0) and 0.5 are inside, 10 is not: 2/3. Recall: 0 (0.9 from -0.9) and 1 (0.5 from 0.5)
    are inside, 2 is 1.5 from 0.5 but 8 from 10 (radius 9.5), 3 is 7 from 10: all four, 1."""
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    fake = torch.tensor([[-0.9], [0.5], [10.0]])
    assert quality.precision_recall(real, fake, k=1) == pytest.approx((2 / 3, 1.0))
    without_outlier = torch.tensor([[-0.9], [0.5], [1.2]])  # radii 1.4, 0.7, 0.7: 2 and 3 are outside
    assert quality.precision_recall(real, without_outlier, k=1) == pytest.approx((1.0, 0.5))


def test_precision_recall_with_k3_of_same_and_far_sets():
    feats = torch.randn(400, 5, generator=torch.Generator().manual_seed(0))
    assert quality.precision_recall(feats, feats, k=3) == (1.0, 1.0)
    assert quality.precision_recall(feats, feats + 100.0, k=3) == (0.0, 0.0)
    collapsed = feats[:1] + 1e-3 * feats[:50]  # all fakes on one real point: quality kept, diversity lost
    precision, recall = quality.precision_recall(feats, collapsed, k=3)
    assert precision == 1.0 and recall < 0.05
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        quality.precision_recall(feats, feats, k=0)
    with pytest.raises(ValueError, match=r"\[N > k, F\]"):
        quality.precision_recall(feats, feats[:3], k=3)
