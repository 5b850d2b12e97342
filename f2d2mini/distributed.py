"""Several processes, one model: data-parallel training and evaluation under ``torchrun`` (book chapter 7).

    torchrun --standalone --nproc_per_node 8 -m f2d2mini.cli images teacher --data mnist --device cuda

``torchrun`` starts one process (a *rank*) per GPU (or per CPU worker) and tells each its rank and the world size
through the environment. :func:`setup` joins them into one process group (NCCL on GPUs, gloo on CPUs). Then

- each rank draws its own batches, from its own shard of the data (:func:`shard`) with its own random stream
  (:func:`rank_seed`), of ``batch_size / world_size`` images (:func:`local_batch`): the global batch is the config's;
- :class:`torch.nn.parallel.DistributedDataParallel` (:func:`wrap`) averages the gradients in the backward pass, so
  every rank takes the same optimizer step and holds the same weights and EMA;
- logged losses are averaged over ranks (:func:`mean`); checkpoints and the training state are written by rank 0
  only (:func:`is_main`), the state with every rank's random stream, so a run resumes on the same world size;
- evaluation splits the images over ranks and gathers the per-image results (:func:`gather`).

Outside ``torchrun`` (or with one process) every function here is the single-process identity.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable

import torch
from torch import distributed as dist
from torch import nn

__all__ = ["setup", "teardown", "active", "rank", "world_size", "is_main", "main_first", "rank_seed", "local_batch",
           "shard", "gather", "gather_objects", "mean", "wrap", "RANK_SEED_STRIDE", "BACKENDS"]

RANK_SEED_STRIDE = 10_000  # rank r draws from seed + r * RANK_SEED_STRIDE: runs seeded below it never share a stream
BACKENDS = {"cuda": "nccl", "cpu": "gloo"}  # process-group backend per device type


def setup(device: torch.device) -> bool:
    """Joins the process group when started by ``torchrun`` (``WORLD_SIZE`` in the environment); on CUDA, rank r
    uses GPU ``LOCAL_RANK``. Returns whether this is a multi-process run."""
    if "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return active()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(BACKENDS[device.type])
    return active()


def teardown() -> None:
    """Leaves the process group (if any)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """Whether this process is one of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the process that writes files and prints."""
    return rank() == 0


def main_first(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` on rank 0 first, then on the others (e.g. a load that may download files)."""
    if not is_main():
        dist.barrier()
    out = fn(*args, **kwargs)
    if active() and is_main():
        dist.barrier()
    return out


def rank_seed(seed: int) -> int:
    """This rank's seed: ``seed`` itself on rank 0 (and in a single process)."""
    return seed + rank() * RANK_SEED_STRIDE


def local_batch(batch_size: int) -> int:
    """This rank's share of a global ``batch_size``, which must divide evenly."""
    if batch_size % world_size():
        raise ValueError(f"batch_size {batch_size} must be divisible by the number of processes {world_size()}")
    return batch_size // world_size()


def shard(x):
    """Every ``world_size``-th item from this rank's on (a tensor, or a tuple of tensors such as an ``Images``)."""
    if isinstance(x, tuple):
        return type(x)(*(shard(v) if isinstance(v, torch.Tensor) else v for v in x))
    return x[rank()::world_size()]


def gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (picklable objects)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather(part: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`shard`: the full ``[N, ...]`` tensor from every rank's CPU ``part``."""
    if not active():
        return part
    parts = gather_objects(part.cpu())
    out = torch.empty((sum(len(p) for p in parts), *part.shape[1:]), dtype=part.dtype)
    for r, p in enumerate(parts):
        out[r::len(parts)] = p
    return out


def mean(x: torch.Tensor) -> torch.Tensor:
    """The average of ``x`` over ranks (a new tensor; ``x`` itself in a single process)."""
    if not active():
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / world_size()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in :class:`~torch.nn.parallel.DistributedDataParallel` when there are several ranks (gradients
    averaged in the backward pass), else ``model`` itself.

    Buffers are not re-broadcast at each forward pass: the networks here hold only constant ones (time
    frequencies), and a broadcast is an in-place copy that ``torch.func.jvp`` (MeanFlow, LSD) refuses."""
    if not active():
        return model
    ids = [torch.cuda.current_device()] if device.type == "cuda" else None  # setup chose the GPU
    ddp = nn.parallel.DistributedDataParallel
    no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(ddp).parameters
               else "broadcast_buffers")  # the newer name, where torch has it
    return ddp(model, device_ids=ids, **{no_sync: False})
