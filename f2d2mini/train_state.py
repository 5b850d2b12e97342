"""The resumable training state of :func:`f2d2mini.loop.fit`: one file with everything an interrupted run needs.

Model, EMA, optimizer, scheduler, step, every rank's random generator, the history and the steps logged since
its last entry, and the config (without the fields a resumed run may change). Written atomically by rank 0,
read with ``torch.load(weights_only=True)``. A run resumes only with the same config, the same kind of device
(CPU and CUDA generators keep different states) and the same number of processes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from f2d2mini import checkpoint, distributed

__all__ = ["STATE_FORMAT", "RESUMABLE_CHANGES", "save", "load"]

STATE_FORMAT = "f2d2mini-train-state/2"  # /2: every rank's generator and the world size
RESUMABLE_CHANGES = ("device", "progress", "checkpoint_every", "compile")  # fields a resumed run may change
# (the device string may change, e.g. "auto" to "cuda", but not the kind of device: see load)


def _config_json(config) -> dict:
    data = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as after a round trip
    return {k: v for k, v in data.items() if k not in RESUMABLE_CHANGES}


def save(path: Path, loop, config, window: tuple[list[str], list[list[float]]]) -> None:
    """Writes ``loop`` (fit's state) and ``window`` (metric names and the rows [loss, *metrics] logged since the last
    history entry, averaged over ranks) to ``path``. Every rank calls this (it gathers their generators); rank 0
    writes."""
    generators = distributed.gather_objects(loop.gen.get_state())
    if not distributed.is_main():
        return
    keys, rows = window
    checkpoint.atomic_save({
        "format": STATE_FORMAT, "step": loop.step, "config": json.dumps(_config_json(config)),
        "device_type": loop.gen.device.type, "world_size": len(generators),
        "model": loop.model.state_dict(), "ema": loop.ema.state_dict(), "optimizer": loop.opt.state_dict(),
        "scheduler": loop.sched.state_dict(), "generators": generators,
        "history": dataclasses.asdict(loop.history),
        "window": [[row[0], dict(zip(keys, row[1:]))] for row in rows],
    }, path)


def _check(path: Path, state, loop, config) -> None:
    """Refuses a file that is not a training state, or one from another kind of device, world size or config."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise checkpoint.CheckpointError(f"{path} is not an f2d2mini training state ({STATE_FORMAT})")
    if state.get("device_type") != loop.gen.device.type:  # CPU and CUDA random generators keep different states
        raise ValueError(f"cannot resume from {path} on {loop.gen.device.type}: it was saved on "
                         f"{state.get('device_type')}; resume on the same kind of device")
    if state.get("world_size", 1) != distributed.world_size():
        raise ValueError(f"cannot resume from {path}: it was saved by {state.get('world_size', 1)} process(es), this "
                         f"run has {distributed.world_size()}; resume with the same torchrun --nproc_per_node")
    saved, now = json.loads(state["config"]), _config_json(config)
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        diffs = ", ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in changed)
        raise ValueError(f"cannot resume from {path}: the config differs ({diffs})")


def load(path: Path, loop, config) -> None:
    """Restores ``loop`` (fit's state, in place) from the state at ``path``, this rank's generator included."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    _check(path, state, loop, config)
    loop.model.load_state_dict(state["model"])
    loop.ema.load_state_dict(state["ema"])
    loop.opt.load_state_dict(state["optimizer"])
    loop.sched.load_state_dict(state["scheduler"])
    loop.gen.set_state(state["generators"][distributed.rank()])
    loop.history = type(loop.history)(**state["history"])
    device = loop.gen.device
    loop.window = [(torch.tensor(loss, device=device), {k: torch.tensor(v, device=device) for k, v in m.items()})
                   for loss, m in state["window"]]
    loop.step = state["step"]
