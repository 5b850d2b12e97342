"""bench.guidance at tiny budgets: the shipped digits maps through the command, and the MNIST path on tiny untrained
models."""

import json
import math

import torch
from helpers import run

from f2d2mini import checkpoint
from f2d2mini.bench import guidance
from f2d2mini.bench.images import TINY_MNIST_NET
from f2d2mini.images import unet

torch.set_num_threads(1)


def test_bench_guidance_quick_on_the_shipped_digits_maps(capsys, tmp_path):
    path = tmp_path / "guidance.json"
    code, text = run(capsys, "bench", "guidance", "--quick", "--data", "digits", "--device", "cpu",
                     "--maps", str(checkpoint.flow_map_path("digits", "shortcut")), "--json", str(path))
    assert code == 0 and "teacher Euler" in text and "spread over 2 seeds" in text
    report = json.loads(path.read_text())
    config = guidance.QUICK
    rows = report["all"]
    maps = [r for r in rows if r["model"] == "f2d2_shortcut_digits"]
    # K = 1, 2 unguided, K = 1, 2 at each lr, K = 1, 2 after more Adam steps at the best lr
    assert len(maps) == len(config.ks) + len(config.guided_ks) * (len(config.lrs) + len(config.more_steps))
    for r in maps:  # every guided Adam step is one forward and one backward pass
        assert r["NFE"] == r["K"] + 2 * r["guide steps"] and r["n"] == config.n
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and math.isfinite(r["log p"])
    euler = next(r for r in rows if r["model"] == "teacher Euler")
    assert euler["NFE"] == config.euler_steps and euler["n"] == config.teacher_n
    assert {r["n"] for r in report["versus_teacher"] if "spread" in r["model"]} == {config.teacher_n}
    verdict = report["verdict"]["f2d2_shortcut_digits"]
    assert verdict["best_lr"] in config.lrs and verdict["target_met"] == (verdict["fd_drop"] > 3 * verdict["fd_spread"])


def test_guidance_suite_takes_mnist_maps(real_mnist, tmp_path):
    """The MNIST path on tiny untrained models (the shipped MNIST maps come later): 28x28 noise, MNIST's held-out
    images and classifier, the teacher's dopri5."""
    torch.manual_seed(0)
    teacher = unet.UNetVelocity(TINY_MNIST_NET)
    model = unet.UNetFlowMap.from_teacher(teacher, div_scale=784.0)
    checkpoint.save(teacher, tmp_path / "teacher.pt")
    checkpoint.save(model, tmp_path / "map.pt")
    result = guidance.guidance_suite("mnist", {"tiny": tmp_path / "map.pt"}, tmp_path / "teacher.pt", guidance.QUICK)
    rows = result["report"]["all"]
    assert any(r["model"] == "tiny" and r["guide steps"] == 2 for r in rows)
    assert next(r for r in rows if r["model"] == "teacher dopri5")["NFE"] > 0
    assert "tiny" in result["report"]["verdict"]
