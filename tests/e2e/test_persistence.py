"""What outlives the window: shapes after reopening, the theme, and the one-window-per-project lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from backend.store import Project
from tests.e2e.harness import Driver, Launcher, close_checked

pytestmark = pytest.mark.e2e

NAMES = ("a_first.png", "b_second.png", "c_third.png")


def _label_every_image(app: Driver) -> None:
    """Real drawing on each image: a box and a polygon on the first, a polygon, then a point."""
    app.call("classes.add", {"name": "moth"})
    app.run("await window.fieldmark.actions.refreshClasses(); return 1;")
    app.key(Qt.Key.Key_B)
    app.drag([(20, 20), (150, 120)])
    app.key(Qt.Key.Key_P)
    for x, y in [(200, 30), (300, 60), (250, 200)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Return)
    app.key(Qt.Key.Key_Right)
    app.settle()
    for x, y in [(30, 30), (350, 40), (300, 280), (60, 250)]:
        app.click(x, y)
    app.key(Qt.Key.Key_Return)
    app.key(Qt.Key.Key_Right)
    app.key(Qt.Key.Key_O)
    app.settle()
    app.click(100, 300)
    app.settle()


def test_every_shape_is_back_after_reopening(launcher: Launcher, project: Path) -> None:
    app = launcher(project)
    _label_every_image(app)
    ids = {name: app.image_id(name) for name in NAMES}
    before = {name: app.store_shapes(ids[name]) for name in NAMES}
    assert [len(before[n]) for n in NAMES] == [2, 1, 1]
    close_checked(app)

    with Project.open(project) as store:
        on_disk = {name: store.shapes(ids[name]) for name in NAMES}
    for name in NAMES:
        assert [{k: s[k] for k in ("id", "image_id", "kind", "geometry", "class_id")} for s in on_disk[name]] \
            == before[name]

    again = launcher(project)  # a new Api and a new window, as after a restart
    for name in NAMES:
        again.click_element(f'#images .row[data-id="{ids[name]}"]')
        again.settle()
        assert again.current_name() == name
        assert again.page_shapes() == before[name]
        assert again.drawn_count() == len(before[name])
    counts = again.js("[...document.querySelectorAll('#images .row')].map((r) => r.querySelector('.row-shapes').textContent)")
    assert sorted(counts) == ["1 shape", "1 shape", "2 shapes"]
    assert again.js("document.querySelector('#classes .class-count').textContent") == "4"


def test_theme_choice_survives_a_restart(launcher: Launcher, project: Path, tmp_path: Path) -> None:
    settings = tmp_path / "user" / "settings.json"
    app = launcher(project, settings)
    assert app.js("document.documentElement.dataset.theme") == "dark"
    app.click_element('#toolbar button[aria-label="Switch theme"]')
    app.settle()
    assert app.js("document.documentElement.dataset.theme") == "light"
    assert json.loads(settings.read_text(encoding="utf-8"))["theme"] == "light"
    close_checked(app)

    again = launcher(project, settings)
    assert again.call("app.info")["ok"]["theme"] == "light"
    assert again.js("document.documentElement.dataset.theme") == "light"
    again.click_element('#toolbar button[aria-label="Switch theme"]')
    again.settle()
    assert again.js("document.documentElement.dataset.theme") == "dark"
    assert again.call("app.info")["ok"]["theme"] == "dark"


def test_a_second_window_on_the_same_folder_is_refused(launcher: Launcher, project: Path) -> None:
    first = launcher(project)
    second = launcher(None)  # another Api and window, no project yet (welcome screen)
    answer = second.call("project.open", {"path": str(project)})
    assert answer["error"]["code"] == "project_locked", answer
    assert str(project) in answer["error"]["message"]
    assert second.js("window.fieldmark.state.project") is None

    # The first window is unaffected and keeps saving.
    first.key(Qt.Key.Key_B)
    first.drag([(30, 30), (90, 90)])
    first.settle()
    assert len(first.store_shapes(first.current_id())) == 1
    assert first.page_shapes() == first.store_shapes(first.current_id())
