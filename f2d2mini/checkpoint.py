"""Checkpoints: tensors plus JSON, loaded with ``torch.load(weights_only=True)``, written atomically.

A checkpoint is one file holding a dict of plain data: a format tag, the model's class name, its architecture
config as JSON, free-form JSON metadata (training config, loss history, ...) and the ``state_dict``. Loading
never unpickles code; the model is rebuilt from the class name (a fixed list) and the config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import typing
from pathlib import Path

import torch
from torch import nn

__all__ = ["CheckpointError", "save", "load", "atomic_save", "FORMAT"]

FORMAT = "f2d2mini-checkpoint/1"
CHECKPOINT_MODE = 0o644  # mkstemp creates 0600 files; checkpoints are meant to be shared


class CheckpointError(ValueError):
    """A file that exists but is not a loadable f2d2mini checkpoint."""


def _model_classes() -> dict[str, type[nn.Module]]:
    """The classes a checkpoint may name (imported here to avoid import cycles)."""
    from f2d2mini import flowmap, nets
    from f2d2mini.images import unet

    return {cls.__name__: cls for cls in (nets.VelocityMLP, flowmap.JointFlowMap, unet.UNetVelocity,
                                          unet.UNetFlowMap)}


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

    ``metadata`` (JSON-serialisable) is stored beside the weights; a ``model.history`` from training is added.
    """
    path = Path(path)
    if type(model).__name__ not in _model_classes():
        raise TypeError(f"cannot save {type(model).__name__}; savable models: {', '.join(_model_classes())}")
    meta = dict(metadata or {})
    if hasattr(model, "history"):
        meta.setdefault("history", dataclasses.asdict(model.history))
    payload = {
        "format": FORMAT,
        "model": type(model).__name__,
        "config": json.dumps(dataclasses.asdict(model.config)),
        "metadata": json.dumps(meta),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
    }
    return atomic_save(payload, path)


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


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuilds the model saved at ``path`` in eval mode, with its metadata as ``model.metadata``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        CheckpointError: the file is truncated, corrupted, not an f2d2mini checkpoint, or names an unknown model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError or UnpicklingError depending on the damage
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupted?): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an f2d2mini checkpoint: expected format {FORMAT!r}, found {found!r}")
    classes = _model_classes()
    name = payload.get("model")
    if name not in classes:
        raise CheckpointError(f"{path} holds unknown model {name!r}; known models: {', '.join(classes)}")
    cls = classes[name]
    config_cls = typing.get_type_hints(cls.__init__)["config"]
    try:
        model = cls(_to_dataclass(config_cls, json.loads(payload["config"])))
        model.load_state_dict(payload["state_dict"])
        model.metadata = json.loads(payload["metadata"])
    except (KeyError, TypeError, RuntimeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: the weights do not match the saved {name} config: {err}") from err
    return model.to(device).eval()
