"""Real MNIST on the CPU, in one command (about 25 minutes on 2 cores; progress bars throughout).

Trains a U-Net teacher and its F2D2 flow map on 9,000 of MNIST's test images, scores the other 1,000 (the
teacher's dopri5 bits per dim against K = 1, 2, 4, 8 jumps and the first-order reversal), draws a sample grid:

    python benchmarks/mnist_cpu.py            # writes benchmarks/results/mnist_cpu.json and mnist_cpu.png
    python benchmarks/mnist_cpu.py --quick --json /tmp/mnist_quick.json   # a minute: checks that it all runs

It is ``f2d2mini bench mnist`` with these defaults (the logic lives in ``f2d2mini/bench/mnist.py``); any of its
options may follow (``--mnist DIR``, ``--train-split train`` on a machine with network, ...). MNIST's t10k files
are looked for in ``--mnist DIR``, else ``$F2D2MINI_MNIST``, else ``shared/data/mnist`` beside the repository.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's f2d2mini

from f2d2mini.cli import main  # noqa: E402

DEFAULTS = ["--out", str(ROOT / "data" / "checkpoints"),
            "--json", str(ROOT / "benchmarks" / "results" / "mnist_cpu.json"), "--device", "cpu"]

if __name__ == "__main__":
    sys.exit(main(["bench", "mnist", *DEFAULTS, *sys.argv[1:]]))
