"""Per-user settings: theme and recent projects persist; a damaged file never stops the app."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.api.service import Api
from backend.api.settings import MAX_RECENT, THEMES, Settings


@pytest.fixture
def settings_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "settings.json"


@pytest.fixture
def api(tmp_path: Path, settings_path: Path) -> Iterator[Api]:
    api = Api(Settings(settings_path), demo_dir=tmp_path / "demo")
    yield api
    api.close_project()
    api.jobs.shutdown()


def test_defaults_without_a_file(settings_path: Path) -> None:
    s = Settings(settings_path)
    assert (s.theme, s.recent) == ("dark", [])
    assert not settings_path.exists()  # reading never writes


def test_theme_through_the_api_persists(api: Api, settings_path: Path) -> None:
    assert api.call("app.set_theme", {"theme": "light"}) == {"ok": {"theme": "light"}}
    assert api.call("app.info", {})["ok"]["theme"] == "light"
    assert Settings(settings_path).theme == "light"
    assert json.loads(settings_path.read_text(encoding="utf-8"))["theme"] == "light"


@pytest.mark.parametrize("bad", ["blue", "", "LIGHT", 1, None, ["dark"]])
def test_invalid_theme_is_refused_and_not_saved(api: Api, settings_path: Path, bad: object) -> None:
    api.call("app.set_theme", {"theme": "light"})
    answer = api.call("app.set_theme", {"theme": bad})
    err = answer["error"]
    assert err["code"] == "invalid_argument"
    assert "'theme'" in err["message"]
    assert all(t in err["message"] for t in THEMES)  # says what is allowed
    assert Settings(settings_path).theme == "light"


def test_missing_theme_names_the_field(api: Api) -> None:
    err = api.call("app.set_theme", {})["error"]
    assert err["code"] == "invalid_argument"
    assert "'theme' is required" in err["message"]


@pytest.mark.parametrize("content", [
    b"{not json",
    b"\xff\xfe\x00garbage",
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"theme": "neon", "recent": "not a list"}',
    b"",
])
def test_corrupt_file_falls_back_to_defaults(settings_path: Path, content: bytes,
                                             caplog: pytest.LogCaptureFixture) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        s = Settings(settings_path)
    assert (s.theme, s.recent) == ("dark", [])


def test_corrupt_file_does_not_stop_the_app_and_is_rewritten(tmp_path: Path, settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_bytes(b"{\x00 truncated")
    api = Api(Settings(settings_path), demo_dir=tmp_path / "demo")
    try:
        info = api.call("app.info", {})["ok"]
        assert (info["theme"], info["recent"], info["project"]) == ("dark", [], None)
        folder = tmp_path / "photos"
        folder.mkdir()
        assert "ok" in api.call("project.open", {"path": str(folder)})
    finally:
        api.close_project()
        api.jobs.shutdown()
    saved = json.loads(settings_path.read_text(encoding="utf-8"))
    assert saved["recent"] == [str(folder.resolve())]


def test_non_string_recent_entries_are_ignored(settings_path: Path) -> None:
    settings_path.parent.mkdir(parents=True)
    settings_path.write_text(json.dumps({"recent": ["/a", 3, None, {"x": 1}, "/b"], "theme": "light"}),
                             encoding="utf-8")
    s = Settings(settings_path)
    assert s.recent == ["/a", "/b"]
    assert s.theme == "light"


def test_recent_is_deduplicated_capped_and_most_recent_first(tmp_path: Path, settings_path: Path) -> None:
    s = Settings(settings_path)
    folders = [tmp_path / f"f{i}" for i in range(MAX_RECENT + 3)]
    for f in folders:
        f.mkdir()
        s.add_recent(f)
    s.add_recent(folders[5])
    expected = [str(folders[5].resolve())] + [str(f.resolve()) for f in reversed(folders) if f != folders[5]]
    assert s.recent == expected[:MAX_RECENT]
    assert Settings(settings_path).recent == expected[:MAX_RECENT]


def test_unwritable_settings_do_not_break_a_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "settings.json"
    path.mkdir()  # a folder where the file should be: every save fails
    s = Settings(path)
    with caplog.at_level(logging.WARNING):
        s.theme = "light"
    assert s.theme == "light"  # kept for this session
    assert any("could not save settings" in r.getMessage() for r in caplog.records)
