"""Checkpoints: tensors plus JSON, loaded with ``torch.load(weights_only=True)``, written atomically.

A checkpoint is one file holding a dict of plain data: a format tag, the model's class name, its architecture
config as JSON, free-form JSON metadata (training config, loss history, ...) and the ``state_dict``. Loading
never unpickles code; the model is rebuilt from the class name and the config. Model classes put themselves on
the list of loadable classes with :func:`register` (this module imports no model module), and the training loop
registers its ``History`` with :func:`register_attribute`, so a loaded model carries the same ``history`` and
``metadata`` attributes as a freshly trained one.

Commands write checkpoints under :data:`DEFAULT_DIR` with the names of :func:`teacher_path` and
:func:`flow_map_path`.

Every way a file can fail to load is one :class:`CheckpointError` line that names the file: truncated or
garbage bytes, a pickle that would import code (refused by the safe unpickler before anything runs; torch's advice
to turn safe loading off is never repeated), another format version (named, with the one this package reads), an
unknown model, or weights that do not fit the saved config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
import typing
import zipfile
from pathlib import Path

import torch
from torch import nn

__all__ = ["CheckpointError", "save", "save_trained", "load", "read", "atomic_save", "register", "register_attribute",
           "FORMAT", "FORMAT_NAME", "DEFAULT_DIR", "teacher_path", "flow_map_path"]

FORMAT_NAME = "f2d2mini-checkpoint"  # the format tag is FORMAT_NAME/version
FORMAT = f"{FORMAT_NAME}/1"  # the one version this package writes and reads (there has been no other)
CHECKPOINT_MODE = 0o644  # mkstemp creates 0600 files; checkpoints are meant to be shared
DEFAULT_DIR = Path("data") / "checkpoints"  # where commands write and look, relative to the working directory
_CLASSES: dict[str, type[nn.Module]] = {}  # the model classes a checkpoint may name
_ATTRIBUTES: dict[str, type] = {}  # model attributes (dataclasses) saved in the metadata and restored on load


class CheckpointError(ValueError):
    """A file that exists but is not a loadable f2d2mini checkpoint."""


def register(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: lets checkpoints name ``cls``, which takes a frozen dataclass ``config`` (its only
    argument, annotated) and has a ``state_dict``."""
    _CLASSES[cls.__name__] = cls
    return cls


def register_attribute(name: str, cls: type) -> None:
    """Saves a model's dataclass attribute ``name`` in the metadata and rebuilds it as ``cls`` on load."""
    _ATTRIBUTES[name] = cls


def teacher_path(name: str, directory: str | os.PathLike = DEFAULT_DIR) -> Path:
    """``<directory>/teacher_<name>.pt`` for a density or dataset ``name``."""
    return Path(directory) / f"teacher_{name}.pt"


def flow_map_path(name: str, rule: str, directory: str | os.PathLike = DEFAULT_DIR) -> Path:
    """``<directory>/f2d2_<rule>_<name>.pt`` for a density or dataset ``name``."""
    return Path(directory) / f"f2d2_{rule}_{name}.pt"


def _to_dataclass(cls, data: dict):
    """Rebuilds a (possibly nested) frozen dataclass from its ``asdict`` form."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value, kind = data[f.name], hints[f.name]
            kwargs[f.name] = _to_dataclass(kind, value) if dataclasses.is_dataclass(kind) else value
    return cls(**kwargs)


def save(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> Path:
    """Writes ``model`` (which has a dataclass ``config``) to ``path``: a temporary file, then an atomic rename.

    Stored beside the weights as JSON: ``model.metadata`` (set by training), updated with ``metadata``, and the
    registered attributes (the training ``history``).
    """
    path = Path(path)
    if type(model).__name__ not in _CLASSES:
        raise TypeError(f"cannot save {type(model).__name__}; savable models: {', '.join(_CLASSES)}")
    meta = {**getattr(model, "metadata", {}), **(metadata or {})}
    for name in _ATTRIBUTES:
        if getattr(model, name, None) is not None:
            meta[name] = dataclasses.asdict(getattr(model, name))
    payload = {
        "format": FORMAT,
        "model": type(model).__name__,
        "config": json.dumps(dataclasses.asdict(model.config)),
        "metadata": json.dumps(meta),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    return atomic_save(payload, path)


def save_trained(model: nn.Module, path: str | os.PathLike) -> str:
    """:func:`save` of a freshly trained model (one with ``history``); returns the line the commands print."""
    save(model, path)
    return f"saved {path} (trained {model.history.seconds:.0f} s, final loss {model.history.loss[-1]:.4f})"


def atomic_save(payload: dict, path: str | os.PathLike) -> Path:
    """``torch.save(payload)`` to a temporary file beside ``path``, then an atomic rename: a reader (or a run
    interrupted mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, CHECKPOINT_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _reason(err: BaseException) -> str:
    """One short line for why torch could not read a file, without torch's advice to load it unsafely."""
    text = str(err)
    code = re.search(r"GLOBAL ([\w.]+)", text)
    if code:
        return (f"it would import {code.group(1)}, code that safe loading refuses to run (a checkpoint holds only "
                f"tensors and plain data)")
    if "weights_only" in text:
        return "its pickled data is damaged or holds objects other than tensors and plain data"
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else ""
    return f"{type(err).__name__}{': ' + first if first else ''}"


def read(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """The payload of the torch file at ``path``, read with ``torch.load(weights_only=True)``: tensors and plain
    data only, never code.

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: one line naming the file when it is not a torch zip archive or cannot be read safely.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from err
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; never hand a bare pickle to an unpickler
        raise CheckpointError(f"{path} is not a readable checkpoint: not a torch zip archive (truncated, "
                              f"corrupted, or another kind of file)")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError or UnpicklingError for damaged files
        raise CheckpointError(f"{path} is not a readable checkpoint: {_reason(err)}") from None


def _check_format(payload, path: Path) -> None:
    found = payload.get("format") if isinstance(payload, dict) else None
    if isinstance(found, str) and found.startswith(f"{FORMAT_NAME}/") and found != FORMAT:
        raise CheckpointError(f"{path} is an f2d2mini checkpoint of format version {found.split('/', 1)[1]!r} "
                              f"({found}); this f2d2mini reads version {FORMAT.split('/', 1)[1]} ({FORMAT}) only: "
                              f"load it with the f2d2mini that wrote it and save it again, or retrain")
    if found != FORMAT:
        found = found if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an f2d2mini checkpoint: expected format {FORMAT!r}, found {found!r}")


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuilds the model saved at ``path`` in eval mode, with its metadata as ``model.metadata`` and the
    registered attributes (``model.history``) as they were when it was saved.

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: one line naming the file: truncated, corrupted, a pickle of code, another format version
            (both versions named), not an f2d2mini checkpoint, an unknown model, or weights that do not fit.
    """
    path = Path(path)
    payload = read(path, device)
    _check_format(payload, path)
    name = payload.get("model")
    if not isinstance(name, str) or name not in _CLASSES:
        raise CheckpointError(f"{path} holds unknown model {name!r}; known models: {', '.join(_CLASSES)}")
    cls = _CLASSES[name]
    config_cls = typing.get_type_hints(cls.__init__)["config"]
    try:
        model = cls(_to_dataclass(config_cls, json.loads(payload["config"])))
        model.load_state_dict(payload["state_dict"])
        model.metadata = json.loads(payload["metadata"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:  # JSONDecodeError is a ValueError
        reason = " ".join(str(err).split())  # torch's load_state_dict message spans lines
        raise CheckpointError(f"{path}: the weights do not match the saved {name} config: {reason}") from None
    for attr, attr_cls in _ATTRIBUTES.items():
        if attr in model.metadata:
            saved = model.metadata.pop(attr)
            fields = [field.name for field in dataclasses.fields(attr_cls)]
            if not isinstance(saved, dict) or sorted(saved) != sorted(fields):
                raise CheckpointError(f"{path}: its saved {attr} {saved!r} does not fit this version's "
                                      f"{attr_cls.__name__}({', '.join(fields)}): remake the model with this version")
            setattr(model, attr, attr_cls(**saved))
    return model.to(device).eval()
