"""Checkpoints round-trip, are written atomically, and reject files that are not theirs."""

import pytest
import torch

import f2d2mini as f2
from f2d2mini.nets import MLPConfig, VelocityMLP


@pytest.fixture
def model():
    torch.manual_seed(0)
    return VelocityMLP(MLPConfig(width=16, depth=2, time_frequencies=3))


def test_round_trip_keeps_config_weights_and_metadata(model, tmp_path):
    path = f2.save(model, tmp_path / "sub" / "m.pt", {"density": "checkerboard"})
    loaded = f2.load(path)
    assert loaded.config == model.config and not loaded.training
    assert loaded.metadata == {"density": "checkerboard"}
    x = torch.randn(5, 2)
    assert torch.equal(loaded(x, 0.3), model(x, 0.3))
    assert [p.name for p in tmp_path.rglob("*")] == ["sub", "m.pt"]  # no temporary file left behind


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.pt"):
        f2.load(tmp_path / "nothing.pt")


def test_truncated_file_is_rejected(model, tmp_path):
    path = f2.save(model, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(f2.CheckpointError, match="m.pt is not a readable checkpoint"):
        f2.load(path)


@pytest.mark.parametrize("payload", [{"weights": torch.zeros(2)}, [1, 2, 3]])
def test_foreign_torch_files_are_rejected(payload, tmp_path):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(f2.CheckpointError, match="other.pt is not an f2d2mini checkpoint"):
        f2.load(path)


def test_text_file_and_pickled_code_are_rejected(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(f2.CheckpointError, match="notes.pt"):
        f2.load(text)
    pickled = tmp_path / "code.pt"
    torch.save({"format": f2.checkpoint.FORMAT, "fn": print}, pickled)  # a function: weights_only refuses it
    with pytest.raises(f2.CheckpointError, match="code.pt is not a readable checkpoint"):
        f2.load(pickled)


def test_mismatched_weights_are_rejected(model, tmp_path):
    path = f2.save(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop("net.0.weight")
    torch.save(payload, path)
    with pytest.raises(f2.CheckpointError, match="do not match"):
        f2.load(path)


def test_failed_save_keeps_the_old_file(model, tmp_path, monkeypatch):
    path = f2.save(model, tmp_path / "m.pt")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        f2.save(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
