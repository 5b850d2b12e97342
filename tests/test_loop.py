"""The training loop that knows no method: schedule, devices, errors, and what it returns."""

import dataclasses
import traceback

import pytest
import torch

import f2d2mini as f2

TINY = f2.loop.LoopConfig(steps=5, batch_size=4, warmup=1, log_every=5, progress=False)


def test_learning_rate_warms_up_then_decays():
    config = f2.loop.LoopConfig(steps=100, warmup=10, final_lr_ratio=0.1)
    factors = [f2.loop._lr_factor(s, config) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="steps must be an integer >= 1, got 0"):
        f2.loop.fit(torch.nn.Linear(2, 2), None, dataclasses.replace(TINY, steps=0))
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        f2.loop.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            f2.loop.resolve_device("cuda")


def test_diverging_loss_stops_with_a_clear_error_naming_the_step():
    """The loss is read once per window of log_every steps; the first non-finite one is named."""

    def loss_fn(model, step, gen):
        value = float("nan") if step >= 7 else 1.0
        return f2.losses.LossOutput(model(torch.ones(1, 2)).sum() * 0 + value, {})

    with pytest.raises(FloatingPointError, match="loss became nan at step 7; lower lr"):
        f2.loop.fit(torch.nn.Linear(2, 1), loss_fn, dataclasses.replace(TINY, steps=20, log_every=5))


HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy")


@pytest.mark.parametrize("rule", ["teacher", *f2.losses.RULES])
def test_training_steps_never_read_tensors_back_to_the_host(rule, monkeypatch):
    """A GPU step that reads a tensor back (.item(), if tensor:, ...) waits for every queued kernel. Counted on the
    CPU: the host reads of a run do not grow with the number of steps between two log entries. (Adam reads its step
    counters, which live on the CPU on every device: not counted.)"""
    teacher = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
    dens = f2.toy.density("gaussians8")
    draw = f2.train.density_batches(dens, 16, 1.0, seed=0)
    if rule == "teacher":
        loss_fn = f2.losses.teacher_loss(draw)
        model = f2.nets.VelocityMLP(teacher.config)
    else:
        config = f2.train.distill_config(rule, batch_size=16, divergence="hutchinson", step_fraction=0.5,
                                         warm_steps=0, progress=False, div_scale=2.0)
        loss_fn = f2.distillation.distill_loss(teacher, draw, rule, config)
        model = f2.flowmap.JointFlowMap.from_teacher(teacher)

    def reads(steps):
        counts = {"n": 0}
        for name in HOST_READS:
            original = getattr(torch.Tensor, name)

            def counted(self, *args, __original=original, **kwargs):
                caller = traceback.extract_stack(limit=2)[0].filename
                counts["n"] += "torch/optim" not in caller.replace("\\", "/")
                return __original(self, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)
        f2.loop.fit(model, loss_fn, dataclasses.replace(TINY, steps=steps, log_every=steps))
        monkeypatch.undo()
        return counts["n"]

    assert reads(4) == reads(12)


def test_fit_returns_a_frozen_ema_with_history_and_metadata():
    """The EMA starts as a short-memory average: after one step with decay min(0.999, 1/EMA_WARMUP) it sits
    1 - 1/EMA_WARMUP of the way to the new weights."""
    model = torch.nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]

    def loss_fn(net, step, gen):
        loss = net(torch.ones(4, 2)).pow(2).mean()
        return f2.losses.LossOutput(loss, {"toy/loss": loss.detach()})

    ema = f2.loop.fit(model, loss_fn, dataclasses.replace(TINY, steps=1, log_every=1), seed=3,
                      metadata={"what": "toy"})
    decay = 1 / f2.loop.EMA_WARMUP
    for b, p, e in zip(before, model.parameters(), ema.parameters()):
        torch.testing.assert_close(e, decay * b + (1 - decay) * p.detach())
    assert not ema.training and not any(p.requires_grad for p in ema.parameters())
    assert ema.history.step == [1] and list(ema.history.metrics) == ["toy/loss"]
    assert ema.metadata == {"what": "toy", "seed": 3, "train_config": dataclasses.asdict(
        dataclasses.replace(TINY, steps=1, log_every=1))}


def test_history_times_each_entry_after_synchronizing(monkeypatch):
    """Every history entry records the wall-clock after waiting for the device (a no-op on the CPU): images per second
    after a warm-up come from the entries, not from a total that includes compilation."""
    from f2d2mini.bench.images import steady_rate

    synced = []
    monkeypatch.setattr(f2.reports, "synchronize", synced.append)

    def loss_fn(net, step, gen):
        return f2.losses.LossOutput(net(torch.ones(4, 2)).pow(2).mean(), {})

    ema = f2.loop.fit(torch.nn.Linear(2, 1), loss_fn, dataclasses.replace(TINY, steps=6, log_every=2))
    history = ema.history
    assert history.step == [2, 4, 6] and len(history.elapsed) == 3 == len(synced)
    assert 0 < history.elapsed[0] < history.elapsed[1] < history.elapsed[2] <= history.seconds
    assert steady_rate(history, 4) == pytest.approx(4 * 4 / (history.elapsed[2] - history.elapsed[0]))


def test_median_seconds_waits_for_the_gpu(monkeypatch):
    """A CUDA call returns before its kernels finish: each timed call starts and ends on an idle GPU."""
    from f2d2mini.reports import median_seconds

    calls = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: calls.append("sync"))
    median_seconds(lambda: calls.append("call"), repeats=2)
    assert calls == ["sync", "call", "sync"] * 2
