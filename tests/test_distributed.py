"""Data-parallel training and evaluation on the CPU: two processes joined by gloo, as torchrun joins GPUs by NCCL.

One spawned pair trains the digits teacher through the image recipe (DistributedDataParallel, shards, per-rank
seeds), is interrupted and resumed, and distils with the Shortcut and the JVP rule LSD. The command line runs under
torchrun itself. Everything uses tiny networks and a few steps."""

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from helpers import TINY_NET

from f2d2mini import checkpoint, distributed, losses
from f2d2mini.images import data, likelihood
from f2d2mini.images import train as images_train

torch.set_num_threads(1)
WORLD = 2
CONFIG = images_train.ImageTeacherConfig(steps=40, batch_size=16, lr=5e-3, warmup=2, log_every=10, progress=False,
                                         net=TINY_NET)
INTERRUPT = 13  # the interrupted run stops here, after the save at step 10
DISTILL = images_train.ImageDistillConfig(steps=2, warm_steps=1, batch_size=8, warmup=1, log_every=1, progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _interrupting(original):
    def make(draw, power):
        loss = original(draw, power)

        def fn(model, step, gen):
            if step == INTERRUPT:
                raise KeyboardInterrupt  # Ctrl-C on every rank
            return loss(model, step, gen)

        return fn

    return make


def _worker(rank: int, port: int, folder: Path) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    train, state, out = data.load("digits"), folder / "run.state.pt", {}
    torch.manual_seed(0)
    straight = images_train.teacher(train, CONFIG)
    resumable = replace(CONFIG, checkpoint_every=5)
    original, losses.teacher_loss = losses.teacher_loss, _interrupting(losses.teacher_loss)
    with pytest.raises(KeyboardInterrupt):
        images_train.teacher(train, resumable, state_path=state)
    losses.teacher_loss = original
    resumed = images_train.teacher(train, resumable, state_path=state, resume=True)
    out.update(straight=[p.detach().clone() for p in straight.parameters()], history=straight.history,
               resumed=[p.detach().clone() for p in resumed.parameters()], resumed_history=resumed.history)
    for rule in ("shortcut", "lsd"):  # LSD differentiates the DDP-wrapped map with torch.func.jvp
        out[rule] = [p.detach().clone() for p in images_train.distill(straight, train, rule, DISTILL).parameters()]
    torch.save(out, folder / f"rank{rank}.pt")
    distributed.teardown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(_free_port(), folder), nprocs=WORLD)
    return folder, [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_ranks_hold_the_same_weights(two_ranks):
    """DistributedDataParallel averages the gradients: every rank takes the same steps, for each rule."""
    _, ranks = two_ranks
    for key in ("straight", "shortcut", "lsd"):
        for a, b in zip(ranks[0][key], ranks[1][key]):
            assert torch.equal(a, b)


def test_two_processes_follow_the_loss_curve_of_one(two_ranks):
    """Same global batch (2 x 8 against 1 x 16), other random draws: the same loss curve within noise."""
    _, ranks = two_ranks
    torch.manual_seed(0)
    single = images_train.teacher(data.load("digits"), CONFIG).history
    two = ranks[0]["history"]
    assert two.step == single.step == [10, 20, 30, 40]
    assert single.loss[-1] < 0.7 * single.loss[0] and two.loss[-1] < 0.7 * two.loss[0]  # it is learning
    for a, b in zip(two.loss, single.loss):
        assert a == pytest.approx(b, rel=0.1)


def test_a_resumed_pair_equals_an_uninterrupted_pair(two_ranks):
    """On the CPU (gloo) bit for bit, with the averaged history; the state holds both ranks' random streams."""
    folder, ranks = two_ranks
    for rank in ranks:
        for a, b in zip(rank["straight"], rank["resumed"]):
            assert torch.equal(a, b)
        assert rank["resumed_history"].loss == rank["history"].loss
    state = torch.load(folder / "run.state.pt", weights_only=True)
    assert state["world_size"] == WORLD and len(state["generators"]) == WORLD
    with pytest.raises(ValueError, match="saved by 2 process\\(es\\), this run has 1; resume with the same"):
        images_train.teacher(data.load("digits"), replace(CONFIG, checkpoint_every=5),
                             state_path=folder / "run.state.pt", resume=True)


def test_single_process_helpers_are_identities():
    x = torch.arange(5)
    assert not distributed.active() and distributed.rank() == 0 and distributed.is_main()
    assert torch.equal(distributed.shard(x), x) and torch.equal(distributed.gather(x), x)
    assert distributed.rank_seed(3) == 3 and distributed.local_batch(6) == 6
    assert distributed.gather_objects("a") == ["a"] and distributed.main_first(len, "ab") == 2


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", "-m",
           "f2d2mini.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_the_image_commands_run_under_torchrun(tmp_path):
    """torchrun ... -m f2d2mini.cli images teacher / bpd: rank 0 alone saves and prints; bits per dim are gathered
    from both ranks (the flow map's K-jump rows equal a single process's: they involve no random probes)."""
    teacher, fmap = tmp_path / "teacher_digits.pt", tmp_path / "f2d2_digits.pt"
    done = _torchrun("images", "teacher", "--data", "digits", "--steps", "4", "--batch-size", "8", "--device",
                     "cpu", "--out", str(teacher), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("saved") == 1 and teacher.is_file()
    assert checkpoint.load(teacher).history.step == [4]
    torch.manual_seed(0)
    model = images_train.distill(checkpoint.load(teacher), data.load("digits"), "shortcut", DISTILL)
    checkpoint.save(model, fmap)
    args = ("images", "bpd", str(fmap), "--teacher", str(teacher), "--n-images", "9", "--solver", "euler",
            "--ode-steps", "2", "--ks", "1", "2", "--device", "cpu")
    done = _torchrun(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    test = data.load("digits", split="test")
    lines = [line for line in done.stdout.splitlines() if "F2D2 K =" in line]
    assert len(lines) == 2  # printed once
    for k, line in zip((1, 2), lines):
        assert f"{likelihood.bpd(model, test.images[:9], k, levels=test.levels).bpd:.4f}" in line
