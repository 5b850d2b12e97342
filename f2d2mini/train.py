"""One training loop that knows no method, and the flow-matching teacher built on it (book chapter 1).

``fit`` takes a model, a pure loss ``loss_fn(model, step, generator) -> LossOutput`` and a config with the loop's
settings (steps, lr, warm-up, cosine decay, EMA, gradient clipping, device). It returns an exponential moving
average (EMA) copy of the model in eval mode, with the loss history attached as ``model.history``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from f2d2mini import base, checkpoint, checks, flowmap, losses, nets, ode, toy

__all__ = ["LoopConfig", "TeacherConfig", "DistillConfig", "History", "fit", "teacher", "distill", "resolve_device",
           "DEVICES", "teacher_loss", "distill_loss", "density_batches", "distill_config", "RULE_CHANGES"]

DEVICES = ("auto", "cpu", "cuda")


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


@dataclass(frozen=True)
class TeacherConfig(LoopConfig):
    """Flow-matching teacher on a 2-D density: loop settings, the network and the base's sigma0."""

    steps: int = 13_000  # about 2.5 minutes on 2 CPU cores
    batch_size: int = 512
    lr: float = 5e-3
    net: nets.MLPConfig = field(default_factory=lambda: nets.MLPConfig(space_features=32))
    sigma0: float = 1.0  # base N(0, sigma0^2 I)
    time_power: float = 2.0  # t = 1 - (1 - U)^time_power, U ~ U(0, 1): 1 is uniform, > 1 favours the data end


@dataclass(frozen=True)
class DistillConfig(LoopConfig):
    """F2D2 distillation of a teacher velocity into a :class:`~f2d2mini.flowmap.JointFlowMap`.

    Phased: for ``warm_steps`` only the velocity part u is trained (the D loss has weight 0), then D joins
    with weight ``d_weight``. A fraction ``diagonal_fraction`` of each batch has s = t (tangent targets from
    the teacher); the rest draws (t, s) over the whole square, so backward jumps are trained too. The defaults are
    the Lagrangian and MeanFlow rules' CPU settings; :func:`distill_config` gives each rule's (``distill`` uses it).
    """

    steps: int = 4500  # 3-5 minutes on 2 CPU cores for the Lagrangian and MeanFlow rules
    batch_size: int = 512
    lr: float = 1e-3
    warm_steps: int = 1000  # phase 1: velocity part only
    diagonal_fraction: float = 0.25  # share of each batch on the diagonal s = t
    d_weight: float = 0.5  # weight of the D loss in phase 2
    divergence: str = "exact"  # teacher divergence targets: "exact" (2-D) or "hutchinson"
    probes: int = 1  # Hutchinson probes per point
    time_power: float = 1.0  # t, s = 1 - (1 - U)^time_power: 1 is uniform, > 1 favours the data end
    grid_fraction: float = 0.0  # share of the off-diagonal pairs drawn from the K-step grids used at evaluation
    grid_steps: tuple[int, ...] = (1, 2, 4, 8)  # those K: pairs (k/K, (k +- 1)/K), forward and backward
    adaptive_power: float = 0.0  # p of MeanFlow's adaptive per-point weight 1 / (error + c)^p (0: plain squares)
    net: flowmap.FlowMapConfig = field(default_factory=lambda: flowmap.FlowMapConfig(div_scale=2.0))  # R; the
    # architecture fields are used only when the teacher is not a VelocityMLP (else the map copies the teacher's)


RULE_CHANGES = {
    "lsd": {},
    "meanflow": {},
    # No JVP: a step costs about half of a Lagrangian one, so twice the steps fit the same 5 minutes. Times favour
    # the data end, where the likelihood error sits; half the pairs are steps of the evaluation grids; the adaptive
    # weight keeps rare huge errors near cell edges from dominating (measurements: benchmarks/results/f2d2.txt).
    # The other rules lost sample quality (lsd) or diverged (meanflow) with these; Shortcut diverged at lr 2e-3.
    "shortcut": {"steps": 10_000, "warm_steps": 2000, "time_power": 2.0, "grid_fraction": 0.5,
                 "adaptive_power": 0.5},
}


def distill_config(rule: str = "lsd", **changes) -> DistillConfig:
    """The CPU defaults of ``rule`` (``DistillConfig()`` with ``RULE_CHANGES[rule]``), then ``changes``."""
    checks.choice(rule, losses.RULES, "rule")
    return dataclasses.replace(DistillConfig(), **{**RULE_CHANGES[rule], **changes})


@dataclass
class History:
    """Mean loss and metrics over each window of ``log_every`` steps, and the wall-clock time of the run."""

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0


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


def fit(model: nn.Module, loss_fn: Callable, config: LoopConfig, *, seed: int = 0, desc: str = "train",
        parameters=None, state_path: str | Path | None = None, resume: bool = False,
        unit: str = "samples") -> nn.Module:
    """Minimises ``loss_fn(model, step, generator).loss`` with Adam; returns the EMA model with ``.history``.

    Args:
        model: the network, moved to ``config.device``.
        loss_fn: ``(model, step, generator) -> LossOutput``; draws its own batch from ``generator``.
        config: a :class:`LoopConfig` (or a subclass).
        seed: seeds the batch generator.
        desc: label of the progress bar.
        parameters: the parameters to optimise (default: all of the model's).
        state_path: file for the whole training state (model, EMA, optimizer, scheduler, step, generator, history),
            written atomically every ``config.checkpoint_every`` steps and at the end.
        resume: continue from the state at ``state_path``: the result equals that of an uninterrupted run.
        unit: what one batch element is, for the progress bar's rate (``batch_size`` per step).
    """
    from tqdm.auto import tqdm

    checks.positive_int(config.steps, "steps")
    state_path = Path(state_path) if state_path is not None else None
    if config.checkpoint_every and state_path is None:
        raise ValueError(f"checkpoint_every={config.checkpoint_every} needs a state_path to write to")
    if resume and (state_path is None or not state_path.is_file()):
        raise FileNotFoundError(f"cannot resume: no training state at {state_path}")
    device = resolve_device(config.device)
    model.to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: _lr_factor(step, config))
    gen = base.make_generator(seed, device)
    loop = _Loop(model, ema, opt, sched, gen, History(), [], 0)
    if resume:
        _load_state(state_path, loop, config)
    net = torch.compile(model) if config.compile else model
    bf16 = config.bf16 and device.type == "cuda"
    start, seconds0, first = time.perf_counter(), loop.history.seconds, loop.step
    bar = tqdm(range(first, config.steps), initial=first, total=config.steps, desc=desc,
               disable=not config.progress, mininterval=1.0)
    for step in bar:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = loss_fn(net, step, gen)
        if not torch.isfinite(out.loss):
            raise FloatingPointError(f"loss became {out.loss.item()} at step {step}; lower lr (now {config.lr})")
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        sched.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))  # short memory while the weights move fast
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        loop.window.append((out.loss.item(), out.metrics))
        loop.step = step + 1
        if loop.step % config.log_every == 0 or loop.step == config.steps:
            _log(loop.history, loop.step, loop.window)
            rate = config.batch_size * (loop.step - first) / (time.perf_counter() - start)
            bar.set_postfix({"loss": f"{loop.history.loss[-1]:.4f}", f"{unit}/s": f"{rate:.0f}"})
            loop.window = []
        if config.checkpoint_every and (loop.step % config.checkpoint_every == 0 or loop.step == config.steps):
            loop.history.seconds = seconds0 + time.perf_counter() - start
            _save_state(state_path, loop, config)
    loop.history.seconds = seconds0 + time.perf_counter() - start
    ema.history = loop.history
    return ema


@dataclass
class _Loop:
    """Everything a resumed run needs to continue exactly where the interrupted one stopped."""

    model: nn.Module
    ema: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    gen: torch.Generator
    history: History
    window: list  # (loss, metrics) of the steps since the last history entry
    step: int  # optimizer steps done


STATE_FORMAT = "f2d2mini-train-state/1"
RESUMABLE_CHANGES = ("device", "progress", "checkpoint_every", "compile")  # fields a resumed run may change
# (the device string may change, e.g. "auto" to "cuda", but not the kind of device: see _load_state)


def _config_json(config: LoopConfig) -> dict:
    data = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples -> lists, as after a round trip
    return {k: v for k, v in data.items() if k not in RESUMABLE_CHANGES}


def _save_state(path: Path, loop: _Loop, config: LoopConfig) -> None:
    checkpoint.atomic_save({
        "format": STATE_FORMAT, "step": loop.step, "config": json.dumps(_config_json(config)),
        "device_type": loop.gen.device.type,
        "model": loop.model.state_dict(), "ema": loop.ema.state_dict(), "optimizer": loop.opt.state_dict(),
        "scheduler": loop.sched.state_dict(), "generator": loop.gen.get_state(),
        "history": dataclasses.asdict(loop.history), "window": [[loss, m] for loss, m in loop.window],
    }, path)


def _load_state(path: Path, loop: _Loop, config: LoopConfig) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise checkpoint.CheckpointError(f"{path} is not an f2d2mini training state ({STATE_FORMAT})")
    if state.get("device_type") != loop.gen.device.type:  # CPU and CUDA random generators keep different states
        raise ValueError(f"cannot resume from {path} on {loop.gen.device.type}: it was saved on "
                         f"{state.get('device_type')}; resume on the same kind of device")
    saved, now = json.loads(state["config"]), _config_json(config)
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        diffs = ", ".join(f"{k}: saved {saved.get(k)!r}, now {now.get(k)!r}" for k in changed)
        raise ValueError(f"cannot resume from {path}: the config differs ({diffs})")
    loop.model.load_state_dict(state["model"])
    loop.ema.load_state_dict(state["ema"])
    loop.opt.load_state_dict(state["optimizer"])
    loop.sched.load_state_dict(state["scheduler"])
    loop.gen.set_state(state["generator"])
    loop.history = History(**state["history"])
    loop.window = [(loss, m) for loss, m in state["window"]]
    loop.step = state["step"]


def _log(history: History, step: int, window: list[tuple[float, dict[str, float]]]) -> None:
    history.step.append(step)
    history.loss.append(sum(loss for loss, _ in window) / len(window))
    for key in window[0][1]:
        history.metrics.setdefault(key, []).append(sum(m[key] for _, m in window) / len(window))


def teacher(density: toy.Density, config: TeacherConfig = TeacherConfig(), seed: int = 0) -> nets.VelocityMLP:
    """Trains a flow-matching velocity v(x, t) on ``density`` (fresh samples every step); returns its EMA.

    The loss is :func:`f2d2mini.losses.flow_matching` on the linear path from N(0, sigma0^2 I) (t = 0) to the
    data (t = 1), with t = 1 - (1 - U)^time_power, U ~ U(0, 1).
    """
    torch.manual_seed(seed)
    model = nets.VelocityMLP(config.net)
    draw = density_batches(density, config.batch_size, config.sigma0, seed)
    return fit(model, teacher_loss(draw, config.time_power), config, seed=seed, desc=f"teacher {density.name}")


def teacher_loss(draw: Callable, time_power: float = 1.0) -> Callable:
    """The flow-matching loss as a ``fit`` loss: ``draw(generator, step) -> (x0, x1)`` gives each batch."""

    def loss_fn(model, step, gen):
        x0, x1 = draw(gen, step)
        return losses.flow_matching(model, x0, x1, _skewed_times(len(x1), time_power, gen))

    return loss_fn


def _skewed_times(n: int, power: float, gen: torch.Generator) -> torch.Tensor:
    """t = 1 - (1 - U)^power with U ~ U(0, 1): uniform for power 1, denser near the data end t = 1 above."""
    return 1 - (1 - torch.rand(n, generator=gen, device=gen.device)) ** power


def _grid_pairs(n: int, grid_steps: tuple[int, ...], gen: torch.Generator):
    """n pairs (t, s) = (k/K, (k +- 1)/K) of the K-step grids: K drawn from ``grid_steps``, direction at random."""
    k_steps = torch.tensor(grid_steps, device=gen.device)[
        torch.randint(len(grid_steps), (n,), generator=gen, device=gen.device)]
    k = torch.floor(torch.rand(n, generator=gen, device=gen.device) * k_steps)
    start, end = k / k_steps, (k + 1) / k_steps
    backward = torch.rand(n, generator=gen, device=gen.device) < 0.5
    return torch.where(backward, end, start), torch.where(backward, start, end)


def density_batches(density: toy.Density, n: int, sigma0: float, seed: int) -> Callable:
    """``draw(generator, step) -> (x0, x1)``: noise x0 ~ N(0, sigma0^2 I) and fresh data x1 ~ density, both on the
    generator's device. Densities sample on the CPU: CPU runs reuse the loop's generator, others a per-step one.
    """

    def draw(gen: torch.Generator, step: int):
        cpu_gen = gen if gen.device.type == "cpu" else base.make_generator(seed * 1_000_003 + step)
        x1 = density.sample(n, generator=cpu_gen).to(gen.device)
        return sigma0 * torch.randn(x1.shape, generator=gen, device=gen.device), x1

    return draw


def distill(teacher, density: toy.Density, rule: str = "lsd", config: DistillConfig | None = None,
            seed: int = 0) -> flowmap.JointFlowMap:
    """F2D2: distils ``teacher`` (any differentiable ``v(x, t)``) into a joint flow map with ``rule``.

    ``config`` defaults to the rule's CPU settings, :func:`distill_config` ``(rule)``.

    A :class:`~f2d2mini.nets.VelocityMLP` teacher warm-starts the map (u(x, t, s) = v(x, t), D = 0) with its own
    architecture and ``config.net.div_scale``; any other callable (e.g. ``GaussianMixture.velocity``) gets a
    fresh map of architecture ``config.net``. Returns the EMA model with ``.history``.
    """
    config = distill_config(rule) if config is None else config
    torch.manual_seed(seed)
    if isinstance(teacher, nets.VelocityMLP):
        model = flowmap.JointFlowMap.from_teacher(teacher, config.net.div_scale, config.net.sigma0)
    else:
        model = flowmap.JointFlowMap(config.net)
    draw = density_batches(density, config.batch_size, model.config.sigma0, seed)
    loss_fn = distill_loss(teacher, draw, rule, config, model.config.div_scale)
    return fit(model, loss_fn, config, seed=seed, desc=f"F2D2 {rule} {density.name}")


def distill_loss(teacher, draw: Callable, rule: str, config: DistillConfig, div_scale: float) -> Callable:
    """The phased F2D2 loss as a ``fit`` loss, for any data: ``draw(generator, step) -> (x0, x1)``.

    A fraction ``config.diagonal_fraction`` of the batch gets the tangent loss against ``teacher``, the rest the
    off-diagonal ``rule`` at (t, s) over the whole square; the D terms have weight 0 before ``config.warm_steps``.
    A teacher module is used through a frozen copy on ``config.device``.
    """
    checks.choice(rule, losses.RULES, "rule")
    checks.choice(config.divergence, ode.DIVERGENCES, "divergence")
    if isinstance(teacher, nn.Module):
        teacher = copy.deepcopy(teacher).to(resolve_device(config.device)).eval().requires_grad_(False)
    rule_loss, n_diag = losses.RULE_LOSSES[rule], round(config.batch_size * config.diagonal_fraction)
    if not 0 < n_diag < config.batch_size:
        raise ValueError(f"batch_size {config.batch_size} with diagonal_fraction {config.diagonal_fraction} leaves "
                         f"{n_diag} tangent and {config.batch_size - n_diag} off-diagonal points; both need >= 1")
    n_grid = round((config.batch_size - n_diag) * config.grid_fraction)

    def loss_fn(model, step, gen):
        x0, x1 = draw(gen, step)
        t = _skewed_times(len(x1), config.time_power, gen)
        s = torch.cat([t[:n_diag], _skewed_times(len(x1) - n_diag, config.time_power, gen)])
        if n_grid:
            t[n_diag:n_diag + n_grid], s[n_diag:n_diag + n_grid] = _grid_pairs(n_grid, config.grid_steps, gen)
        xt = losses.interpolate(x0, x1, t)
        extra = dict(d_weight=0.0 if step < config.warm_steps else config.d_weight, div_scale=div_scale,
                     adaptive_power=config.adaptive_power)
        target = losses.teacher_targets(teacher, xt[:n_diag], t[:n_diag], config.divergence, config.probes, gen)
        diag = losses.tangent(model, target, xt[:n_diag], t[:n_diag], **extra)
        off = rule_loss(model, teacher, xt[n_diag:], t[n_diag:], s[n_diag:], divergence=config.divergence,
                        probes=config.probes, generator=gen, **extra)
        return losses.LossOutput(diag.loss + off.loss, {**diag.metrics, **off.metrics})

    return loss_fn
