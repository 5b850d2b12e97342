"""Digits on the CPU, default recipe: teacher, F2D2 flow map, bits per dim (teacher ODE vs K) and sample grids.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/digits_cpu.py --out /tmp/digits

Writes teacher_digits.pt, f2d2_<rule>_digits.pt, a bpd table (JSON) and a sample grid into --out.
"""

import argparse
import json
import time
from pathlib import Path

import torch

import f2d2mini as f2

p = argparse.ArgumentParser()
p.add_argument("--out", type=Path, default=Path("/tmp/digits"))
p.add_argument("--rule", default=None)
p.add_argument("--teacher", type=Path, help="reuse this teacher checkpoint instead of training one")
args = p.parse_args()
torch.set_num_threads(1)
start = time.perf_counter()
recipe = f2.images.recipe("digits")
rule = args.rule or recipe.rule
train, test = f2.images.load("digits", split="train"), f2.images.load("digits", split="test")
if args.teacher:
    teacher = f2.load(args.teacher)
else:
    teacher = f2.images.teacher(train, recipe.teacher)
    f2.save(teacher, args.out / "teacher_digits.pt", {"dataset": "digits", "seed": 0})
t_teacher = time.perf_counter() - start
model = f2.images.distill(teacher, train, rule, recipe.distill)
f2.save(model, args.out / f"f2d2_{rule}_digits.pt", {"dataset": "digits", "rule": rule, "seed": 0})
t_distill = time.perf_counter() - start - t_teacher
rows = f2.images.bpd_table(teacher, model, test.images, test.levels, solver="rk4", steps=8, probes=4)
t_total = time.perf_counter() - start
for r in rows:
    print(f"{r.method:34s} NFE {r.nfe:4d}  bpd {r.bpd:.4f}  gap {r.gap:+.4f}  {r.seconds:.1f} s")
print(f"teacher {t_teacher:.0f} s, distill {t_distill:.0f} s, total {t_total:.0f} s")
(args.out / "bpd.json").write_text(json.dumps({"rows": [r._asdict() for r in rows], "teacher_s": t_teacher,
                                               "distill_s": t_distill, "total_s": t_total}, indent=1))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
noise = f2.base.sample(64, (1, 8, 8), seed=1)
f2.images.grid(test.images[:64], 17, ax=axes[0], title="test data")
f2.images.grid(f2.ode.sample(teacher, noise, 100), 17, ax=axes[1], title="teacher Euler 100")
for ax, k in zip(axes[2:], (1, 4)):
    f2.images.grid(model.sample(noise, k), 17, ax=ax, title=f"F2D2 K = {k}")
fig.savefig(args.out / "samples.png", dpi=80)
