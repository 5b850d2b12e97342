#!/usr/bin/env bash
# Makes the shipped 2-D checkpoints in data/checkpoints/ (tensors + JSON, loaded with f2d2mini.load).
# Run from the repository root in the project's environment: bash scripts/make_checkpoints.sh
# Each teacher trains in about 3 minutes on 2 CPU cores (default TeacherConfig, seed 0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for density in checkerboard gaussians8; do
  f2d2mini teacher --density "$density" --device cpu --seed 0
done
# F2D2 flow maps distilled from those teachers with each rule (its defaults, train.distill_config(rule), seed 0),
# about 5 minutes each.
for rule in lsd shortcut meanflow; do
  for density in checkerboard gaussians8; do
    f2d2mini distill --density "$density" --rule "$rule" --device cpu --seed 0
  done
done
# U-Net teacher and Shortcut flow map on scikit-learn's 8x8 digits (recipes in f2d2mini.images), 4-5 minutes each.
f2d2mini images teacher --data digits --device cpu --seed 0
f2d2mini images distill --data digits --device cpu --seed 0
