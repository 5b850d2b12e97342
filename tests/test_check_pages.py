"""scripts/check_pages.py finds missing figures and widgets without a first frame in a built page."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_pages.py"
spec = importlib.util.spec_from_file_location("check_pages", SCRIPT)
check_pages = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_pages)


def _page(tmp_path, outputs, image_bytes=b"png"):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(image_bytes)
    state = {"state": {"box": {"state": {"children": ["IPY_MODEL_out"]}}, "out": {"state": {"outputs": outputs}}}}
    page = tmp_path / "book" / "ch.html"
    page.parent.mkdir()
    page.write_text(
        '<img alt="" src="../_images/a.png" />'
        f'<script type="application/vnd.jupyter.widget-state+json">{json.dumps(state)}</script>'
        '<script type="application/vnd.jupyter.widget-view+json">{"model_id": "box"}</script>')
    return page


def test_a_widget_whose_output_holds_a_picture_passes(tmp_path):
    page = _page(tmp_path, [{"output_type": "display_data", "data": {"image/png": "iVBOR"}}])
    assert check_pages.check_page(page) == ([], 1, 1)


def test_an_empty_widget_and_an_empty_image_are_reported(tmp_path):
    page = _page(tmp_path, [], image_bytes=b"")
    problems, n_images, n_widgets = check_pages.check_page(page)
    assert (n_images, n_widgets) == (1, 1)
    assert any("missing image" in p for p in problems) and any("shows no picture" in p for p in problems)
