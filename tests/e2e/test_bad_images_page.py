"""The real page on a folder of every bad kind of file, two good photos and a huge scan.

The project opens; each bad file is listed as unreadable with its own reason (as the list row's
text and tooltip, and in the viewer when selected); the good photos display; the 24,000 x 16,000
scan is shown from a reduced bitmap that the canvas stretches to the full size, so shapes are
in full-resolution coordinates; no JavaScript error (the launcher fails the test on any).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from backend.imaging import SCREEN_MAX_PIXELS
from tests.e2e.harness import Driver, Launcher
from tests.reliability.bad_files import BAD_KINDS, W, encoded, write_all
from tests.reliability.test_large_image import flat_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
              pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")]

GOOD = {"aaa_good_photo.jpg": "JPEG", "zzz_good_photo.png": "PNG"}
BIG = ("big_scan.jpg", 24_000, 16_000)
FOUND_BY_DECODING = {"damaged_data.png", "damaged_scan.jpg", "huge.gif"}


def _select(app: Driver, name: str) -> None:
    app.run(f"await window.fieldmark.actions.selectImage({app.image_id(name)}); "
            "await window.fieldmark.idle(); return 1;")
    app.settle()


def _shown(app: Driver) -> dict:
    return app.js("""(() => { const c = window.fieldmark.canvas, s = window.fieldmark.state;
        return {error: s.imageError, w: c._imgW, h: c._imgH,
                natural: c._image ? [c._image.naturalWidth, c._image.naturalHeight] : null}; })()""")


def test_a_folder_of_bad_files_opens_and_explains_each(launcher: Launcher, tmp_path: Path) -> None:
    folder = tmp_path / "usb stick"
    kinds = write_all(folder, BAD_KINDS)
    for name, fmt in GOOD.items():
        (folder / name).write_bytes(encoded(fmt))
    flat_jpeg(folder / BIG[0], BIG[1], BIG[2])
    app = launcher(folder)
    assert sorted(app.list_names()[:3]) == app.list_names()[:3]  # the list is there, in order
    probed = [k for k in kinds if k not in FOUND_BY_DECODING]

    # Every file the probe can judge is flagged in the page's list, with the store's reason.
    flagged = app.wait_for(f"""(() => {{ const bad = window.fieldmark.state.images.filter((im) => im.error);
        return bad.length >= {len(probed)} && Object.fromEntries(bad.map((im) => [im.name, im.error])); }})()""",
                           timeout=30, what="every unreadable file flagged")
    for name in probed:
        assert f'"{name}"' in flagged[name] and kinds[name].reason in flagged[name], flagged.get(name)
    store = {im["name"]: im["error"] for im in app.api.require_project().images()}
    assert all(store[name] == flagged[name] for name in probed)

    # The rows on screen say "Unreadable" with the reason as their tooltip.
    rows = app.js("""[...document.querySelectorAll('#images .row.has-error')].map((r) =>
        [r.querySelector('.row-name').textContent, r.querySelector('.row-error').textContent,
         r.querySelector('.row-error').title])""")
    assert rows, "no unreadable row on screen"
    for name, label, reason in rows:
        assert label == "Unreadable" and reason == store[name]

    # Damage only decoding finds: selecting the file shows why, and the list keeps the flag.
    for name in sorted(FOUND_BY_DECODING):
        _select(app, name)
        text = app.wait_for("(() => { const e = document.querySelector('.image-error .error-text');"
                            " return e && e.textContent; })()", what=f"the reason {name} cannot be shown")
        assert f'"{name}"' in text and kinds[name].reason in text, text
        app.wait_for(f"!!window.fieldmark.state.byId.get({app.image_id(name)}).error",
                     what=f"{name} flagged in the list")
        assert app.js(f"window.fieldmark.state.byId.get({app.image_id(name)}).error") == text

    # The good photos display, at their size, with no error.
    for name in GOOD:
        _select(app, name)
        assert _shown(app) == {"error": None, "w": W, "h": 48, "natural": [W, 48]}, name

    # The huge scan: a reduced bitmap, drawn at the image's full size.
    name, width, height = BIG
    _select(app, name)
    app.wait_for("!!(window.fieldmark.canvas._image && window.fieldmark.canvas._image.naturalWidth)",
                 timeout=30, what="the big scan's pixels")
    shown = _shown(app)
    nat_w, nat_h = shown["natural"]
    assert (shown["error"], shown["w"], shown["h"]) == (None, width, height)
    assert nat_w * nat_h <= SCREEN_MAX_PIXELS and nat_w < width
    assert abs(nat_w / nat_h - width / height) < 0.01
    # A box drawn across the picture lands in full-resolution coordinates.
    app.key(Qt.Key.Key_B)
    app.drag([(width * 0.25, height * 0.25), (width * 0.75, height * 0.75)])
    app.settle()
    shapes = app.store_shapes(app.image_id(name))
    assert len(shapes) == 1
    x0, y0, x1, y1 = shapes[0]["geometry"]
    assert abs(x0 - width * 0.25) < width * 0.01 and abs(x1 - width * 0.75) < width * 0.01
    assert abs(y0 - height * 0.25) < height * 0.01 and abs(y1 - height * 0.75) < height * 0.01
