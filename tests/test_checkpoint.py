"""Checkpoints round-trip, are written atomically, and reject files that are not theirs in one line that names
the file: truncated or garbage bytes, a pickle that would run code (which never runs), another format version; and the
file names the commands write."""

import pickle
import zipfile

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


def _one_line_naming(err, path) -> None:
    """The message names the file on one line and never advises turning safe loading off."""
    message = str(err.value)
    assert str(path) in message and "\n" not in message, message
    assert "weights_only" not in message and "trusted source" not in message, message
    assert err.value.__cause__ is None  # torch's own message (with its advice) is not chained into the traceback


def test_truncated_file_is_rejected(model, tmp_path):
    path = f2.save(model, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(f2.CheckpointError, match="m.pt is not a readable checkpoint") as err:
        f2.load(path)
    _one_line_naming(err, path)


@pytest.mark.parametrize("damage", ["random", "empty", "data.pkl"])
def test_garbage_is_one_line_without_unsafe_advice(model, tmp_path, damage):
    """Random bytes, an empty file, and a zip archive whose pickle is garbage (torch's message for the last one
    advises re-running torch.load with weights_only=False)."""
    path = tmp_path / "bad.pt"
    if damage == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8).numpy().tobytes())
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        f2.save(model, path)
        with zipfile.ZipFile(path) as zf:
            entries = {name: zf.read(name) for name in zf.namelist()}
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, b"\x80\x02garbage" if name.endswith("data.pkl") else data)
    with pytest.raises(f2.CheckpointError, match="bad.pt is not a readable checkpoint") as err:
        f2.load(path)
    _one_line_naming(err, path)


class WritesMarker:
    """Unpickling this calls open(marker, "w"): the file appearing means code ran on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("container", ["torch.save", "bare pickle"])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(model, tmp_path, monkeypatch, container):
    marker = tmp_path / "MARKER"
    control = tmp_path / "CONTROL"
    pickle.loads(pickle.dumps(WritesMarker(control)))  # the payload is live: a plain unpickler runs it
    assert control.exists()
    payload = {"format": f2.checkpoint.FORMAT, "model": "VelocityMLP", "evil": WritesMarker(marker)}
    path = tmp_path / "evil.pt"
    if container == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's switch to turn safe loading off
    with pytest.raises(f2.CheckpointError, match="evil.pt is not a readable checkpoint") as err:
        f2.load(path)
    assert not marker.exists()
    _one_line_naming(err, path)
    if container == "torch.save":
        assert "io.open" in str(err.value)  # what it would have run (builtins.open is io.open)


@pytest.mark.parametrize("version", ["0", "2"])
def test_another_format_version_names_both_versions(model, tmp_path, version):
    path = f2.save(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["format"] = f"f2d2mini-checkpoint/{version}"
    torch.save(payload, path)
    with pytest.raises(f2.CheckpointError, match=rf"m.pt is an f2d2mini checkpoint of format version '{version}'.*"
                                                 r"reads version 1 \(f2d2mini-checkpoint/1\)") as err:
        f2.load(path)
    _one_line_naming(err, path)


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


def test_a_saved_attribute_that_does_not_fit_its_class_names_both(model, tmp_path):
    """A noise band saved before it had its neighbour correlation: the attribute, what was saved and the fields this
    version expects, not a complaint about weights."""
    path = f2.save(model, tmp_path / "m.pt", metadata={"noise_band": {"low": 0.7, "high": 1.2}})
    with pytest.raises(f2.CheckpointError, match=r"m.pt: its saved noise_band \{'low': 0.7, 'high': 1.2\} does not "
                                                 r"fit this version's NoiseBand\(low, high, corr_low, corr_high\)"):
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


def test_a_save_interrupted_mid_write_keeps_the_old_file(model, tmp_path, monkeypatch):
    """Half the new file written, then Ctrl-C: the old checkpoint still loads and no partial file is left."""
    path = f2.save(model, tmp_path / "m.pt")
    before = path.read_bytes()
    real_save = torch.save

    def half_then_interrupt(payload, fh):
        real_save(payload, fh)
        fh.seek(len(before) // 2)
        fh.truncate()
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", half_then_interrupt)
    torch.nn.init.zeros_(model.net[0].weight)
    with pytest.raises(KeyboardInterrupt):
        f2.save(model, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert f2.load(path).net[0].weight.abs().sum() > 0  # the old weights, not the zeroed ones


def test_paths_follow_the_cli_names(tmp_path):
    assert f2.checkpoint.teacher_path("rings", tmp_path) == tmp_path / "teacher_rings.pt"
    assert f2.checkpoint.flow_map_path("rings", "meanflow", tmp_path) == tmp_path / "f2d2_meanflow_rings.pt"
    assert f2.checkpoint.teacher_path("digits") == f2.checkpoint.DEFAULT_DIR / "teacher_digits.pt"
