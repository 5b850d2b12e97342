"""One training loop that knows no method (book chapter 1): Adam, warm-up and cosine decay, EMA, gradient
clipping, progress bar, loss history, and a resumable training state.

``fit`` takes a model, a pure loss ``loss_fn(model, step, generator) -> LossOutput`` and a :class:`LoopConfig`
(or a subclass: the teacher's, the distillation's and the image recipes' configs all are). It returns an
exponential moving average (EMA) copy of the model in eval mode, carrying ``model.history`` (a :class:`History`)
and ``model.metadata`` (the config and seed, plus what the caller adds); :func:`f2d2mini.load` gives a saved model
the same two attributes.

Under ``torchrun`` (:mod:`f2d2mini.distributed`) the same loop trains data-parallel: the model goes into
DistributedDataParallel, each rank draws from its own random stream, logged values are averaged over ranks, and
rank 0 alone shows progress and writes the training state (with every rank's random stream).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from f2d2mini import base, checkpoint, checks, distributed, reports, train_state
from f2d2mini.train_state import STATE_FORMAT

__all__ = ["LoopConfig", "History", "fit", "resolve_device", "DEVICES", "STATE_FORMAT", "EMA_WARMUP"]

DEVICES = ("auto", "cpu", "cuda")
EMA_WARMUP = 10  # the EMA decay is min(ema_decay, (1 + step) / (EMA_WARMUP + step)): short memory at first


@dataclass(frozen=True)
class LoopConfig:
    """Settings of the training loop shared by every method. Defaults run on a CPU."""

    steps: int = 10_000  # optimizer steps
    batch_size: int = 1024
    lr: float = 3e-3  # peak Adam learning rate
    warmup: int = 200  # linear warm-up steps, then cosine decay to lr * final_lr_ratio
    final_lr_ratio: float = 0.01
    ema_decay: float = 0.999  # weight of the old average per step
    grad_clip: float = 1.0  # max global gradient norm
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    log_every: int = 100  # steps between history entries
    progress: bool = True  # tqdm progress bar
    checkpoint_every: int = 0  # steps between saves of the whole training state to fit's state_path (0: never)
    bf16: bool = False  # bf16 autocast of the loss's forward passes where the device is CUDA (JVPs stay float32)
    compile: bool = False  # torch.compile the model that the loss calls (pays a compile time once)


@dataclass
class History:
    """Mean loss and metrics over each window of ``log_every`` steps, and the wall-clock time of the run."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    elapsed: list[float] = field(default_factory=list)  # wall-clock seconds at each entry, every queued kernel done


checkpoint.register_attribute("history", History)  # saved with a model's weights, restored by f2d2mini.load


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> cuda if available else cpu; ``"cuda"`` without a GPU is an error naming the choices."""
    checks.choice(device, DEVICES, "device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(device)


def _lr_factor(step: int, config: LoopConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``final_lr_ratio``."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.final_lr_ratio + (1 - config.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class _Loop:
    """Everything a resumed run needs to continue exactly where the interrupted one stopped."""

    model: nn.Module
    ema: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    params: list[nn.Parameter]
    history: History = field(default_factory=History)
    window: list = field(default_factory=list)  # (loss, metrics) tensors of the steps since the last history entry
    step: int = 0  # optimizer steps done


def fit(model: nn.Module, loss_fn: Callable, config: LoopConfig, *, seed: int = 0, desc: str = "train",
        parameters=None, state_path: str | Path | None = None, resume: bool = False, unit: str = "samples",
        metadata: dict | None = None) -> nn.Module:
    """Minimises ``loss_fn(model, step, generator).loss`` with Adam; returns the EMA model with ``.history`` and
    ``.metadata`` (``metadata`` plus ``train_config`` and ``seed``).

    Args:
        model: the network, moved to ``config.device``; ``parameters``: those to optimise (default: all).
        loss_fn: ``(model, step, generator) -> LossOutput``; draws its own batch from ``generator``.
        config: a :class:`LoopConfig` (or a subclass). ``seed`` seeds the batch generator.
        desc, unit: label of the progress bar, and what one batch element is (for its rate).
        state_path: file for the whole training state (model, EMA, optimizer, scheduler, step, generator, history),
            written atomically every ``config.checkpoint_every`` steps and at the end.
        resume: continue from the state at ``state_path`` (same config, same kind of device, same number of
            processes). On the CPU, also with several processes, the result equals that of an uninterrupted run bit
            for bit. On CUDA it continues the same run but is not bit-identical: cuDNN's convolution gradients and
            NCCL's reductions add in a varying order, so the weights drift apart at the level of float rounding.
        metadata: what to record with the model (e.g. the density and rule), saved by :func:`f2d2mini.save`.
    """
    from tqdm.auto import tqdm

    state_path = _check_run(config, state_path, resume)
    loop = _start(model, config, seed, parameters)
    if resume:
        train_state.load(state_path, loop, config)
    net = distributed.wrap(model, loop.gen.device)
    net = torch.compile(net) if config.compile else net
    bf16 = config.bf16 and loop.gen.device.type == "cuda"
    start, seconds0, first = time.perf_counter(), loop.history.seconds, loop.step
    bar = tqdm(range(first, config.steps), initial=first, total=config.steps, desc=desc,
               disable=not (config.progress and distributed.is_main()), mininterval=1.0)
    for step in bar:
        _step(loop, net, loss_fn, step, config, bf16)
        if loop.step % config.log_every == 0 or loop.step == config.steps:
            _log(loop.history, loop.step, loop.window, config.lr)
            reports.synchronize(loop.gen.device)  # the last step's backward too: elapsed times are true times on a GPU
            loop.history.elapsed.append(seconds0 + time.perf_counter() - start)
            rate = config.batch_size * (loop.step - first) / (time.perf_counter() - start)
            bar.set_postfix({"loss": f"{loop.history.loss[-1]:.4f}", f"{unit}/s": f"{rate:.0f}"})
            loop.window = []
        if config.checkpoint_every and (loop.step % config.checkpoint_every == 0 or loop.step == config.steps):
            loop.history.seconds = seconds0 + time.perf_counter() - start
            train_state.save(state_path, loop, config, _window_rows(loop.window))
    loop.history.seconds = seconds0 + time.perf_counter() - start
    loop.ema.history = loop.history
    loop.ema.metadata = {**(metadata or {}), "seed": seed, "train_config": dataclasses.asdict(config)}
    return loop.ema


def _check_run(config: LoopConfig, state_path, resume: bool) -> Path | None:
    checks.positive_int(config.steps, "steps")
    state_path = Path(state_path) if state_path is not None else None
    if config.checkpoint_every and state_path is None:
        raise ValueError(f"checkpoint_every={config.checkpoint_every} needs a state_path to write to")
    if resume and (state_path is None or not state_path.is_file()):
        raise FileNotFoundError(f"cannot resume: no training state at {state_path}")
    return state_path


def _start(model: nn.Module, config: LoopConfig, seed: int, parameters) -> _Loop:
    """The model on its device, its EMA copy, Adam with the warm-up/cosine schedule and this rank's batch
    generator."""
    device = resolve_device(config.device)
    model.to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: _lr_factor(step, config))
    return _Loop(model, ema, opt, sched, base.make_generator(distributed.rank_seed(seed), device), params)


def _step(loop: _Loop, net: nn.Module, loss_fn: Callable, step: int, config: LoopConfig, bf16: bool) -> None:
    """One optimizer step on ``loss_fn``'s batch, then the EMA update. Nothing here reads a tensor back to the
    host: a GPU step never waits (:func:`_log` reads the window once and catches a non-finite loss there)."""
    with torch.autocast(loop.gen.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = loss_fn(net, step, loop.gen)
    loop.opt.zero_grad(set_to_none=True)
    out.loss.backward()
    nn.utils.clip_grad_norm_(loop.params, config.grad_clip)
    loop.opt.step()
    loop.sched.step()
    decay = min(config.ema_decay, (1 + step) / (EMA_WARMUP + step))
    with torch.no_grad():
        torch._foreach_lerp_(list(loop.ema.parameters()), list(loop.model.parameters()), 1 - decay)
    loop.window.append((out.loss.detach(), out.metrics))
    loop.step = step + 1


def _window_rows(window: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list[str], list[list[float]]]:
    """The metric names and the window's rows [loss, *metrics] per step, averaged over ranks, read to the host in
    one go (the one host read per window)."""
    if not window:
        return [], []
    keys = list(window[0][1])
    rows = torch.stack([torch.stack([loss.float(), *(m[k].float() for k in keys)]) for loss, m in window])
    return keys, distributed.mean(rows).cpu().tolist()


def _log(history: History, step: int, window: list[tuple[torch.Tensor, dict[str, torch.Tensor]]], lr: float) -> None:
    """Appends the window's mean loss and metrics to ``history``; a non-finite loss anywhere in the window stops the
    run, naming its step."""
    keys, values = _window_rows(window)
    first = step - len(window)
    for i, row in enumerate(values):
        if not math.isfinite(row[0]):
            raise FloatingPointError(f"loss became {row[0]} at step {first + i}; lower lr (now {lr})")
    means = [sum(column) / len(values) for column in zip(*values)]
    history.step.append(step)
    history.loss.append(means[0])
    for key, mean in zip(keys, means[1:]):
        history.metrics.setdefault(key, []).append(mean)
