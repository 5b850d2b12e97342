"""Opens a chapter in JupyterLab as a reader would, runs it, moves its controls and checks the picture changes.

Run:  ``python scripts/check_lab.py [--chapter 05_few_step_likelihood] [--keep DIR]``  (``make lab``).

A JupyterLab server starts on a free local port with private configuration and settings folders in which
``jupytext-config set-default-viewer markdown`` has run (so a ``.md`` chapter opens as a notebook, as the README
tells readers to set up), serving a temporary copy of ``book/`` (saves never touch the repository). Debian's
``chromium``, driven by Playwright with every request outside that server aborted, opens
``/lab/tree/book/<chapter>.md``, checks that it opened as a notebook, waits for the kernel, runs all cells
(``notebook:run-all-cells``) and waits until every code cell has run without an error output (except in cells
tagged ``raises-exception``). Then it moves each
control and requires that the picture beside it changes: the ``interact`` control (an ipywidgets dropdown or
slider: the output image's ``src`` must change) and the ``f2d2mini.plots.slider`` player (the shown frame must
change). Exits 1 with the reason on any failure, 0 when chromium is missing and ``--browser`` was not given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_pages import CHROMIUM_ARGS, VIEWPORT, find_chromium, offline_route  # noqa: E402

SERVER_TIMEOUT_S = 60
RUN_TIMEOUT_S = 300  # all cells of a fast-mode chapter take 10-40 s
CONTROL_TIMEOUT_MS = 15_000

_NOTEBOOK_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(w && w.content && w.content.model && w.sessionContext);
}"""
_KERNEL_IDLE_JS = """() => {
  const s = window.jupyterapp.shell.currentWidget.sessionContext.session;
  return !!(s && s.kernel && s.kernel.status === "idle");
}"""
_RUN_STATE_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = Array.from({length: w.content.model.cells.length}, (_, i) => w.content.model.cells.get(i));
  const code = cells.filter(c => c.type === "code");
  const expected = c => ((c.getMetadata ? c.getMetadata("tags") : c.metadata.tags) || [])
                          .includes("raises-exception");
  const errors = code.filter(c => !expected(c) && c.outputs.toJSON().some(o => o.output_type === "error"))
                     .map(c => c.outputs.toJSON().find(o => o.output_type === "error"))
                     .map(o => `${o.ename}: ${o.evalue}`);
  return {code: code.length, pending: code.filter(c => c.executionCount === null).length,
          kernel: w.sessionContext.session.kernel.status, errors};
}"""
_SHOWN_JS = """(selector) => {
  const box = document.querySelector(selector);
  if (!box) return null;
  const img = Array.from(box.querySelectorAll("img")).find(i => i.offsetParent !== null);
  return img ? img.src.slice(-80) : null;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(workdir: Path, port: int) -> tuple[subprocess.Popen, dict]:
    """Starts JupyterLab on ``port`` serving ``workdir/root`` with private config; returns (process, env)."""
    env = dict(os.environ)
    for name in ("config", "data", "runtime", "settings", "workspaces"):
        (workdir / name).mkdir(parents=True, exist_ok=True)
    env.update(JUPYTER_CONFIG_DIR=str(workdir / "config"), JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(workdir / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(workdir / "workspaces"), PYTHONUNBUFFERED="1")
    env.setdefault("F2D2MINI_FAST", "1")
    bindir = Path(sys.executable).parent
    config_tool = shutil.which("jupytext-config", path=str(bindir)) or shutil.which("jupytext-config")
    subprocess.run([config_tool, "set-default-viewer", "markdown"], env=env, check=True, capture_output=True)
    log = open(workdir / "lab.log", "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={workdir / 'root'}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        cwd=workdir / "root", env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}; see {workdir / 'lab.log'}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as reply:
                json.load(reply)
            return process, env
        except OSError:
            time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"jupyter lab did not answer within {SERVER_TIMEOUT_S} s; see {workdir / 'lab.log'}")


def change_interact(page) -> str:
    """Moves the first ``interact`` control; returns a problem or ''."""
    box = ".widget-interact"
    page.wait_for_selector(f"{box} img", timeout=CONTROL_TIMEOUT_MS)
    before = page.evaluate(_SHOWN_JS, box)
    select = page.locator(f"{box} select").first
    if select.count():
        options = select.locator("option").all_text_contents()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        select.select_option(label=next(o for o in options if o != current))
        kind = "dropdown"
    else:
        handle = page.locator(f"{box} .noUi-handle").first
        at_end = handle.evaluate("h => h.getAttribute('aria-valuenow') === h.getAttribute('aria-valuemax')")
        handle.focus()
        page.wait_for_timeout(200)  # JupyterLab moves the focus to the cell the first time
        handle.focus()
        handle.press("ArrowLeft" if at_end else "ArrowRight")
        kind = "slider"
    try:
        page.wait_for_function(f"(before) => ({_SHOWN_JS})({json.dumps(box)}) !== before", arg=before,
                               timeout=CONTROL_TIMEOUT_MS)
    except Exception:  # Playwright's TimeoutError
        return f"moving the interact {kind} did not change the picture"
    return ""


def change_player(page) -> str:
    """Moves the first ``f2d2mini.plots.slider`` player; returns a problem or ''."""
    box = ".f2d2mini-slider"
    if page.locator(box).count() == 0:
        return "no f2d2mini slider in the notebook's outputs"
    before = page.evaluate(_SHOWN_JS, box)
    slider = page.locator(f"{box} input[type=range]").first
    at_end = slider.evaluate("r => r.value === r.max")
    slider.scroll_into_view_if_needed()
    size = slider.bounding_box()
    # a click on the track, as a reader would (JupyterLab moves the keyboard focus to the cell on first focus)
    slider.click(position={"x": size["width"] * (0.05 if at_end else 0.95), "y": size["height"] / 2})
    page.wait_for_timeout(100)
    return "" if page.evaluate(_SHOWN_JS, box) not in (before, None) else "moving the slider player did nothing"


def check_chapter(browser, port: int, chapter: str) -> list[str]:
    outside: list[str] = []
    local = (f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", "data:", "blob:", "about:")
    route = offline_route(local, outside)

    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.route("**/*", route)
        started = time.perf_counter()
        # ?reset: a fresh workspace, so no notebook of an earlier chapter is restored beside this one
        page.goto(f"http://127.0.0.1:{port}/lab/tree/book/{chapter}.md?reset", wait_until="load")
        try:
            page.wait_for_function(_NOTEBOOK_JS, timeout=SERVER_TIMEOUT_S * 1000)
        except Exception:
            return [f"{chapter}.md did not open as a notebook (jupytext default viewer)"]
        page.wait_for_function(_KERNEL_IDLE_JS, timeout=SERVER_TIMEOUT_S * 1000)
        page.evaluate("""() => {
          const app = window.jupyterapp;
          app.shell.activateById(app.shell.currentWidget.id);  // run-all acts on the active notebook
          return app.commands.execute("notebook:run-all-cells");
        }""")
        deadline = time.monotonic() + RUN_TIMEOUT_S
        state = page.evaluate(_RUN_STATE_JS)
        while time.monotonic() < deadline and (state["pending"] or state["kernel"] != "idle"):
            if state["errors"]:
                break
            page.wait_for_timeout(500)
            state = page.evaluate(_RUN_STATE_JS)
        ran = time.perf_counter() - started
        if state["errors"]:
            return [f"a cell failed: {state['errors'][0]}"]
        if state["pending"]:
            return [f"{state['pending']} of {state['code']} code cells had not run after {RUN_TIMEOUT_S} s"]
        print(f"{chapter}: {state['code']} code cells ran in {ran:.0f} s", flush=True)
        problems = [p for p in (change_interact(page), change_player(page)) if p]
        if outside:
            print(f"  ({len(outside)} request(s) to outside JupyterLab blocked, first: {outside[0]})")
        return problems
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", action="append", help="chapter file stem (default: 05_few_step_likelihood)")
    parser.add_argument("--browser", action="store_true", help="fail when chromium is missing (CI)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (server log: lab.log)")
    args = parser.parse_args(argv)
    chapters = args.chapter or ["05_few_step_likelihood"]
    chromium = find_chromium()
    if chromium is None:
        print("JupyterLab check SKIPPED: chromium not found (apt-get install -y chromium to run it)")
        return 1 if args.browser else 0
    from playwright.sync_api import sync_playwright

    workdir = Path(args.keep or tempfile.mkdtemp(prefix="f2d2mini-lab-"))
    shutil.copytree(ROOT / "book", workdir / "root" / "book", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "_build"))
    port = free_port()
    process, _ = start_lab(workdir, port)
    failed = False
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                for chapter in chapters:
                    problems = check_chapter(browser, port, chapter)
                    print(f"{chapter}: {'; '.join(problems) or 'ok: the controls change the picture'}")
                    failed |= bool(problems)
            finally:
                browser.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
