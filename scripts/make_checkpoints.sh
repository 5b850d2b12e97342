#!/usr/bin/env bash
# Makes every shipped checkpoint in data/checkpoints/ (tensors + JSON, loaded with f2d2mini.load) from the current
# code, seed 0. Run from the repository root in the project's environment: bash scripts/make_checkpoints.sh
# (about 2 hours on 2 quiet CPU cores in all; data/checkpoints/README.md says what each file is).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=data/checkpoints
for density in checkerboard gaussians8; do
  f2d2mini teacher --density "$density" --device cpu --seed 0
done
# F2D2 flow maps distilled from those teachers with each rule's defaults (train.distill_config(rule), coverage of
# [-6, 6]^2 included); the Shortcut maps with twice their default steps, so that covering the square costs them no
# accuracy on the data (benchmarks/results/f2d2.txt).
for density in checkerboard gaussians8; do
  f2d2mini distill --density "$density" --rule shortcut --steps 20000 --warm-steps 4000 --device cpu --seed 0
  f2d2mini distill --density "$density" --rule lsd --device cpu --seed 0
  f2d2mini distill --density "$density" --rule meanflow --device cpu --seed 0
done
# The Shortcut map distilled on the data path alone (no coverage): chapter 5 shows what its likelihood does off the data.
f2d2mini distill --density checkerboard --rule shortcut --coverage-fraction 0 --device cpu --seed 0 \
  --out "$out/f2d2_shortcut_checkerboard_data_path.pt"
# The checkerboard teacher hidden in a plain nn.Module (no warm start), distilled from 50,000 samples through the
# front door f2d2mini.distill with the Shortcut rule's defaults (chapter 8); bench own also reports it.
tmp=$(mktemp -d)
f2d2mini bench own --parts checkerboard --out "$tmp" --json "$tmp/own.json" --device cpu
cp "$tmp/f2d2_shortcut_checkerboard_plain_module.pt" "$out/"
rm -r "$tmp"
# U-Net teacher and Shortcut flow maps on scikit-learn's 8x8 digits (recipes in f2d2mini.images), with coverage of
# the cube [-1, 1]^64 and on the data path alone (chapter 7 compares the two on images that are not digits).
# --checkpoint-every 0: no resumable NAME.state.pt is left beside the shipped files.
f2d2mini images teacher --data digits --device cpu --seed 0 --checkpoint-every 0
f2d2mini images distill --data digits --device cpu --seed 0 --checkpoint-every 0
f2d2mini images distill --data digits --coverage-fraction 0 --device cpu --seed 0 --checkpoint-every 0 \
  --out "$out/f2d2_shortcut_digits_data_path.pt"
# The MeanFlow (Eulerian) map of the same teacher (the digits recipe with MeanFlow's changes,
# f2d2mini.images.train.RULE_CHANGES: 3,000 steps, adaptive weight): chapter 6 guides it beside the Shortcut map.
f2d2mini images distill --data digits --rule meanflow --device cpu --seed 0 --checkpoint-every 0
# The MNIST CPU recipe's teacher and Shortcut map (f2d2mini.images.train.MNIST_CPU), trained on 9,000 real MNIST test
# images from ../shared/data/mnist (or $F2D2MINI_MNIST), scored on the other 1,000: about 25 minutes on 2 cores.
python benchmarks/mnist_cpu.py --out "$out" --seed 0
