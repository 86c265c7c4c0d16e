"""Names from files and from people are shown as text: markup in them is never parsed or run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.e2e.harness import Driver, Launcher
from tests.e2e.projects import make_project

pytestmark = pytest.mark.e2e

CLASS_NAME = '<img src=x onerror="window.__pwned=1">'
FILE_NAME = '<img src=y onerror="window.__pwned=2"><b>bold<i>.png'


def assert_nothing_ran(app: Driver) -> None:
    assert app.js("typeof window.__pwned") == "undefined", "markup from a name was executed"
    assert app.js("document.querySelectorAll('#app img[src=\"x\"], #app img[src=\"y\"], b, i, [onerror]').length") == 0
    assert not [u for u in app.pixel_urls() if not u.startswith("pixels/")]


def test_a_file_name_with_markup_is_shown_literally(launcher: Launcher, tmp_path: Path) -> None:
    folder = make_project(tmp_path / "odd names", {FILE_NAME: (200, 150), "plain.png": (100, 80)})
    app = launcher(folder)
    image_id = app.image_id(FILE_NAME)
    row = f'#images .row[data-id="{image_id}"]'
    app.click_element(row)
    app.settle()
    assert app.js(f"document.querySelector('{row} .row-name').textContent") == FILE_NAME
    assert app.js(f"document.querySelector('{row}').title") == FILE_NAME
    assert app.js("document.querySelector('.viewer-head .image-name').textContent") == FILE_NAME
    assert app.current_name() == FILE_NAME
    # The file is an image like any other: it shows and takes shapes.
    app.key(Qt.Key.Key_O)
    app.click(50, 50)
    app.settle()
    assert len(app.store_shapes(image_id)) == 1
    assert_nothing_ran(app)


def test_a_class_name_with_markup_is_shown_literally(app: Driver) -> None:
    app.click_element('#classes button[aria-label="Add a class"]')
    app.settle()
    app.type_text(CLASS_NAME)
    app.key(Qt.Key.Key_Return)
    app.settle()
    (cls,) = app.api.require_project().classes()
    assert cls["name"] == CLASS_NAME, "the typed name reached the store unchanged"
    assert app.js("document.querySelector('#classes .class-name').textContent") == CLASS_NAME

    app.mouse_move_client(app.client_of(-5, -5))  # leave the panel: focus and keys back to the page
    app.key(Qt.Key.Key_B)
    app.drag([(20, 20), (120, 90)])
    app.settle()
    assert app.js("document.querySelector('.sb-message').textContent") == f"Added box · {CLASS_NAME}"
    app.key(Qt.Key.Key_V)
    app.click(70, 50)
    app.settle()
    hint = app.js("document.querySelector('.selection-hint').textContent")
    assert CLASS_NAME in hint

    row = f'#classes .class-row[data-id="{cls["id"]}"]'
    app.hover_element(row)
    app.click_element(f'{row} button[aria-label^="Delete"]')
    app.settle()
    assert CLASS_NAME in app.js("document.querySelector('.dialog .dialog-text').textContent")
    app.click_text(".dialog .btn", "Cancel")
    app.settle()
    assert app.js("document.querySelector('.dialog')") is None
    assert len(app.api.require_project().classes()) == 1
    assert_nothing_ran(app)
