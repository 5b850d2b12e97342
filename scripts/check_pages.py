"""Looks at the built book as a reader would: every chapter page has its figures, and every widget its first state.

Run after ``jupyter-book build .``:  ``python scripts/check_pages.py [--screenshots DIR]``.
For each page of ``_build/html/book/`` it checks that each ``<img>`` points at a non-empty file and that each
widget view embedded by myst-nb names a model saved in the page's widget state, whose output area holds a
picture (the first frame a reader sees without a kernel). With ``--screenshots`` it also renders every page in
headless Chromium (Debian's ``chromium`` package) to a PNG, to look at. Exits 1 and names the page on any failure.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HTML = Path("_build/html")
WINDOW = "1280,6000"  # wide enough for the book theme's desktop layout, tall enough for most chapters
CHROMIUM_TIMEOUT_S = 60
STATE_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-state\+json">(.*?)</script>', re.S)
VIEW_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">(.*?)</script>', re.S)
IMG_RE = re.compile(r'<img[^>]*\bsrc="([^"]+)"')


def _holds_picture(model_id: str, models: dict, seen: set[str] | None = None) -> bool:
    """True if the widget ``model_id`` or one of its children is an output area showing an image."""
    seen = seen if seen is not None else set()
    if model_id in seen or model_id not in models:
        return False
    seen.add(model_id)
    state = models[model_id].get("state", {})
    if any("image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
           for out in state.get("outputs", [])):
        return True
    children = [c.removeprefix("IPY_MODEL_") for c in state.get("children", [])]
    return any(_holds_picture(child, models, seen) for child in children)


def check_page(page: Path) -> tuple[list[str], int, int]:
    """Returns (problems, number of images, number of widgets) of one built page."""
    text, problems = page.read_text(encoding="utf-8"), []
    images = [src for src in IMG_RE.findall(text) if not src.startswith(("http", "data:"))]
    for src in images:
        file = (page.parent / src).resolve()
        if not file.is_file() or file.stat().st_size == 0:
            problems.append(f"missing image {src}")
    states = [json.loads(block) for block in STATE_RE.findall(text)]
    models = {k: v for state in states for k, v in state.get("state", {}).items()}
    views = [json.loads(block)["model_id"] for block in VIEW_RE.findall(text)]
    for model_id in views:
        if model_id not in models:
            problems.append(f"widget {model_id} has no saved state")
        elif not _holds_picture(model_id, models):
            problems.append(f"widget {model_id} shows no picture in its saved state")
    return problems, len(images), len(views)


def screenshot(page: Path, out: Path) -> None:
    """Renders ``page`` with headless Chromium into ``out`` (PNG)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: install Debian's `chromium` package to take screenshots")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WINDOW}", f"--screenshot={out.resolve()}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=CHROMIUM_TIMEOUT_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML, help="built book (default: %(default)s)")
    parser.add_argument("--screenshots", type=Path, help="folder for one PNG per page, rendered by Chromium")
    args = parser.parse_args(argv)
    pages = sorted((args.html / "book").glob("*.html"))
    if not pages:
        print(f"no pages under {args.html / 'book'}: build the book first (make book)", file=sys.stderr)
        return 1
    failed = False
    for page in pages:
        problems, n_images, n_widgets = check_page(page)
        chapter = page.stem != "index"
        if chapter and n_images == 0:
            problems.append("no figures")
        print(f"{page.name:32s} figures {n_images:3d}  widgets {n_widgets:2d}  {'; '.join(problems) or 'ok'}")
        failed |= bool(problems)
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            screenshot(page, args.screenshots / f"{page.stem}.png")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
