#!/usr/bin/env bash
# One-command GPU check (no network): trains an MNIST teacher and an F2D2 flow map on 9,000 MNIST test images,
# prints bits per dim of the other 1,000 (teacher ODE vs K = 1, 2, 4, 8) and the CIFAR-10 config's images/s and
# peak memory on random data, as one table. Target: <= 6 minutes on one H100.
#   bash scripts/gpu_check.sh [--mnist DIR] [--json results.json]
#   bash scripts/gpu_check.sh --tiny --device cpu      # any CPU, < 2 minutes: checks that everything runs
# MNIST: --mnist DIR, else $F2D2MINI_MNIST, else shared/data/mnist beside the repository. The JSON goes to
# benchmarks/results/gpu.json unless --json says otherwise. Uses this working tree's f2d2mini via PYTHONPATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m f2d2mini.cli bench gpu "$@"
