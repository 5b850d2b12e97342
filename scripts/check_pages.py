"""Looks at the built book as a reader would, offline: figures, formulas, tables and sliders on every page.

Run after ``jupyter-book build .``:  ``python scripts/check_pages.py [--browser | --no-browser] [--screenshots DIR]``.

Static checks, on the HTML files of ``_build/html/book/``: every ``<img>`` points at a non-empty file (or is an
inline ``data:`` image), a chapter page has figures and weighs at most ``MAX_PAGE_MB`` with its images, no page
embeds an ipywidgets view (``interact`` output is a frozen picture without a kernel: a dead control), and no cell
output shows a traceback, a stray repr (``np.float64(...)``, ``<Figure ...>``) or a download message.

Browser checks, with Debian's ``chromium`` driven by Playwright (``pip install playwright``; never run
``playwright install``: it downloads a browser): each page is opened with every request that leaves the machine
aborted, then the check waits for MathJax and requires that every formula is typeset (no raw ``\\(`` left, no
MathJax error), that no markdown table is left as text, that every range input changes the picture beside it
when moved (the element's screenshot before and after must differ), that no console error was logged and that no
request tried to leave the machine. Every chapter page needs at least one working slider. By default the browser
checks run when chromium is found and are skipped with a message otherwise; ``--browser`` requires them.

Exits 1 and names the page and the problem on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

HTML = Path("_build/html")
MAX_PAGE_MB = 5.0  # a chapter page with its images
VIEWPORT = {"width": 1280, "height": 900}  # the book theme's desktop layout
LOAD_TIMEOUT_MS = 60_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
IMG_RE = re.compile(r'<img[^>]*\bsrc="([^"]+)"')
REDIRECT_RE = re.compile(r'<meta http-equiv="refresh"[^>]*url=([^"]+)"', re.I)  # the site's landing page
WIDGET_VIEW_RE = re.compile(r'<script type="application/vnd\.jupyter\.widget-view\+json">')
OUTPUT_RE = re.compile(r'<div class="cell_output docutils container">(.*?)(?=<div class="cell[ "]|</section>|\Z)',
                       re.S)
STRAY_RE = re.compile(r"Traceback \(most recent call last\)|np\.float\d+\(|&lt;Figure size|&lt;matplotlib\.|"
                      r"Downloading:? https?://|\bFile /")


def check_page(page: Path) -> tuple[list[str], int, int, float]:
    """Static checks of one built page: returns (problems, images, widget views, megabytes with its images)."""
    text, problems = page.read_text(encoding="utf-8"), []
    images = IMG_RE.findall(text)
    size = page.stat().st_size
    for src in images:
        if src.startswith("data:"):
            continue
        if src.startswith(("http:", "https:", "//")):
            problems.append(f"image from outside the build: {src}")
            continue
        file = (page.parent / src.split("?")[0]).resolve()
        if not file.is_file() or file.stat().st_size == 0:
            problems.append(f"missing image {src}")
        else:
            size += file.stat().st_size
    for output in OUTPUT_RE.findall(text):
        if stray := STRAY_RE.search(output):
            problems.append(f"cell output shows {stray.group(0)!r} (a traceback, stray repr or download)")
    views = len(WIDGET_VIEW_RE.findall(text))
    if views:
        problems.append(f"{views} ipywidgets view(s) embedded: frozen without a kernel (use f2d2mini.plots.slider)")
    megabytes = size / 1e6
    if megabytes > MAX_PAGE_MB:
        problems.append(f"page weighs {megabytes:.1f} MB with its images (limit {MAX_PAGE_MB} MB)")
    return problems, len(images), views, megabytes


def find_chromium() -> str | None:
    """Debian's chromium (or chromium-browser) on PATH, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


# Runs in the page once MathJax is done: formulas, raw TeX and raw tables outside code, and the range inputs.
_INSPECT_JS = r"""() => {
  // prose and cell outputs; not code (cell inputs, code blocks, inline code)
  const skip = "script, style, textarea, .math, mjx-container, .cell_input, code, " +
               "div[class*='highlight-']:not(.output)";
  const texts = [];
  const walker = document.createTreeWalker(document.querySelector("main") || document.body,
                                           NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) texts.push(n.textContent);
  }
  const prose = texts.join(" ");
  const maths = Array.from(document.querySelectorAll(".math"));
  const untypeset = maths.filter(m => !m.querySelector("mjx-container") || /\\[(\[]/.test(
      Array.from(m.childNodes).filter(c => c.nodeType === 3).map(c => c.textContent).join("")));
  return {
    maths: maths.length,
    typeset: document.querySelectorAll("mjx-container").length,
    untypeset: untypeset.map(m => m.textContent.slice(0, 60)),
    rawTex: (prose.match(/\\\(|\\\[|\$\$/g) || []).length,
    errors: document.querySelectorAll("mjx-merror").length,
    rawTables: (prose.match(/\|\s*:?(-{3,}|[\u2013\u2014]+):?\s*\|/g) || []).length,  // smartquotes: --- to an em dash
    tables: document.querySelectorAll("main table").length,
    ranges: document.querySelectorAll("input[type=range]").length,
  };
}"""

# The picture a range input controls: the visible image of its slider player, or of the nearest ancestor that
# holds one; marked with data-check-picture so that Playwright can take its screenshot.
_MARK_CONTROL_JS = r"""(index) => {
  const input = document.querySelectorAll("input[type=range]")[index];
  let box = input.closest(".f2d2mini-slider");
  for (let e = input.parentElement; !box && e && e !== document.body; e = e.parentElement) {
    if (e.querySelector("img, canvas, svg")) box = e;
  }
  if (!box) return null;
  document.querySelectorAll("[data-check-picture]").forEach(e => e.removeAttribute("data-check-picture"));
  const shown = Array.from(box.querySelectorAll("img, canvas, svg")).find(e => e.getClientRects().length > 0);
  if (!shown) return null;
  shown.setAttribute("data-check-picture", "");
  return {value: input.value, max: input.max, src: shown.src || shown.outerHTML.slice(0, 200)};
}"""


def offline_route(local: tuple[str, ...], outside: list[str]):
    """A Playwright route handler: requests to ``local`` URL prefixes go through, every other one is aborted and
    recorded in ``outside``."""

    def route(r):
        if r.request.url.startswith(local):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    return route


def check_in_browser(page_obj, page: Path, screenshot: Path | None = None) -> tuple[list[str], dict]:
    """Opens ``page`` offline in the Playwright ``page_obj``; returns (problems, counts)."""
    outside, console_errors = [], []
    page_obj.route("**/*", offline_route(LOCAL_SCHEMES, outside))
    page_obj.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page_obj.on("pageerror", lambda e: console_errors.append(str(e)))
    page_obj.goto(page.resolve().as_uri(), wait_until="load", timeout=LOAD_TIMEOUT_MS)
    problems = []
    has_mathjax = page_obj.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)")
    if has_mathjax:
        page_obj.evaluate("() => MathJax.startup.promise")
    found = page_obj.evaluate(_INSPECT_JS)
    if found["maths"] and not has_mathjax:
        problems.append(f"{found['maths']} formulas but MathJax did not load")
    if found["untypeset"] or found["rawTex"]:
        problems.append(f"{len(found['untypeset']) + found['rawTex']} raw LaTeX fragment(s), e.g. "
                        f"{(found['untypeset'] or ['in the text'])[0]!r}")
    if found["errors"]:
        problems.append(f"{found['errors']} MathJax error(s)")
    if found["rawTables"]:
        problems.append(f"{found['rawTables']} markdown table(s) shown as text")
    working = 0
    for index in range(found["ranges"]):
        before = page_obj.evaluate(_MARK_CONTROL_JS, index)
        if before is None:
            problems.append(f"slider {index + 1} controls no picture")
            continue
        picture = page_obj.locator("[data-check-picture]")
        picture.scroll_into_view_if_needed()
        shot_before = picture.screenshot()
        slider = page_obj.locator("input[type=range]").nth(index)
        slider.focus()
        slider.press("ArrowLeft" if before["value"] == before["max"] else "ArrowRight")
        page_obj.wait_for_timeout(50)
        after = page_obj.evaluate(_MARK_CONTROL_JS, index)
        moved = after is not None and after["value"] != before["value"]
        if moved and (after["src"] != before["src"] or picture.screenshot() != shot_before):
            working += 1
        else:
            problems.append(f"slider {index + 1} is dead: moving it does not change the picture")
    if screenshot is not None:
        page_obj.screenshot(path=str(screenshot), full_page=True)
    if console_errors:
        problems.append(f"{len(console_errors)} console error(s), first: {console_errors[0][:160]}")
    if outside:
        problems.append(f"{len(outside)} request(s) tried to leave the machine, first: {outside[0]}")
    counts = {"formulas": found["typeset"], "tables": found["tables"], "sliders": found["ranges"],
              "working": working}
    return problems, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML, help="built book (default: %(default)s)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--browser", action="store_true", help="require the browser checks (fail without chromium)")
    group.add_argument("--no-browser", action="store_true", help="static checks only")
    parser.add_argument("--screenshots", type=Path, help="folder for one full-page PNG per page (browser checks)")
    args = parser.parse_args(argv)
    pages = sorted((args.html / "book").glob("*.html"))
    pages += sorted(args.html.glob("*.html")) if pages else []  # the landing redirect, search and index pages
    if not pages:
        print(f"no pages under {args.html / 'book'}: build the book first (make book)", file=sys.stderr)
        return 1
    chromium = None if args.no_browser else find_chromium()
    if args.browser and chromium is None:
        print("chromium not found: install Debian's `chromium` package (apt-get install -y chromium)",
              file=sys.stderr)
        return 1
    if chromium is None and not args.no_browser:
        print("browser checks SKIPPED: chromium not found (apt-get install -y chromium to run them)")
    failed = False
    started = time.perf_counter()
    with _browser(chromium) as browser:
        for page in pages:
            problems, n_images, _, megabytes = check_page(page)
            chapter = page.parent.name == "book" and page.stem != "index"
            if chapter and n_images == 0:
                problems.append("no figures")
            line = f"{page.relative_to(args.html).as_posix():37s} {megabytes:5.2f} MB  figures {n_images:3d}"
            redirect = REDIRECT_RE.search(page.read_text(encoding="utf-8"))
            if redirect:
                line += f"  redirects to {redirect.group(1)}"
            elif browser is not None:
                context = browser.new_context(viewport=VIEWPORT, service_workers="block")
                shot = None
                if args.screenshots:
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                    shot = args.screenshots / f"{page.stem}.png"
                try:
                    found, counts = check_in_browser(context.new_page(), page, shot)
                finally:
                    context.close()
                problems += found
                if chapter and counts["working"] == 0:
                    problems.append("no working slider")
                line += (f"  formulas {counts['formulas']:3d}  tables {counts['tables']:2d}"
                         f"  sliders {counts['working']}/{counts['sliders']} move")
            print(f"{line}  {'; '.join(problems) or 'ok'}", flush=True)
            failed |= bool(problems)
    if chromium is not None:
        print(f"browser checks: {len(pages)} pages offline in {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


class _browser:
    """Context manager: a headless Playwright browser on Debian's chromium, or None when ``executable`` is None."""

    def __init__(self, executable: str | None):
        self.executable, self.playwright, self.browser = executable, None, None

    def __enter__(self):
        if self.executable is None:
            return None
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as err:
            raise SystemExit("the browser checks need Playwright: pip install playwright "
                             "(no `playwright install`: Debian's chromium is used)") from err
        os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(executable_path=self.executable, args=CHROMIUM_ARGS)
        return self.browser

    def __exit__(self, *exc):
        if self.browser is not None:
            self.browser.close()
        if self.playwright is not None:
            self.playwright.stop()
        return False


if __name__ == "__main__":
    sys.exit(main())
