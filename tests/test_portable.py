"""The repository runs from any folder on any machine: no tracked file names an absolute path of one machine
(data sit beside the repository, e.g. ``../shared/data/mnist``, or are named by a flag or an environment variable)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = r"(^|[^A-Za-z0-9_.~])/(work|root|home|opt|farm)/"  # home and work folders of the machines used here
URL = re.compile(r"https?://")


def test_no_absolute_machine_paths_in_tracked_files():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    found = subprocess.run(["git", "grep", "-n", "-I", "-E", MACHINE_PATH, "--", "."], cwd=ROOT,
                           capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr  # 1: no match
    hits = [line for line in found.stdout.splitlines() if not URL.search(line)]
    assert not hits, "absolute machine paths (use paths relative to the repository, flags or env vars):\n" + "\n".join(
        hits[:20])
