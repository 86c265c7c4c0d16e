"""Bad model packs: each is refused with a message that names the file and says what to do,
through the app's Api (``models.install``, a job) and the command line (``models verify`` and
``models install``); nothing is written outside the packs folder; and the app keeps working
with the detector and segmenter it had (a click still gives the same polygons, "try on this
image" the same proposals).

Every broken pack is made from a good tiny pack (random weights, exported once per session).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import main
from backend.ai.models import ModelManager
from backend.api.service import Api
from backend.api.settings import Settings
from backend.models import pack as packs
from tests.ai.conftest import Events, Packs, _export, make_photos

pytestmark = pytest.mark.models

_PACKS: dict[Path, Packs] = {}


def tiny_packs(factory: pytest.TempPathFactory) -> Packs:
    """The tiny OWLv2 and SAM packs, exported once per test session (shared with the cache
    tests; ``FIELDMARK_TEST_PACKS`` keeps them between sessions, as in tests/ai)."""
    keep = os.environ.get("FIELDMARK_TEST_PACKS")
    root = Path(keep) if keep else factory.getbasetemp() / "reliability-packs"
    if root not in _PACKS:
        if not all((root / d / packs.MANIFEST).is_file() for d in ("owlv2-tiny", "sam-tiny")):
            pytest.importorskip("torch")          # the exporter needs them; the tests do not
            pytest.importorskip("transformers")
        _PACKS[root] = Packs(detector=_export("owlv2", root / "owlv2-tiny", "owlv2-tiny-test"),
                             segmenter=_export("sam", root / "sam-tiny", "sam-tiny-test"))
    return _PACKS[root]


# -- making broken packs ---------------------------------------------------------------------

def _copy(src: Path, out: Path) -> Path:
    shutil.copytree(src, out)
    return out


def _manifest(root: Path, change: Callable[[dict[str, Any]], Any] | None = None,
              rehash: bool = False) -> None:
    """Edit ``root``'s manifest; ``rehash``: make its checksums match the files again (the
    damage below then gets past the checksum test and must be caught later)."""
    path = root / packs.MANIFEST
    m = json.loads(path.read_text())
    if change is not None:
        change(m)
    if rehash:
        m["files"] = {rel: packs.sha256_file(root / rel) for rel in m["files"]}
    path.write_text(json.dumps(m))


def _truncated_onnx(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    f = root / "image_encoder.onnx"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    _manifest(root, rehash=True)
    return root


def _garbage_onnx(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    (root / "image_encoder.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    _manifest(root, rehash=True)
    return root


def _wrong_shapes(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    _manifest(root, lambda m: m["io"]["graphs"]["encoder"]["inputs"]["pixel_values"].update(
        shape=[1, 3, 512, 512]))
    return root


def _swapped_graph(good: Packs, out: Path) -> Path:
    # The detector's image encoder under the segmenter encoder's name, checksums updated.
    root = _copy(good.segmenter, out)
    shutil.copyfile(good.detector / "image_encoder.onnx", root / "image_encoder.onnx")
    _manifest(root, rehash=True)
    return root


def _hash_mismatch(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    with open(root / "prompt_decoder.onnx", "ab") as fh:
        fh.write(b"\0")
    return root


def _missing_file(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    (root / "prompt_decoder.onnx").unlink()
    return root


def _no_manifest(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    (root / packs.MANIFEST).unlink()
    return root


def _garbled_manifest(good: Packs, out: Path) -> Path:
    root = _copy(good.segmenter, out)
    (root / packs.MANIFEST).write_text('{"id": "sam-tiny-test", "files": {', encoding="utf-8")
    return root


def _zip(good: Packs, out: Path, extra: zipfile.ZipInfo | None = None,
         stored: bool = False) -> tuple[Path, zipfile.ZipFile]:
    out.mkdir()
    z = out / "pack.zip"
    zf = zipfile.ZipFile(z, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
    for f in sorted(good.segmenter.iterdir()):
        zf.write(f, f.name)
    if extra is not None:
        zf.writestr(extra, b"written by an unsafe pack\n")
    return z, zf


def _unsafe_zip(name: str, mode: int | None = None) -> Callable[[Packs, Path], Path]:
    def build(good: Packs, out: Path) -> Path:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        z, zf = _zip(good, out, info)
        zf.close()
        return z
    return build


def _zip_bomb(good: Packs, out: Path) -> Path:
    # The archive declares a petabyte for one member (zipfile writes the size it is told in
    # the zip64 central directory); nothing of it may be unpacked.
    z, zf = _zip(good, out)
    zf.getinfo("image_encoder.onnx").file_size = 1 << 50
    zf.close()
    return z


def _zip_bad_crc(good: Packs, out: Path) -> Path:
    z, zf = _zip(good, out, stored=True)
    info = zf.getinfo("prompt_decoder.onnx")
    zf.close()
    data = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 1000] ^= 0xFF
    z.write_bytes(bytes(data))
    return z


def _not_a_zip(good: Packs, out: Path) -> Path:
    out.mkdir()
    (out / "pack.zip").write_bytes(b"PK\x03\x04 this was cut off while downloading")
    return out / "pack.zip"


ABSOLUTE = Path(tempfile.gettempdir()) / "fieldmark-reliability-absolute-escape.txt"


@dataclass(frozen=True)
class Case:
    build: Callable[[Packs, Path], Path]
    names: str          # the file the message must name ("{zip}": the .zip given)
    says: str           # what it must say (regex), including what to do


CASES: dict[str, Case] = {
    "truncated-onnx": Case(_truncated_onnx, "image_encoder.onnx",
                           r"cannot be loaded.*copy the pack again"),
    "garbage-onnx": Case(_garbage_onnx, "image_encoder.onnx", r"cannot be loaded.*copy the pack again"),
    "wrong-input-shape": Case(_wrong_shapes, "image_encoder.onnx",
                              r"pixel_values' has shape \[1, 3, 1024, 1024\], the manifest says "
                              r"\[1, 3, 512, 512\].*re-export"),
    "detector-graph-in-segmenter": Case(_swapped_graph, "image_encoder.onnx",
                                        r"does not match its manifest.*re-export"),
    "sha256-mismatch": Case(_hash_mismatch, "prompt_decoder.onnx",
                            r"does not match its checksum.*Copy or download the pack again"),
    "missing-graph": Case(_missing_file, "prompt_decoder.onnx",
                          r"is missing.*Copy the whole pack folder again"),
    "missing-manifest": Case(_no_manifest, "manifest.json", r"not a model pack.*Choose the pack"),
    "garbled-manifest": Case(_garbled_manifest, "manifest.json",
                             r"not valid JSON.*Copy the pack again"),
    "zip-dotdot": Case(_unsafe_zip("../escaped-dotdot.txt"), "{zip}",
                       r"unsafe path '\.\./escaped-dotdot\.txt'.*trust"),
    "zip-deep-dotdot": Case(_unsafe_zip("a/../../../../../../escaped-deep.txt"), "{zip}",
                            r"unsafe path.*escaped-deep\.txt'.*trust"),
    "zip-absolute": Case(_unsafe_zip(str(ABSOLUTE)), "{zip}", r"unsafe path '/.*trust"),
    "zip-symlink": Case(_unsafe_zip("prompt_link.onnx", 0o120777), "{zip}",
                        r"unsafe path 'prompt_link\.onnx'.*trust"),
    "zip-huge-declared-size": Case(_zip_bomb, "{zip}", r"needs \d+\.\d GB.*Free some disk space"),
    "zip-bad-crc": Case(_zip_bad_crc, "{zip}", r"damaged.*Copy or download it again"),
    "not-a-zip": Case(_not_a_zip, "{zip}", r"not a readable \.zip.*Make the \.zip again"),
}
ESCAPES = ("escaped-dotdot.txt", "escaped-deep.txt", "written by an unsafe pack")


# -- the app, with a good detector and segmenter in use ---------------------------------------

@dataclass
class App:
    api: Api
    events: Events
    packs_dir: Path
    good: Packs
    image: int
    fresh_image: int
    click: list[Any]
    proposals: list[Any]
    active: dict[str, str]


def ok(api: Api, method: str, args: dict[str, Any] | None = None) -> Any:
    answer = api.call(method, args or {})
    assert "ok" in answer, (method, answer)
    return answer["ok"]


def _click(app: App, image: int | None = None) -> Any:
    job = ok(app.api, "segment.click", {"image_id": image or app.image, "points": [[60, 50, 1]]})
    return app.events.result(job["job"])["polygons"]


def _detect(app: App) -> list[tuple[Any, ...]]:
    job = ok(app.api, "detect.image", {"image_id": app.image})
    return sorted((tuple(p["geometry"]), p["score"]) for p in app.events.result(job["job"])["proposals"])


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    good = tiny_packs(tmp_path_factory)
    root = tmp_path_factory.mktemp("bad-packs-app")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIELDMARK_DATA_DIR", str(root / "user-data"))
        mp.setenv("FIELDMARK_PACKS_DIR", str(root / "user-data" / "packs"))
        events = Events()
        api = Api(Settings(root / "settings.json"), demo_dir=root / "demo")
        api.listeners.append(events)
        try:
            make_photos(root / "photos", 3)
            ok(api, "project.open", {"path": str(root / "photos")})
            for pack in (good.detector, good.segmenter):
                events.result(ok(api, "models.install", {"path": str(pack)})["job"])
            disc = ok(api, "classes.add", {"name": "disc"})
            ok(api, "classes.set_prompts", {"id": disc["id"], "prompts": ["a round disc"],
                                            "threshold": 0.0})
            images = [im["id"] for im in ok(api, "images.list")]
            a = App(api, events, root / "user-data" / "packs", good, images[0], images[2], [], [],
                    {})
            a.click, a.proposals = _click(a), _detect(a)
            a.active = ok(api, "models.list")["active"]
            assert a.click and a.proposals and a.active == {"detector": "owlv2-tiny-test",
                                                            "segmenter": "sam-tiny-test"}
            yield a
        finally:
            api.shutdown()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _still_works(app: App) -> None:
    info = ok(app.api, "models.list")
    assert info["active"] == app.active and info["broken"] == []
    assert _click(app) == app.click, "the segmenter in use gives what it gave before"
    assert _detect(app) == app.proposals, "the detector in use gives what it gave before"


def _nothing_escaped(*places: Path) -> None:
    for place in places:
        for folder in (place, *list(place.parents)[:6]):
            found = [n for n in ESCAPES if (folder / n).exists()]
            assert not found, f"an unsafe zip wrote {found} into {folder}"
    assert not ABSOLUTE.exists()


def _check_message(message: str, case: Case, bad: Path) -> None:
    named = str(bad) if case.names == "{zip}" else case.names
    assert named in message, message
    assert re.search(case.says, message, re.S | re.I), message


@pytest.mark.parametrize("name", list(CASES))
def test_bad_pack_is_refused_and_the_models_in_use_keep_working(
        app: App, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    bad = case.build(app.good, tmp_path / name)
    before = _files(app.packs_dir)

    # The app: the install job fails with the reason, nothing lands in the packs folder.
    job = ok(app.api, "models.install", {"path": str(bad)})["job"]
    end, payload = app.events.wait_job(job)
    assert end == "job.failed", payload
    assert payload["error"]["code"] == "pack_invalid"
    _check_message(payload["error"]["message"], case, bad)
    assert _files(app.packs_dir) == before, "no copy, no half-copy, no temp folder left"

    # The command line, on the same packs folder: exit code 2 and the same reason on stderr.
    capsys.readouterr()
    assert main.main(["models", "verify", str(bad)]) == 2
    _check_message(capsys.readouterr().err, case, bad)
    assert main.main(["models", "install", str(bad), "--json"]) == 2
    out = capsys.readouterr()
    _check_message(out.err, case, bad)
    assert json.loads(out.out)["error"]["code"] == "pack_invalid"
    assert _files(app.packs_dir) == before

    _nothing_escaped(app.packs_dir, bad.parent)
    _still_works(app)


def test_a_pack_of_the_wrong_task_is_refused_where_it_would_be_used(
        app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SAM's graphs under a manifest that says "OWLv2 detector". Its graphs match what its
    # manifest declares, so it installs; it sorts before the detector in use and must not
    # take its place; it cannot be chosen as a segmenter, and as a detector it fails with the
    # reason while the real detector is one click away.
    wrong = _copy(app.good.segmenter, tmp_path / "wrong-task")
    _manifest(wrong, lambda m: m.update(id="aaa-wrong-task", task="detector", family="owlv2"))
    app.events.result(ok(app.api, "models.install", {"path": str(wrong)})["job"])
    _still_works(app)
    refused = app.api.call("models.activate", {"task": "segmenter", "id": "aaa-wrong-task"})
    assert refused["error"]["code"] == "no_model"
    assert "no installed segmenter pack 'aaa-wrong-task'" in refused["error"]["message"]

    ok(app.api, "models.activate", {"task": "detector", "id": "aaa-wrong-task"})
    end, payload = app.events.wait_job(ok(app.api, "detect.image", {"image_id": app.image})["job"])
    assert end == "job.failed"
    assert re.search(r"'aaa-wrong-task' cannot be used as a detector: it has no 'text_encoder'",
                     payload["error"]["message"])
    make_photos(tmp_path / "photo", 1)
    assert main.main(["detect", "--pack", str(wrong), "--prompt", "disc",
                      str(tmp_path / "photo" / "img01.jpg")]) == 2
    assert "cannot be used as a detector" in capsys.readouterr().err

    ok(app.api, "models.activate", {"task": "detector", "id": app.active["detector"]})
    shutil.rmtree(app.packs_dir / "aaa-wrong-task-0.0.1")
    _still_works(app)


def test_a_pack_that_verifies_but_cannot_load_fails_its_job_and_the_previous_model_remains(
        app: App, tmp_path: Path) -> None:
    # Copied into the packs folder by hand (not installed, so nothing checked its graphs):
    # the checksums match a truncated encoder. The first pass fails with the reason.
    broken = _truncated_onnx(app.good, tmp_path / "broken")
    _manifest(broken, lambda m: m.update(id="aaa-broken-sam"))
    shutil.copytree(broken, app.packs_dir / "aaa-broken-sam-0.0.1")
    try:
        ok(app.api, "models.activate", {"task": "segmenter", "id": "aaa-broken-sam"})
        job = ok(app.api, "segment.prepare", {"image_id": app.fresh_image})["job"]
        end, payload = app.events.wait_job(job)
        assert end == "job.failed"
        message = payload["error"]["message"]
        assert "image_encoder.onnx" in message and "re-install the model pack" in message
        ok(app.api, "models.activate", {"task": "segmenter", "id": app.active["segmenter"]})
        assert _click(app, app.fresh_image), "the previous segmenter encodes and segments"
    finally:
        shutil.rmtree(app.packs_dir / "aaa-broken-sam-0.0.1")
    _still_works(app)


# -- unpacked zips do not pile up in the temp folder -------------------------------------------

def _unpacked(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("fieldmark-pack-"))


def test_no_unpacked_zip_is_left_in_the_temp_folder(
        app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))   # this process's temp folder
    good_zip = packs.zip_pack(app.good.segmenter, tmp_path / "sam.zip")
    damaged_zip = _hash_mismatch(app.good, tmp_path / "damaged")
    damaged_zip = packs.zip_pack(damaged_zip, tmp_path / "damaged.zip")

    assert main.main(["models", "verify", str(good_zip)]) == 0
    assert main.main(["models", "verify", str(damaged_zip)]) == 2
    assert main.main(["models", "install", str(damaged_zip), "--packs-dir",
                      str(tmp_path / "packs")]) == 2
    assert main.main(["models", "install", str(good_zip), "--packs-dir",
                      str(tmp_path / "packs")]) == 0
    app.events.result(ok(app.api, "models.install", {"path": str(good_zip)})["job"])
    app.events.wait_job(ok(app.api, "models.install", {"path": str(damaged_zip)})["job"])
    capsys.readouterr()
    assert _unpacked(tmp) == []

    # A zip used in place for one session (autolabel --segmenter x.zip) stays unpacked while
    # in use and goes when the session ends.
    manager = ModelManager(tmp_path / "packs", None, None, threads=1)
    registered = manager.register(good_zip)
    assert _unpacked(tmp) and registered.root.is_dir()
    with pytest.raises(packs.PackError):
        manager.register(damaged_zip)
    assert len(_unpacked(tmp)) == 1, "a refused zip is removed at once"
    manager.close()
    assert _unpacked(tmp) == []

    # A separate process (the real command, using the zip in place) cleans up when it exits.
    env = {**os.environ, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}
    make_photos(tmp_path / "one", 1)
    detector_zip = packs.zip_pack(app.good.detector, tmp_path / "owl.zip")
    done = subprocess.run([sys.executable, "main.py", "detect", str(tmp_path / "one" / "img01.jpg"),
                           "--pack", str(detector_zip), "--prompt", "disc", "--threshold", "0",
                           "--threads", "1", "--json"],
                          cwd=Path(main.__file__).parent, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert next(iter(json.loads(done.stdout).values())), "it ran the detector"
    assert _unpacked(tmp) == []


@pytest.mark.skipif(os.name != "posix", reason="only POSIX can tell whether a pid lives")
def test_unpacked_zips_of_dead_processes_are_swept(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A process killed while using a zip pack (or stopped with os._exit, as autolabel's second
    # Ctrl-C does) cannot clean up; the next one removes what it left, never a live one's.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = tmp / f"fieldmark-pack-{int(dead.stdout)}-abcd"
    alive = tmp / "fieldmark-pack-1-abcd"                 # pid 1 always runs
    for folder in (orphan, alive):
        (folder / "pack").mkdir(parents=True)
    pack_dir = tmp_path / "pack"
    from tests.unit.test_pack import make_pack

    make_pack(pack_dir)
    pk = packs.load_pack(packs.zip_pack(pack_dir, tmp_path / "p.zip"))
    try:
        assert not orphan.exists() and alive.exists()
    finally:
        packs.release(pk)
    assert not pk.root.exists()
