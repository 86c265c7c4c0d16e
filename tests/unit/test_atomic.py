"""backend.atomic: a write either lands whole or leaves the old file (and no debris) behind."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from backend import atomic


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _debris(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_bytes_replaces_content_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "data.bin"
    atomic.write_bytes(target, b"first")
    assert target.read_bytes() == b"first"
    atomic.write_bytes(target, b"second, longer than the first")
    assert target.read_bytes() == b"second, longer than the first"
    assert _debris(target.parent) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Windows refuses to replace a file open for reading")
def test_replacement_is_a_new_file_not_an_overwrite(tmp_path: Path) -> None:
    # A reader that opened the old file keeps reading the old bytes: the new content arrived
    # by rename, so no reader ever sees a half-written file.
    target = tmp_path / "labels.json"
    atomic.write_text(target, "old content")
    with open(target, "rb") as reader:
        atomic.write_text(target, "new content")
        assert reader.read() == b"old content"
    assert target.read_text(encoding="utf-8") == "new content"


def test_text_and_json_round_trip(tmp_path: Path) -> None:
    atomic.write_text(tmp_path / "t.txt", "Mücke — 蚊")
    assert (tmp_path / "t.txt").read_bytes() == "Mücke — 蚊".encode()
    obj = {"name": "Mücke", "n": [1, 2.5, None], "nested": {"ok": True}}
    atomic.write_json(tmp_path / "o.json", obj)
    text = (tmp_path / "o.json").read_text(encoding="utf-8")
    assert json.loads(text) == obj
    assert "Mücke" in text  # readable UTF-8, not \u escapes


@pytest.mark.skipif(sys.platform == "win32", reason="no POSIX modes")
def test_file_mode_follows_umask_not_0600(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    atomic.write_bytes(target, b"{}")
    mode = stat.S_IMODE(target.stat().st_mode)
    # What open() would have made: 0666 minus the process umask (mkstemp alone gives 0600).
    assert mode == 0o666 & ~_current_umask()
    if _current_umask() & 0o066 != 0o066:
        assert mode != 0o600


def test_failed_replace_keeps_old_file_and_leaves_no_temp(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "project.json"
    atomic.write_text(target, "good")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic.write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "good"
    assert _debris(tmp_path) == []


def test_failed_flush_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.bin"

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"data")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_target_is_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(OSError):
        atomic.write_bytes(target, b"data")
    assert target.is_dir()
    assert (target / "inside.txt").read_text(encoding="utf-8") == "keep"
    assert _debris(tmp_path) == []


def test_unserializable_json_leaves_old_file(tmp_path: Path) -> None:
    target = tmp_path / "o.json"
    atomic.write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic.write_json(target, {"a": object()})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    assert _debris(tmp_path) == []
