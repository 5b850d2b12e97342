#!/usr/bin/env bash
# Makes the shipped checkpoints in data/checkpoints/ (tensors + JSON, loaded with f2d2mini.load).
# Run from the repository root in the project's environment: bash scripts/make_checkpoints.sh
# Each teacher trains in about 3 minutes on 2 CPU cores (default TeacherConfig, seed 0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for density in checkerboard gaussians8; do
  f2d2mini teacher --density "$density" --device cpu --seed 0
done
# F2D2 flow maps distilled from those teachers with each rule's defaults (train.distill_config(rule), coverage of
# [-6, 6]^2 included), about 4 minutes each on 2 cores; the Shortcut maps with twice their default steps (about 10
# minutes), so that covering the square costs them no accuracy on the data (benchmarks/results/f2d2.txt).
for density in checkerboard gaussians8; do
  f2d2mini distill --density "$density" --rule shortcut --steps 20000 --warm-steps 4000 --device cpu --seed 0
  f2d2mini distill --density "$density" --rule lsd --device cpu --seed 0
  f2d2mini distill --density "$density" --rule meanflow --device cpu --seed 0
done
# U-Net teacher and Shortcut flow map on scikit-learn's 8x8 digits (recipes in f2d2mini.images): about 3 and 12 minutes
# (the map's coverage bank of 2,000 teacher trajectories takes about half of its time).
f2d2mini images teacher --data digits --device cpu --seed 0
f2d2mini images distill --data digits --device cpu --seed 0
