"""scripts/check_pages.py: the static checks of a built page, and the browser checks on small pages."""

import importlib.util
from pathlib import Path

import pytest

import f2d2mini as f2

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_pages.py"
spec = importlib.util.spec_from_file_location("check_pages", SCRIPT)
check_pages = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_pages)

WIDGET_VIEW = '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "box"}</script>'


def _page(tmp_path, body, image_bytes=b"png"):
    (tmp_path / "_images").mkdir(exist_ok=True)
    (tmp_path / "_images" / "a.png").write_bytes(image_bytes)
    page = tmp_path / "book" / "ch.html"
    page.parent.mkdir(exist_ok=True)
    page.write_text(f'<html><body><main><img alt="" src="../_images/a.png" />{body}</main></body></html>')
    return page


def _output(text):
    return f'<div class="cell_output docutils container"><pre>{text}</pre></div></div>'


def test_a_page_with_its_figure_passes(tmp_path):
    problems, n_images, n_views, megabytes = check_pages.check_page(_page(tmp_path, _output("K = 4: 0.15 nats")))
    assert (problems, n_images, n_views) == ([], 1, 0) and megabytes < 0.01


def test_an_empty_image_and_a_frozen_widget_are_reported(tmp_path):
    problems, n_images, n_views, _ = check_pages.check_page(_page(tmp_path, WIDGET_VIEW, image_bytes=b""))
    assert (n_images, n_views) == (1, 1)
    assert any("missing image" in p for p in problems) and any("frozen without a kernel" in p for p in problems)


@pytest.mark.parametrize("text", ["Traceback (most recent call last)", "(np.float64(0.0), np.float64(1.0))",
                                  "&lt;matplotlib.legend.Legend at 0x7f&gt;", "Downloading: https://x.org/w.pth"])
def test_tracebacks_stray_reprs_and_downloads_in_outputs_are_reported(tmp_path, text):
    problems, *_ = check_pages.check_page(_page(tmp_path, _output(text)))
    assert len(problems) == 1 and "cell output shows" in problems[0]


def test_a_heavy_page_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(check_pages, "MAX_PAGE_MB", 1e-6)
    problems, *_ = check_pages.check_page(_page(tmp_path, ""))
    assert any("page weighs" in p for p in problems)


def _slider_html():
    def draw(ax, slope):
        ax.plot([0, 1], [0, slope])
        ax.set_ylim(-2, 2)

    return f2.plots.slider(draw, [-1, 0, 1], label="slope", figsize=(2, 2))._repr_html_()


@pytest.fixture(scope="module")
def browser():
    chromium = check_pages.find_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")
    pytest.importorskip("playwright")
    with check_pages._browser(chromium) as browser:
        yield browser


def _in_browser(browser, page):
    context = browser.new_context(viewport=check_pages.VIEWPORT)
    try:
        return check_pages.check_in_browser(context.new_page(), page)
    finally:
        context.close()


def test_browser_a_working_slider_passes(browser, tmp_path):
    page = _page(tmp_path, _slider_html() + "<table><tr><td>1</td></tr></table>")
    problems, counts = _in_browser(browser, page)
    assert problems == [] and counts == {"formulas": 0, "tables": 1, "sliders": 1, "working": 1}


def test_browser_finds_dead_sliders_raw_tex_tables_and_outside_requests(browser, tmp_path):
    dead = '<div><input type="range" min="0" max="2" value="0"><img src="../_images/a.png"></div>'
    body = (dead + '<p>a formula left as source: \\(x^2\\)</p><p>| a | b |<br>| --- | --- |</p>'
            '<img src="https://example.org/outside.png">')
    problems, counts = _in_browser(browser, _page(tmp_path, body))
    text = "; ".join(problems)
    assert counts["sliders"] == 1 and counts["working"] == 0
    for expected in ("slider 1 is dead", "raw LaTeX", "markdown table", "leave the machine"):
        assert expected in text, (expected, text)


def test_browser_finds_a_table_whose_dashes_became_em_dashes(browser, tmp_path):
    problems, _ = _in_browser(browser, _page(tmp_path, "<p>| map | mean |error| |<br>|\u2014|\u2014|</p>"))
    assert "markdown table" in "; ".join(problems)
