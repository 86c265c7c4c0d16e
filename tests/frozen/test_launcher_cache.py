"""The single file's launcher (build_scripts/launcher) on a small app, without building anything.

A real folder is packed with the real packer into a real PyInstaller CArchive (the same entry
type the build uses), and the real cache code unpacks it: the first start unpacks, later ones
reuse, damage is repaired, another build gets its own folder and prunes the old one unless a
running app holds it, concurrent first starts unpack once, a damaged single file is refused.
The launcher's exec path runs in a child process with a shell script as the "app".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from build_scripts.build_common import ROOT
from build_scripts.launcher import appcache, payload
from build_scripts.launcher import main as launcher

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the exec path and the symlinks are POSIX")

APP = textwrap.dedent("""\
    #!/bin/sh
    echo "args:$*"
    echo "ld:${LD_LIBRARY_PATH-unset} pyi:${_PYI_ARCHIVE_FILE-unset} single:${FIELDMARK_SINGLE_FILE-unset}"
    echo "to stderr" >&2
    exit "${EXIT_WITH:-0}"
    """)


def make_app(root: Path, variant: str = "a") -> Path:
    app = root / f"app-src-{variant}"
    (app / "_internal" / "lib").mkdir(parents=True)
    (app / "fieldmark").write_text(APP)
    (app / "fieldmark").chmod(0o755)
    (app / "_internal" / "lib" / "libbig.so.6").write_bytes(os.urandom(100_000) * 3 + variant.encode())
    (app / "_internal" / "web.html").write_text(f"<p>{variant}</p>")
    (app / "_internal" / "empty").mkdir()
    os.symlink("lib/libbig.so.6", app / "_internal" / "libbig.so.6")
    return app


def single_file(tmp: Path, variant: str = "a", chunk: int | None = None, monkeypatch: Any = None) -> Path:
    """A CArchive holding the packed app as a PKG entry, next to an ordinary data entry.
    (PyInstaller comes with requirements-build.txt: these tests run in CI's frozen stage.)"""
    writers = pytest.importorskip("PyInstaller.archive.writers")

    if chunk and monkeypatch:
        monkeypatch.setattr(payload, "CHUNK", chunk)
    packed = tmp / f"app-{variant}.fmpk"
    payload.write_payload(make_app(tmp, variant), packed, version="9.9", exe_name="fieldmark")
    other = tmp / "other.txt"
    other.write_text("not the app")
    exe = tmp / f"fieldmark-{variant}"
    writers.CArchiveWriter(str(exe), [("other.txt", str(other), True, "x"), (payload.ENTRY_NAME, str(packed), False, "a")],
                   pylib_name="libpython3.11.so.1.0")
    return exe


def unpack(exe: Path, cache: Path) -> tuple[Path, bool]:
    index, data_at = payload.open_payload(exe)
    return appcache.ensure(exe, index, data_at, cache)


def test_the_packed_app_is_found_where_pyinstaller_puts_it(tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    from PyInstaller.archive.readers import CArchiveReader

    offset, length = payload.locate(exe)
    reader = CArchiveReader(str(exe))
    assert reader.extract(payload.ENTRY_NAME) == exe.read_bytes()[offset:offset + length]
    index, _ = payload.open_payload(exe)
    assert {e["path"] for e in index["entries"]} >= {"fieldmark", "_internal/web.html", "_internal/libbig.so.6"}


def test_first_start_unpacks_everything_and_later_starts_reuse_it(tmp_path: Path, monkeypatch: Any) -> None:
    exe = single_file(tmp_path, chunk=65536, monkeypatch=monkeypatch)  # the big file spans chunks
    src = tmp_path / "app-src-a"
    folder, unpacked = unpack(exe, tmp_path / "cache")
    assert unpacked and folder.parent == tmp_path / "cache"
    for name in ("fieldmark", "_internal/lib/libbig.so.6", "_internal/web.html"):
        assert (folder / name).read_bytes() == (src / name).read_bytes(), name
    assert os.access(folder / "fieldmark", os.X_OK)
    assert os.readlink(folder / "_internal/libbig.so.6") == "lib/libbig.so.6"
    assert (folder / "_internal" / "empty").is_dir()
    inode = (folder / "_internal/lib/libbig.so.6").stat().st_ino
    again, unpacked = unpack(exe, tmp_path / "cache")
    assert (again, unpacked) == (folder, False)
    assert (folder / "_internal/lib/libbig.so.6").stat().st_ino == inode


@pytest.mark.parametrize("damage", ["delete a file", "truncate a file", "remove the marker", "leave a partial"])
def test_a_damaged_cache_is_unpacked_again(tmp_path: Path, damage: str) -> None:
    exe = single_file(tmp_path)
    folder, _ = unpack(exe, tmp_path / "cache")
    big = folder / "_internal/lib/libbig.so.6"
    if damage == "delete a file":
        big.unlink()
    elif damage == "truncate a file":
        big.write_bytes(big.read_bytes()[:1000])
    elif damage == "remove the marker":
        (folder / appcache.MARKER).unlink()
    else:  # a start that crashed while unpacking, and nothing else
        os.rename(folder, folder.with_name(folder.name + ".partial-1-2"))
    again, unpacked = unpack(exe, tmp_path / "cache")
    assert unpacked and again == folder
    assert big.read_bytes() == (tmp_path / "app-src-a/_internal/lib/libbig.so.6").read_bytes()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(["locks", folder.name])


def test_another_build_gets_its_own_folder_and_the_old_one_goes_unless_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old, _ = unpack(single_file(tmp_path, "a"), cache)
    new, unpacked = unpack(single_file(tmp_path, "b"), cache)
    assert unpacked and new != old and (new / "_internal/web.html").read_text() == "<p>b</p>"
    assert not old.exists()  # no app of the old build was running
    # An app of build b runs (holding its lock) while build a starts again: b stays.
    held = appcache.hold_shared(cache / "locks" / f"{new.name}.lock")
    try:
        again, _ = unpack(tmp_path / "fieldmark-a", cache)
        assert again == old and new.is_dir() and (new / appcache.MARKER).is_file()
    finally:
        os.close(held)
    unpack(tmp_path / "fieldmark-b", cache)  # b again, nothing holds a: a goes
    assert not old.exists()


def test_concurrent_first_starts_unpack_once(tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    index, _ = payload.open_payload(exe)
    cache = tmp_path / "cache"
    code = ("import json, sys; from pathlib import Path; from build_scripts.launcher import appcache, payload;"
            "exe = Path(sys.argv[1]); index, at = payload.open_payload(exe); print('ready', flush=True);"
            "folder, unpacked = appcache.ensure(exe, index, at, Path(sys.argv[2]));"
            "print(json.dumps([str(folder), unpacked]))")
    # Three double-clicks at once: all three find the cache empty and race for the unpacking.
    cache.mkdir(mode=0o700)
    with appcache.exclusive(cache / "locks" / f"{appcache.folder_name(index)}.unpack.lock"):
        procs = [subprocess.Popen([sys.executable, "-c", code, str(exe), str(cache)], cwd=ROOT,
                                  stdout=subprocess.PIPE, text=True) for _ in range(3)]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({folder for folder, _ in results}) == 1
    assert sorted(unpacked for _, unpacked in results) == [False, False, True]


def test_a_damaged_single_file_is_refused_and_leaves_no_half_app(tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    index, data_at = payload.open_payload(exe)
    big = next(e for e in index["entries"] if e["path"].endswith("libbig.so.6") and e["type"] == "f")
    data = bytearray(exe.read_bytes())
    data[data_at + big["chunks"][0][0] + 100] ^= 0xFF
    exe.write_bytes(bytes(data))
    with pytest.raises(payload.PayloadError, match="damaged"):
        appcache.ensure(exe, index, data_at, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["locks"]


def _launch(exe: Path, cache: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from pathlib import Path; from build_scripts.launcher import main;"
            "raise SystemExit(main.main(sys.argv[2:], Path(sys.argv[1])))")
    full_env = dict(os.environ, FIELDMARK_CACHE_DIR=str(cache), **env)
    return subprocess.run([sys.executable, "-c", code, str(exe), *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_launcher_becomes_the_app_with_its_args_streams_exit_code_and_the_users_environment(
        tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    proc = _launch(exe, tmp_path / "cache", "detect", "--help", "a b", EXIT_WITH="7",
                   LD_LIBRARY_PATH="/tmp/_MEI123", LD_LIBRARY_PATH_ORIG="/opt/user/lib", _PYI_ARCHIVE_FILE=str(exe))
    assert proc.returncode == 7
    assert proc.stdout.splitlines() == ["args:detect --help a b", f"ld:/opt/user/lib pyi:unset single:{exe}"]
    assert proc.stderr == "to stderr\n"
    proc = _launch(exe, tmp_path / "cache", LD_LIBRARY_PATH="/tmp/_MEI123")  # had none of its own
    assert proc.returncode == 0 and "ld:unset" in proc.stdout


def test_an_unusable_cache_folder_falls_back_to_a_temporary_one(tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    proc = _launch(exe, blocker, "x", EXIT_WITH="3")
    assert proc.returncode == 3 and "args:x" in proc.stdout
    assert "cannot use the cache folder" in proc.stderr and "FIELDMARK_CACHE_DIR" in proc.stderr


def test_a_cache_folder_others_can_write_to_is_not_trusted(tmp_path: Path) -> None:
    exe = single_file(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # like /tmp without the sticky bit: anyone could plant an "app" there
    proc = _launch(exe, shared, "x")
    assert proc.returncode == 0 and "args:x" in proc.stdout
    assert "others can write to it" in proc.stderr and list(shared.iterdir()) == []


def test_a_file_that_is_not_a_fieldmark_single_file_is_named(tmp_path: Path) -> None:
    exe = tmp_path / "fieldmark"
    exe.write_bytes(b"\x7fELF" + os.urandom(5000))
    proc = _launch(exe, tmp_path / "cache")
    assert proc.returncode == 1 and str(exe) in proc.stderr and "download it again" in proc.stderr


def test_the_environment_given_to_the_app_is_the_users() -> None:
    env = launcher.app_environment({"LD_LIBRARY_PATH": "/tmp/_MEIx", "LD_LIBRARY_PATH_ORIG": "/usr/local/lib",
                                    "_PYI_APPLICATION_HOME_DIR": "/tmp/_MEIx", "_PYI_PARENT_PROCESS_LEVEL": "1",
                                    "HOME": "/home/u"})
    assert env == {"LD_LIBRARY_PATH": "/usr/local/lib", "HOME": "/home/u", "PYINSTALLER_RESET_ENVIRONMENT": "1"}
