"""Moving between images, the image list (unreadable files, filters, search, status) and display."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.e2e.harness import Driver, Launcher, approx_geometry
from tests.e2e.projects import make_project

pytestmark = pytest.mark.e2e

CTRL = Qt.KeyboardModifier.ControlModifier


def row(app: Driver, name: str) -> str:
    return f'#images .row[data-id="{app.image_id(name)}"]'


def shown_name(app: Driver) -> str:
    return str(app.js("document.querySelector('.viewer-head .image-name').textContent"))


def test_shapes_belong_to_the_image_they_were_drawn_on(app: Driver) -> None:
    assert app.current_name() == "a_first.png" and shown_name(app) == "a_first.png"
    app.key(Qt.Key.Key_B)
    app.drag([(10, 10), (100, 80)])
    app.key(Qt.Key.Key_Right)
    app.settle()
    assert app.current_name() == "b_second.png" and shown_name(app) == "b_second.png"
    assert app.page_shapes() == [] and app.drawn_count() == 0
    app.drag([(50, 50), (300, 250)])
    app.key(Qt.Key.Key_D)
    app.settle()
    assert app.current_name() == "c_third.png"
    app.key(Qt.Key.Key_O)
    app.click(120, 300)
    app.settle()

    app.click_element(row(app, "a_first.png"))
    app.settle()
    assert app.current_name() == "a_first.png"
    assert app.js(f"document.querySelector('{row(app, 'a_first.png')}').classList.contains('current')")
    store = {name: app.store_shapes(app.image_id(name)) for name in ("a_first.png", "b_second.png", "c_third.png")}
    assert [s["kind"] for s in store["a_first.png"]] == ["box"]
    assert approx_geometry(store["a_first.png"][0]["geometry"], [10, 10, 100, 80], 1.0)
    assert [s["kind"] for s in store["b_second.png"]] == ["box"]
    assert approx_geometry(store["b_second.png"][0]["geometry"], [50, 50, 300, 250], 1.0)
    assert [s["kind"] for s in store["c_third.png"]] == ["point"]
    assert app.page_shapes() == store["a_first.png"] and app.drawn_count() == 1

    # The list's shape counts follow the edits.
    counts = app.js("[...document.querySelectorAll('#images .row')].map((r) => [r.dataset.id, "
                    "r.querySelector('.row-shapes').textContent])")
    assert sorted(counts) == sorted([[str(app.image_id(n)), "1 shape"] for n in store])

    app.key(Qt.Key.Key_A)  # A / left arrow: previous; at the first image it stays
    app.key(Qt.Key.Key_Left)
    app.settle()
    assert app.current_name() == "a_first.png"


def test_undo_of_an_edit_on_another_image_goes_back_to_it(app: Driver) -> None:
    app.key(Qt.Key.Key_Right)
    app.key(Qt.Key.Key_O)
    app.settle()
    app.click(200, 150)
    app.settle()
    second = app.image_id("b_second.png")
    assert len(app.store_shapes(second)) == 1
    app.click_element(row(app, "c_third.png"))
    app.settle()  # wait for the picture: a click lands on what is shown
    app.key(Qt.Key.Key_O)
    app.click(30, 30)
    app.click_element(row(app, "a_first.png"))
    app.settle()
    assert len(app.store_shapes(app.image_id("c_third.png"))) == 1

    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert app.current_name() == "c_third.png" and shown_name(app) == "c_third.png"
    assert app.page_shapes() == [] and app.store_shapes(app.image_id("c_third.png")) == []
    app.key(Qt.Key.Key_Z, CTRL)
    app.settle()
    assert app.current_name() == "b_second.png"
    assert app.page_shapes() == [] and app.store_shapes(second) == []
    app.key(Qt.Key.Key_Y, CTRL)
    app.settle()
    assert app.current_name() == "b_second.png" and len(app.page_shapes()) == 1 == app.drawn_count()
    assert app.page_shapes() == app.store_shapes(second)


def test_a_click_while_the_next_image_loads_is_not_saved_to_it(app: Driver) -> None:
    """Click a list row, then at once click the picture (still the old one) with the point tool.

    Both clicks reach the page before the bridge can answer the new image's calls, because this
    thread (which serves the bridge) does not run its event loop in between: deterministic.
    """
    app.key(Qt.Key.Key_O)
    app.settle()
    row_at = app.element_center(row(app, "c_third.png"))
    on_old = app.client_of(300, 230)  # on a_first (320 x 240); outside c_third (240 x 320)
    for p in (row_at, on_old):
        QTest.mouseMove(app.target, p)
        QTest.mousePress(app.target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
        QTest.mouseRelease(app.target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
        app.sent += 2
    app.settle()
    assert app.current_name() == "c_third.png"
    # Dropping the click or saving it to a_first (the picture it was made on) are both fine.
    assert app.store_shapes(app.image_id("c_third.png")) == [], "a shape from a_first's picture landed on c_third"
    assert "still loading" in app.js("document.querySelector('#statusbar').textContent")


def test_unreadable_files_are_listed_with_their_reason(launcher: Launcher, tmp_path: Path) -> None:
    folder = make_project(tmp_path / "mixed", {"b_good.png": (200, 150), "d_good.png": (120, 90)})
    (folder / "a_empty.jpg").write_bytes(b"")
    (folder / "c_notes.png").write_text("these are my field notes, not a picture\n", encoding="utf-8")
    app = launcher(folder)
    assert app.list_names() == ["a_empty.jpg", "b_good.png", "c_notes.png", "d_good.png"]
    # The first image is the empty one: the viewer says why instead of showing it.
    assert app.current_name() == "a_empty.jpg"
    app.wait_for("!!document.querySelector('.image-error .error-text')", what="the image error view")
    assert "empty" in app.js("document.querySelector('.image-error .error-text').textContent")

    reasons = app.wait_for("""(() => { const bad = [...document.querySelectorAll('#images .row.has-error')];
        return bad.length === 2 && bad.map((r) => [r.querySelector('.row-name').textContent,
          r.querySelector('.row-error').textContent, r.querySelector('.row-error').title]); })()""",
                           what="both broken files flagged in the list")
    by_name = {name: (label, reason) for name, label, reason in reasons}
    assert by_name["a_empty.jpg"][0] == "Unreadable" and "empty" in by_name["a_empty.jpg"][1]
    assert by_name["c_notes.png"][0] == "Unreadable" and "not an image" in by_name["c_notes.png"][1]
    records = {im["name"]: im for im in app.api.require_project().images()}
    assert records["c_notes.png"]["error"] == by_name["c_notes.png"][1]
    assert records["b_good.png"]["error"] is None and records["b_good.png"]["width"] == 200

    # The broken files can be filtered; the good ones still open and take shapes.
    app.click_text("#images .chip .chip-label", "Unreadable")
    app.settle()
    assert sorted(app.list_names()) == ["a_empty.jpg", "c_notes.png"]
    app.click_text("#images .chip .chip-label", "All")
    app.click_element(row(app, "b_good.png"))
    app.settle()
    app.key(Qt.Key.Key_O)
    app.click(50, 50)
    app.settle()
    assert len(app.store_shapes(app.image_id("b_good.png"))) == 1


def test_filter_search_and_mark_done(app: Driver) -> None:
    app.key(Qt.Key.Key_D, CTRL)  # a_first done, on to b_second
    app.settle()
    assert app.current_name() == "b_second.png"
    assert app.api.require_project().image(app.image_id("a_first.png"))["status"] == "done"
    badge = app.js(f"document.querySelector('{row(app, 'a_first.png')} .badge').textContent")
    assert badge == "Done"
    assert app.js("document.querySelector('#images .progress-text').textContent") == "1 of 3 done"

    app.click_text("#images .chip .chip-label", "Done")
    app.settle()
    assert app.list_names() == ["a_first.png"]
    app.click_text("#images .chip .chip-label", "New")
    app.settle()
    assert app.list_names() == ["b_second.png", "c_third.png"]

    app.click_element("#images input.search-input")
    app.type_text("THIRD")  # matching ignores case
    app.wait_for("window.fieldmark.state.visible.length === 1", what="the search to apply")
    app.settle()
    assert app.list_names() == ["c_third.png"]
    app.key(Qt.Key.Key_Escape)  # in the search field: clears it
    app.wait_for("window.fieldmark.state.visible.length === 2", what="the search to clear")
    app.click_text("#images .chip .chip-label", "All")
    app.settle()
    assert app.list_names() == ["a_first.png", "b_second.png", "c_third.png"]


def _tiff_project(tmp_path: Path) -> Path:
    folder = make_project(tmp_path / "scope", {"a_first.png": (120, 90)})
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    planes = np.stack([xx * 1000, yy * 1000, np.full((h, w), 30000) + (xx % 2)]).astype(np.uint16)
    tifffile.imwrite(folder / "b_cells.tif", planes, photometric="minisblack")
    return folder


def _sample(app: Driver, points: list[tuple[float, float]]) -> list[int]:
    """Red values of the canvas under image points (the displayed pixels)."""
    out = []
    for x, y in points:
        c = app.js(f"window.fieldmark.canvas.imageToClient({x}, {y})")
        out.append(app.js(f"""(() => {{ const cv = document.querySelector('canvas.label-canvas');
            const r = cv.getBoundingClientRect(); const d = devicePixelRatio;
            return cv.getContext('2d').getImageData(Math.round(({c['x']} - r.left) * d),
              Math.round(({c['y']} - r.top) * d), 1, 1).data[0]; }})()"""))
    return out


def test_16_bit_channel_picker_changes_the_displayed_channel(launcher: Launcher, tmp_path: Path) -> None:
    app = launcher(_tiff_project(tmp_path))
    app.key(Qt.Key.Key_H)  # hide labels: only the pixels are sampled
    app.click_element(row(app, "b_cells.tif"))
    app.settle()
    tif = app.image_id("b_cells.tif")
    assert app.js("window.fieldmark.state.current.dtype") == "uint16"
    assert app.js("!document.querySelector('.display-controls').hidden")
    assert f"pixels/image/{tif}?page=0&channels=0,1,2&lo=0.5&hi=99.5" in app.pixel_urls()

    app.click_text(".display-controls .seg-btn", "Gray")
    app.settle()
    assert f"pixels/image/{tif}?page=0&channels=0&lo=0.5&hi=99.5" in app.pixel_urls()
    left, right = _sample(app, [(6, 24), (58, 24)])
    assert right - left > 150, f"gray from channel 0 (x ramp) should go dark to bright: {left}, {right}"

    # The channel <select>: a page-side change event, as the native popup is not drawn offscreen.
    app.run("""const s = document.querySelector('select[aria-label="Gray channel"]');
        s.value = '1'; s.dispatchEvent(new Event('change')); await window.fieldmark.idle(); return 1;""")
    app.settle()
    assert f"pixels/image/{tif}?page=0&channels=1&lo=0.5&hi=99.5" in app.pixel_urls()
    assert app.js("window.fieldmark.state.imageError") is None
    left, right = _sample(app, [(6, 24), (58, 24)])
    top, bottom = _sample(app, [(32, 3), (32, 45)])
    assert abs(right - left) < 20 and bottom - top > 150, "channel 1 is a y ramp"
    assert app.api.require_project().image(tif)["error"] is None
