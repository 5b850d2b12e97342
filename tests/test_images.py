"""The image side: loaders (real MNIST files, fake CIFAR-10 files), bits per dim against a Gaussian with a closed-form
velocity, the U-Net call contract, checkpoint round trips, resume after an interrupt, the digits pipeline end to end,
Fréchet distances and FID's error without network."""

import gzip
import math
import os
import pickle
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import f2d2mini as f2
from f2d2mini import base, flowmap, loop, ode
from f2d2mini.images import data, likelihood, quality, unet
from f2d2mini.images import train as images_train
from f2d2mini.losses import teacher_loss

torch.set_num_threads(1)
MNIST_DIR = data.SHARED_MNIST  # the real MNIST test split beside the repository
TINY_NET = unet.UNetConfig(widths=(8, 16), embed_dim=16, time_frequencies=4, groups=4)


# ---------------------------------------------------------------------------------------------- data


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
    with pytest.raises(ValueError, match="unknown dataset"):
        images_train.recipe("svhn")


def test_dequantize_and_quantize_are_inverse():
    k = torch.randint(0, 17, (50, 1, 8, 8), dtype=torch.uint8)
    z = data.dequantize(k, 17, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() < 1
    assert torch.equal(data.quantize(z, 17), k)


# ---------------------------------------------------------------------------------------------- bits per dim


def test_uniform_density_on_the_cube_gives_log2_levels_bits():
    """p_Z uniform on [-1, 1]^d has log p = -d ln 2, so the bound is exactly log2 L bits per dim."""
    d = 64
    assert likelihood.bits_per_dim(torch.tensor([-d * math.log(2)]), d, 17).item() == pytest.approx(math.log2(17))


GaussianVelocity = f2.gaussian_path.GaussianPathVelocity  # the closed form the bits per dim are checked on


def _analytic_bpd(images, levels, c):
    z = likelihood.dequantized(images, levels, likelihood.DEQUANT_SEED, "cpu").double()
    return likelihood.bits_per_dim(GaussianVelocity(c).log_prob(z), z[0].numel(), levels)


ODE_BPD_TOL = 1e-3  # dopri5 at rtol = atol = 1e-5 on ~30 nats over d = 16: ~1e-4 nats, far below this


@pytest.mark.parametrize("divergence", ["exact", "hutchinson"])
def test_ode_bpd_matches_the_analytic_gaussian(divergence):
    """For a linear field J = a(t) I, so a Rademacher probe gives eps^T J eps = a(t) d exactly: both agree."""
    c, levels = 0.5, 17
    images = torch.randint(0, levels, (6, 1, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    res = likelihood.ode_bpd(GaussianVelocity(c), images.to(torch.uint8), levels=levels, divergence=divergence)
    expected = _analytic_bpd(images, levels, c)
    assert torch.allclose(res.per_image, expected, atol=ODE_BPD_TOL)
    assert res.bpd == pytest.approx(expected.mean().item(), abs=ODE_BPD_TOL)


def test_flow_map_bpd_matches_the_analytic_gaussian():
    """The exact flow map of the Gaussian path (ODEFlowMap) gives the analytic bpd at every K."""
    c, levels = 0.7, 17
    images = torch.randint(0, levels, (4, 1, 4, 4), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    model = flowmap.ODEFlowMap(GaussianVelocity(c), solver="rk4", steps=16)
    expected = _analytic_bpd(images, levels, c)
    for k in (1, 2):
        assert torch.allclose(likelihood.bpd(model, images, k, levels=levels).per_image, expected, atol=ODE_BPD_TOL)
    split = data.Images(images, torch.zeros(4).long(), levels, "gauss")  # a split brings its own levels
    assert torch.allclose(likelihood.bpd(model, split, 1).per_image, expected, atol=ODE_BPD_TOL)


def test_bpd_rejects_bad_images():
    model = flowmap.ODEFlowMap(GaussianVelocity(1.0))
    with pytest.raises(TypeError, match="uint8 tensor"):
        likelihood.bpd(model, torch.zeros(2, 1, 4, 4), levels=17)
    with pytest.raises(ValueError, match="grey level 20 but levels = 17"):
        likelihood.bpd(model, torch.full((2, 1, 4, 4), 20, dtype=torch.uint8), levels=17)


# ---------------------------------------------------------------------------------------------- networks


def test_unet_call_contract_matches_the_mlp():
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET)
    x = torch.randn(5, 1, 8, 8)
    out = v(x, 0.3)
    assert out.shape == x.shape and torch.allclose(out, v(x, torch.full((5,), 0.3)))
    fm = unet.UNetFlowMap(unet.UNetFlowMapConfig(**vars(TINY_NET)))
    res = fm(x, 0.2, torch.full((5,), 0.9))
    assert isinstance(res, flowmap.FlowMapOutput) and res.u.shape == x.shape and res.D.shape == (5,)
    assert torch.allclose(res.D, fm(x, torch.full((5,), 0.2), 0.9).D)
    with pytest.raises(ValueError, match=r"shape \[batch, 1, 8, 8\], got \(5, 1, 6, 6\)"):
        v(torch.randn(5, 1, 6, 6), 0.3)
    with pytest.raises(ValueError, match=r"t must be a float or a tensor of shape \[5\]"):
        v(x, torch.rand(4))
    with pytest.raises(ValueError, match="groups 4 must divide every width"):
        unet.UNetConfig(widths=(6, 8), groups=4)


def test_samples_are_independent_in_a_batch():
    """GroupNorm, not BatchNorm: one image's output does not depend on the others (divergences need this)."""
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET)
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(v(x, 0.5)[:1], v(x[:1], 0.5), atol=1e-6)


def test_warm_start_copies_the_teacher_and_euler():
    """From the teacher: u(x, t, s) = v(x, t) and D = 0, so K jumps are exactly K Euler steps of the teacher."""
    torch.manual_seed(0)
    v = unet.UNetVelocity(TINY_NET).eval()
    fm = unet.UNetFlowMap.from_teacher(v, div_scale=64.0).eval()
    x = torch.randn(3, 1, 8, 8)
    out = fm(x, 0.25, 0.75)
    assert torch.allclose(out.u, v(x, 0.25), atol=1e-6) and torch.all(out.D == 0)
    with torch.no_grad():
        assert torch.allclose(fm.sample(x, 4), ode.sample(v, x, 4, "euler"), atol=1e-5)


@pytest.mark.parametrize("cls", [unet.UNetVelocity, unet.UNetFlowMap])
def test_checkpoint_round_trip(tmp_path, cls):
    torch.manual_seed(0)
    config = TINY_NET if cls is unet.UNetVelocity else unet.UNetFlowMapConfig(**vars(TINY_NET), div_scale=10.0)
    model = cls(config).eval()
    f2.save(model, tmp_path / "m.pt", {"dataset": "digits"})
    back = f2.load(tmp_path / "m.pt")
    assert type(back) is cls and back.config == model.config and back.metadata["dataset"] == "digits"
    x = torch.randn(2, 1, 8, 8)
    args = (x, 0.4) if cls is unet.UNetVelocity else (x, 0.4, 0.8)
    assert torch.equal(torch.as_tensor(back(*args)[0]), torch.as_tensor(model(*args)[0]))


# ---------------------------------------------------------------------------------------------- training


def _tiny_teacher_config(**kw):
    return images_train.ImageTeacherConfig(steps=12, batch_size=8, warmup=2, log_every=5, progress=False,
                                           net=TINY_NET, **kw)


def test_resume_after_an_interrupt_equals_an_uninterrupted_run(tmp_path):
    train_data = data.load("digits")
    loss = teacher_loss(data.batches(train_data, 8), 1.0)
    torch.manual_seed(0)
    straight = loop.fit(unet.UNetVelocity(TINY_NET), loss, _tiny_teacher_config())

    def interrupted(model, step, gen):
        if step == 9:
            raise KeyboardInterrupt  # Ctrl-C (or a lost machine) after the save at step 8
        return loss(model, step, gen)

    state, config = tmp_path / "run.state.pt", _tiny_teacher_config(checkpoint_every=4)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        loop.fit(unet.UNetVelocity(TINY_NET), interrupted, config, state_path=state)
    assert torch.load(state, weights_only=True)["step"] == 8
    torch.manual_seed(1)  # a different fresh initialisation: the state must overwrite all of it
    resumed = loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=state, resume=True)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert resumed.history.step == straight.history.step == [5, 10, 12]
    assert resumed.history.loss == straight.history.loss
    with pytest.raises(ValueError, match="the config differs.*lr: saved 0.002, now 0.1"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, replace(config, lr=0.1), state_path=state, resume=True)
    with pytest.raises(FileNotFoundError, match="cannot resume: no training state"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=tmp_path / "none.pt", resume=True)
    saved = torch.load(state, weights_only=True)
    torch.save({**saved, "device_type": "cuda"}, tmp_path / "gpu.state.pt")
    with pytest.raises(ValueError, match="it was saved on cuda; resume on the same kind of device"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config, state_path=tmp_path / "gpu.state.pt", resume=True)
    with pytest.raises(ValueError, match="checkpoint_every=4 needs a state_path"):
        loop.fit(unet.UNetVelocity(TINY_NET), loss, config)


def test_digits_pipeline_end_to_end():
    """Teacher, F2D2 (shortcut, then the JVP rule lsd) and the bpd table, with tiny budgets."""
    train_data, test = data.load("digits"), data.load("digits", split="test")
    teacher = images_train.teacher(train_data, replace(_tiny_teacher_config(), steps=40, log_every=10, lr=5e-3))
    assert teacher.history.loss[-1] < teacher.history.loss[0]
    distill = images_train.ImageDistillConfig(steps=6, warm_steps=3, batch_size=8, warmup=1, log_every=3,
                                              progress=False)
    for rule in ("shortcut", "lsd"):
        model = images_train.distill(teacher, train_data, rule, distill)
        assert {f"{rule}/D", "tangent/D"} <= set(model.history.metrics)
    rows = likelihood.bpd_table(teacher, model, test.images[:8], test.levels, (1, 4), solver="euler", steps=4)
    assert [r.nfe for r in rows] == [4, 1, 4]
    assert all(math.isfinite(r.bpd) for r in rows) and rows[0].gap == 0.0
    assert rows[2].gap == pytest.approx(rows[2].bpd - rows[0].bpd)
    x, log_p = model.sample_and_log_prob(3, 2, seed=0)
    assert x.shape == (3, 1, 8, 8) and log_p.shape == (3,)
    with pytest.raises(ValueError, match=r"digits images have shape \(1, 8, 8\) but the network expects"):
        images_train.teacher(train_data, images_train.recipe("mnist").teacher)
    fresh = images_train.distill(GaussianVelocity(1.0), train_data, "shortcut", distill)  # any teacher: a fresh U-Net
    assert isinstance(fresh, unet.UNetFlowMap) and fresh.config.widths == unet.UNetConfig().widths


# ---------------------------------------------------------------------------------------------- quality


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


@pytest.mark.parametrize("rule", ["meanflow", "lsd", "shortcut"])
def test_rules_run_under_bf16_autocast(rule):
    """What fit does on CUDA with bf16=True, checked on the CPU's bf16 autocast: the teacher's targets come back in
    float32 and the JVPs of meanflow and lsd run outside autocast, so tangents and primals share a dtype."""
    from f2d2mini import losses

    torch.manual_seed(0)
    teacher = unet.UNetVelocity(TINY_NET).requires_grad_(False)
    model = unet.UNetFlowMap.from_teacher(teacher, 64.0)
    x, t, s = torch.randn(4, 1, 8, 8), torch.rand(4), torch.rand(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = losses.RULE_LOSSES[rule](model, teacher, x, t, s, divergence="hutchinson", probes=1,
                                       generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_shortcut_targets_are_float32_under_bf16_autocast():
    """The two half jumps of the Shortcut target (D scaled by R) are computed in float32, autocast or not."""
    from f2d2mini import losses

    torch.manual_seed(0)
    model = unet.UNetFlowMap.from_teacher(unet.UNetVelocity(TINY_NET), 64.0)
    with torch.no_grad():
        model.div_head[-1].weight.normal_()  # a non-zero D head
    x, t, s = torch.randn(4, 1, 8, 8), torch.rand(4), torch.rand(4)
    plain = losses.shortcut_target(model, x, t, s)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = losses.shortcut_target(model, x, t, s)
    assert mixed.u.dtype == mixed.D.dtype == torch.float32
    torch.testing.assert_close(mixed, plain)
