"""A folder full of bad images opens, and every file says what is wrong with it - or shows.

Everything goes through the real path: the project is opened with the pure :class:`Api` (scan,
background probe, ``images.list``, ``image.get``), and pixels are asked for the way the
``fieldmark:`` scheme handler asks, through :func:`backend.gui.scheme.serve_pixels`. The files
come from one table (:mod:`tests.reliability.bad_files`): truncated at several offsets, zero
bytes, half-copied with a zero tail, disguised (wrong extension, text, HTML, PDF, HEIC), damaged
inside, claiming huge dimensions, and valid-but-unusual ones (CMYK, 16-bit, palette, animated,
1-bit) which must simply display.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from backend.api.service import Api
from backend.api.settings import Settings
from backend.gui.scheme import PLACEHOLDER_THUMB, parse_pixels, serve_pixels
from backend.imaging.failures import REASONS
from tests.reliability.bad_files import BAD_KINDS, GOOD_KINDS, H, Kind, W, encoded, picture, write_all

pytestmark = [pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
              pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")]

GOOD_PHOTOS = {"aa_good_photo.jpg": "JPEG", "zz_good_photo.png": "PNG"}
# Damage that only decoding reveals (the header and the file's end are fine).
FOUND_BY_DECODING = {"damaged_data.png", "damaged_scan.jpg", "huge.gif"}


class Opened:
    def __init__(self, api: Api, folder: Path) -> None:
        self.api, self.folder = api, folder

    def call(self, method: str, args: dict[str, Any] | None = None) -> Any:
        answer = self.api.call(method, args or {})
        assert "ok" in answer, f"{method} failed: {answer}"
        return answer["ok"]

    def records(self) -> dict[str, dict[str, Any]]:
        return {im["relpath"]: im for im in self.call("images.list")}

    def pixels(self, relpath: str, kind: str = "image") -> Any:
        image_id = self.records()[relpath]["id"]
        req = parse_pixels(f"/pixels/{kind}/{image_id}", "")
        project = self.api.require_project()
        answer = serve_pixels(req, project.image_path(image_id), project.folder / ".fieldmark" / "thumbs")
        if answer.error is not None:
            # What the window does with it (backend.gui.app._pixel_error): record it on the image.
            project.update_image_info(answer.error[0], error=answer.error[1])
        return answer


def _wait_probes(api: Api) -> None:
    for job in [j for j in list(api.jobs.jobs.values()) if j.kind == "probe"]:
        assert job.future is not None
        job.future.result(timeout=30)


def _open(folder: Path, data: Path) -> Api:
    api = Api(Settings(data / "settings.json"), demo_dir=data / "demo")
    api.open_project(folder)
    _wait_probes(api)
    return api


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Opened]:
    root = tmp_path_factory.mktemp("bad")
    folder = root / "field trip"
    write_all(folder)
    for name, fmt in GOOD_PHOTOS.items():
        (folder / name).write_bytes(encoded(fmt))
    # A folder that merely looks like an image is walked, not opened.
    (folder / "x.jpg").mkdir()
    (folder / "x.jpg" / "inside.png").write_bytes(encoded("PNG"))
    # Links: one to a good image, one to nothing, one to itself.
    (folder / "link_to_good.png").symlink_to("zz_good_photo.png")
    (folder / "dangling.jpg").symlink_to("gone_for_good.jpg")
    (folder / "loop.jpg").symlink_to("loop.jpg")
    api = _open(folder, root / "data")
    yield Opened(api, folder)
    api.close_project()
    api.jobs.shutdown()


def _check_message(message: str, name: str, reason: str) -> None:
    """Names the file, says what is wrong and what to do (the sentence REASONS gives)."""
    assert f'"{name}"' in message, message
    assert reason in message, message
    assert message.rstrip().endswith(REASONS[reason][1]), message


def _served_image(answer: Any) -> np.ndarray:
    assert answer.error is None and answer.data is not None, answer.error
    assert answer.mime in (b"image/png", b"image/jpeg")
    return np.asarray(Image.open(io.BytesIO(answer.data)).convert("RGB"))


def test_the_project_opens_and_lists_every_file(opened: Opened) -> None:
    listed = set(opened.records())
    expected = {k.name for k in GOOD_KINDS + BAD_KINDS} | set(GOOD_PHOTOS) | {"x.jpg/inside.png",
                                                                            "link_to_good.png"}
    assert listed == expected
    # Links that lead nowhere are not images: skipped by the scan, nothing breaks.
    assert not {"dangling.jpg", "loop.jpg"} & listed


@pytest.mark.parametrize("kind", BAD_KINDS, ids=lambda k: k.name)
def test_a_bad_file_says_what_is_wrong_and_what_to_do(opened: Opened, kind: Kind) -> None:
    assert kind.reason is not None
    record = opened.records()[kind.name]
    if kind.name not in FOUND_BY_DECODING:
        # Flagged by the background probe, before anyone looks at it.
        assert record["error"], f"{kind.name} is listed as fine"
        _check_message(record["error"], kind.name, kind.reason)

    thumb = opened.pixels(kind.name, "thumb")
    assert (thumb.data, thumb.mime) == (PLACEHOLDER_THUMB, b"image/svg+xml")
    assert thumb.error is not None
    _check_message(thumb.error[1], kind.name, kind.reason)

    image = opened.pixels(kind.name)
    assert image.data is None and image.error is not None
    _check_message(image.error[1], kind.name, kind.reason)

    # What the page asks next (image.get re-probes the file): the reason stays, it does not
    # flip back to "fine" because the header alone looks sound.
    again = opened.call("image.get", {"id": record["id"]})
    _check_message(again["error"], kind.name, kind.reason)
    assert opened.records()[kind.name]["error"] == again["error"]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64).mean(axis=2)


@pytest.mark.parametrize("kind", GOOD_KINDS, ids=lambda k: k.name)
def test_an_unusual_but_valid_file_displays(opened: Opened, kind: Kind) -> None:
    record = opened.call("image.get", {"id": opened.records()[kind.name]["id"]})
    assert record["error"] is None
    assert (record["width"], record["height"]) == kind.shows
    shown = _served_image(opened.pixels(kind.name))
    assert shown.shape == (H, W, 3)
    if kind.name == "float_nan.tif":
        assert not shown.any(), "an all-NaN plane shows black"
    else:
        # The picture, not noise or a blank: brightness follows the source's pattern.
        source = _gray(picture()) if kind.plane is None else picture()[:, :, kind.plane].astype(float)
        r = np.corrcoef(_gray(shown).ravel(), source.ravel())[0, 1]
        assert r > kind.likeness, f"{kind.name}: shown image does not look like the source (r={r:.2f})"
    thumb = opened.pixels(kind.name, "thumb")
    assert thumb.error is None and thumb.mime == b"image/jpeg"
    assert Image.open(io.BytesIO(thumb.data)).size == (W, H)


def test_good_images_still_work_among_bad_ones(opened: Opened) -> None:
    # Every file of the folder asked for in list order, as a person paging through it would.
    for relpath in opened.records():
        opened.pixels(relpath)
        opened.pixels(relpath, "thumb")
    for relpath in [*GOOD_PHOTOS, "x.jpg/inside.png", "link_to_good.png"]:
        assert opened.records()[relpath]["error"] is None
        assert _served_image(opened.pixels(relpath)).shape == (H, W, 3)
    shapes = opened.call("shapes.add", {"image_id": opened.records()["zz_good_photo.png"]["id"],
                                        "kind": "box", "geometry": [1, 2, 30, 40]})
    assert shapes["geometry"] == [1, 2, 30, 40]


def test_a_repaired_file_shows_again(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    write_all(folder, [k for k in BAD_KINDS if k.name in ("damaged_scan.jpg", "usb_cut_60.png")])
    api = _open(folder, tmp_path / "data")
    try:
        opened = Opened(api, folder)
        for name in ("damaged_scan.jpg", "usb_cut_60.png"):
            assert opened.pixels(name).error is not None
            # Copied again from the camera card: a new file at the same path.
            (folder / name).write_bytes(encoded("JPEG", quality=80) if name.endswith(".jpg") else encoded("PNG"))
            record = opened.call("image.get", {"id": opened.records()[name]["id"]})
            assert record["error"] is None, record["error"]
            assert _served_image(opened.pixels(name)).shape == (H, W, 3)
    finally:
        api.close_project()
        api.jobs.shutdown()


def test_unreadable_moved_and_replaced_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a_locked.jpg", "b_moved.jpg", "c_now_a_folder.jpg", "d_fine.jpg"):
        (folder / name).write_bytes(encoded("JPEG"))
    api = Api(Settings(tmp_path / "data" / "settings.json"), demo_dir=tmp_path / "data" / "demo")
    api.open_project(folder)
    _wait_probes(api)
    try:
        opened = Opened(api, folder)
        locked = folder / "a_locked.jpg"
        if os.geteuid() != 0:
            locked.chmod(0)
        else:  # root reads any file: the OS's refusal is simulated at open(), all else is real
            real_open = builtins.open

            def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
                if isinstance(file, (str, os.PathLike)) and Path(file) == locked:
                    raise PermissionError(13, "Permission denied", str(file))
                return real_open(file, *args, **kwargs)

            monkeypatch.setattr(builtins, "open", refusing_open)
        (folder / "b_moved.jpg").unlink()
        (folder / "c_now_a_folder.jpg").unlink()
        (folder / "c_now_a_folder.jpg").mkdir()
        for name, reason in (("a_locked.jpg", "permission denied"), ("b_moved.jpg", "not found"),
                             ("c_now_a_folder.jpg", "not a file")):
            record = opened.call("image.get", {"id": opened.records()[name]["id"]})
            _check_message(record["error"], name, reason)
            answer = opened.pixels(name)
            assert answer.data is None and answer.error is not None
            _check_message(answer.error[1], name, reason)
        assert _served_image(opened.pixels("d_fine.jpg")).shape == (H, W, 3)
    finally:
        if locked.exists():
            locked.chmod(0o644)
        monkeypatch.undo()
        api.close_project()
        api.jobs.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
