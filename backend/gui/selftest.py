"""``--self-test``: prove, in the real app (from source or frozen), that the essential paths work.

Checks, in order; the JSON report says what passed, what was skipped and why, what failed:

- the build: what this binary is (``build_info.json`` when frozen); the default build must not
  contain torch or transformers, the torch variant must import them;
- every ``backend`` module imports (the list frozen in at build time, or the source tree);
- onnxruntime runs a graph (a 104-byte Add model): its native libraries load;
- the bundled model packs (``backend.paths.resource("packs")``) verify their checksums, each
  detector detects and each segmenter segments on a demo image. No bundled packs is a skipped
  check — a failure with ``require_packs`` (CI passes ``--require-packs`` to the binary);
- the torch variant converts a tiny checkpoint to a pack and runs it (``models convert``);
- the page loads, a call goes page → bridge → page, a temporary project opens, a shape written
  from the page is read back from disk after reopening, the project exports to COCO and the
  export reads back, and the page logged no JavaScript error and made no blocked request.

Exit 0 only if nothing failed. ``write_startup_report`` (``--startup-report FILE``) measures
the cold start instead: process start → page ready.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import os
import pkgutil
import platform
import secrets
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from backend import __version__, atomic, paths

BUILD_INFO = "build_info.json"
DEMO_IMAGE = ("demo", "images", "chelsea.jpg")
# y = x + [1, 2] (opset 13), made with onnx.helper: onnxruntime must load and run it.
TINY_ONNX = base64.b64decode(
    "CAgSCWZpZWxkbWFyazpTChAKAXgKA29uZRIBeSIDQWRkEghzZWxmdGVzdCoTCAIQASIIAACAPwAAAEBCA29uZVoPCgF4"
    "EgoKCAgBEgQKAggCYg8KAXkSCgoICAESBAoCCAJCBAoAEA0=")


class Skipped(Exception):
    """Raised by a check that does not apply here; the report marks it skipped, not failed."""


class Report:
    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []

    def check(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"name": name, "ok": True, "skipped": False}
        try:
            entry["detail"] = fn()
        except Skipped as why:
            entry.update(skipped=True, detail=str(why))
        except Exception as exc:  # noqa: BLE001 — a failed check is reported, not raised
            entry.update(ok=False, detail=f"{type(exc).__name__}: {exc}",
                         trace=traceback.format_exc(limit=6))
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        self.checks.append(entry)
        return entry["detail"] if entry["ok"] and not entry["skipped"] else None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "version": __version__, "python": sys.version.split()[0],
                "platform": platform.platform(), "frozen": is_frozen(), "build": build_info(),
                "checks": self.checks}


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def build_info() -> dict[str, Any]:
    """What main.spec wrote into the bundle; ``{"variant": "source"}`` when run from source."""
    if not is_frozen():
        return {"variant": "source", "version": __version__}
    path = paths.resource(BUILD_INFO)
    if not path.is_file():
        return {"variant": "unknown", "error": f"{BUILD_INFO} missing from the bundle"}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def bundled_packs(root: Path | None = None) -> list[Path]:
    """Pack folders under ``root`` (default: the bundled ``packs/``), sorted by name."""
    root = root or paths.resource("packs")
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if (d / "manifest.json").is_file())


def run_self_test(report_path: Path | None = None, timeout: float = 60.0, *,
                  require_packs: bool = False, packs_dir: Path | None = None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    report = Report()
    with tempfile.TemporaryDirectory(prefix="fieldmark-selftest-") as tmp:
        root = Path(tmp)
        os.environ["FIELDMARK_DATA_DIR"] = str(root / "data")
        run_core_checks(report, root, require_packs=require_packs, packs_dir=packs_dir)
        _app_checks(report, root, timeout)
    text = json.dumps(report.to_dict(), indent=2, default=str)
    if report_path:
        atomic.write_text(Path(report_path), text + "\n")
    for c in report.checks:
        status = "skip" if c["skipped"] else "ok  " if c["ok"] else "FAIL"
        print(f"{status} {c['name']} ({c['seconds']} s)" + ("" if c["ok"] and not c["skipped"]
                                                          else f": {c['detail']}"))
    print("self-test passed" if report.ok else "self-test FAILED")
    return 0 if report.ok else 1


# -- checks without Qt -------------------------------------------------------------------------

def run_core_checks(report: Report, root: Path, *, require_packs: bool = False,
                    packs_dir: Path | None = None) -> None:
    """The checks that need no window: build, imports, onnxruntime, packs, conversion."""
    report.check("build variant", _check_variant)
    report.check("import every backend module", _check_imports)
    report.check("onnxruntime runs a graph", lambda: _check_onnxruntime(root))
    packs = bundled_packs(packs_dir)
    if not packs:
        def none() -> str:
            if require_packs:
                raise RuntimeError(f"no bundled packs in {packs_dir or paths.resource('packs')} "
                                   "(--require-packs was given)")
            raise Skipped("no bundled packs")

        report.check("bundled model packs", none)
    tasks: set[str] = set()
    for folder in packs:
        got: dict[str, Any] = {}
        if report.check(f"verify pack {folder.name}", partial(_verify, folder, got)) is None:
            continue
        pack = got["pack"]
        tasks.add(pack.task)
        run = _run_detector if pack.task == "detector" else _run_segmenter
        report.check(f"{pack.task} {pack.id} on the demo image", partial(run, pack))
    if require_packs and packs:
        report.check("a detector and a segmenter are bundled", lambda: _both(tasks))
    report.check("convert a checkpoint to a pack (torch variant)", lambda: _check_convert(root))


def _check_variant() -> dict[str, Any]:
    info = {k: v for k, v in build_info().items() if k != "backend_modules"}
    found = {m: importlib.util.find_spec(m) is not None for m in ("torch", "transformers")}
    if info.get("variant") == "default" and any(found.values()):
        raise RuntimeError(f"the default build contains {[m for m, f in found.items() if f]}")
    if info.get("variant") == "torch":  # only this variant may import them (by name: see ADR 0005)
        return {**info, **{m: importlib.import_module(m).__version__ for m in ("torch", "transformers")}}
    if info.get("variant") == "unknown":
        raise RuntimeError(info["error"])
    return {**info, "torch_importable": found["torch"]}


def _check_imports() -> str:
    info = build_info()
    names = info.get("backend_modules") if is_frozen() else None
    if not names:
        import backend

        names = ["backend"] + [m.name for m in pkgutil.walk_packages(backend.__path__, "backend.")]
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 — collect every failure, then report them all
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(names)} modules failed: " + "; ".join(failed[:5]))
    return f"{len(names)} modules imported"


def _check_onnxruntime(root: Path) -> dict[str, Any]:
    import numpy as np

    from backend.models.runtime import create_session, provider_report

    model = root / "tiny.onnx"
    model.write_bytes(TINY_ONNX)
    session = create_session(model, threads=1)
    (y,) = session.run({"x": np.array([3.0, 4.0], dtype=np.float32)})
    if y.tolist() != [4.0, 6.0]:
        raise RuntimeError(f"[3, 4] + [1, 2] gave {y.tolist()}")
    return {**provider_report(), "provider": session.provider}


def _verify(folder: Path, got: dict[str, Any]) -> dict[str, Any]:
    """Check every file's sha256; the verified Pack goes into ``got["pack"]``."""
    from backend.models.pack import verify_pack

    pack = got["pack"] = verify_pack(folder, hashes=True)
    return {k: v for k, v in pack.summary().items() if k != "path"}


def _demo_rgb() -> Any:
    from backend.imaging.load import load_rgb

    return load_rgb(paths.resource(*DEMO_IMAGE))


def _run_detector(pack: Any) -> dict[str, Any]:
    from backend.models.detector import load_detector

    image = _demo_rgb()
    h, w = image.shape[:2]
    detector = load_detector(pack, threads=2)
    found = detector.detect(detector.encode_image(image), {"thing": ["a photo of a thing"]}, 0.0)
    if not found:
        raise RuntimeError("no detection at threshold 0")
    for d in found:
        x0, y0, x1, y1 = d.box
        if not (0 <= d.score <= 1 and 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h):
            raise RuntimeError(f"detection out of range: {d}")
    return {"detections": len(found), "best": round(found[0].score, 4), "provider": detector.provider}


def _run_segmenter(pack: Any) -> dict[str, Any]:
    import numpy as np

    from backend.models.segmenter import load_segmenter

    image = _demo_rgb()
    h, w = image.shape[:2]
    segmenter = load_segmenter(pack, threads=2)
    result = segmenter.predict(segmenter.encode_image(image), points=[(w / 2, h / 2, 1)])
    if result.mask is None or result.mask.shape != (h, w) or not np.isfinite(result.score):
        raise RuntimeError(f"bad mask: shape {getattr(result.mask, 'shape', None)}, score {result.score}")
    return {"mask_area": int(result.area), "score": round(float(result.score), 4),
            "provider": segmenter.provider}


def _both(tasks: set[str]) -> str:
    missing = {"detector", "segmenter"} - tasks
    if missing:
        raise RuntimeError(f"no usable bundled {' or '.join(sorted(missing))} pack")
    return "detector and segmenter packs ran"


def _check_convert(root: Path) -> dict[str, Any]:
    if build_info().get("variant") != "torch":
        raise Skipped("only the torch variant bundles the export code (tests/models cover it "
                      "from source)")
    from backend.cli.models import convert_checkpoint
    from build_scripts.exporters.owl import save_random_checkpoint

    ckpt = save_random_checkpoint("owlv2", "tiny", 0, root / "checkpoint")
    pack = convert_checkpoint(ckpt, "owlv2", root / "converted")
    return {"pack": pack.id, **_run_detector(pack)}


# -- checks in the real window -----------------------------------------------------------------

def _make_project(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder = root / "project with spaces"
    folder.mkdir()
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.stack([xx * 255 // 160, yy * 255 // 120, (xx + yy) % 255], axis=-1).astype("uint8")
    Image.fromarray(img).save(folder / "sample.png")
    return folder


def _app_checks(report: Report, root: Path, timeout: float) -> None:
    state: dict[str, Any] = {}

    def start_app() -> str:
        from backend.gui.app import make_application

        state["app"] = make_application([sys.argv[0]])
        return "QApplication started"

    if report.check("start Qt application", start_app) is None:
        return

    from backend.api.service import Api
    from backend.api.settings import Settings
    from backend.gui.app import MainWindow
    from backend.gui.waiting import run_async_js, wait_page_ready
    from backend.store import Project

    folder = _make_project(root)
    api = Api(Settings(root / "data" / "settings.json"), demo_dir=root / "demo")

    def open_project() -> dict[str, Any]:
        summary = api.open_project(folder)
        if summary["image_count"] != 1:
            raise RuntimeError(f"expected 1 image, found {summary['image_count']}")
        return summary

    if report.check("open a temporary project", open_project) is None:
        return
    window = MainWindow(api)
    window.show()  # a hidden page gets no animation frames, so it would never finish drawing

    def page_ready() -> str:
        wait_page_ready(window, timeout)
        return "page ready"

    if report.check("load the page and connect the bridge", page_ready) is None:
        return
    nonce = secrets.token_hex(8)

    def ping() -> str:
        got = run_async_js(window, f"return (await window.fieldmark.api('app.ping', {{value: '{nonce}'}})).value;")
        if got != nonce:
            raise RuntimeError(f"sent {nonce!r}, got back {got!r}")
        return "page → bridge → page round trip"

    report.check("bridge round trip", ping)

    def write_shape() -> dict[str, Any]:
        return run_async_js(window, """
            const api = window.fieldmark.api;
            const [img] = await api('images.list', {});
            const cls = await api('classes.add', {name: 'selftest'});
            const s = await api('shapes.add', {image_id: img.id, kind: 'box', geometry: [10, 20, 60, 80], class_id: cls.id});
            const back = await api('shapes.list', {image_id: img.id});
            if (!back.some(x => x.id === s.id)) throw new Error('shape not listed after add');
            return {image_id: img.id, shape_id: s.id};""")

    written = report.check("write a shape from the page", write_shape)

    def read_back() -> str:
        if not written:
            raise RuntimeError("no shape was written")
        api.close_project()
        with Project.open(folder) as project:
            shapes = project.shapes(written["image_id"])
        match = [s for s in shapes if s["id"] == written["shape_id"]]
        if not match or match[0]["geometry"] != [10, 20, 60, 80]:
            raise RuntimeError(f"shape not found on disk after reopening: {shapes}")
        return "shape read back from the project database"

    if report.check("read the shape back after reopening", read_back) is not None:
        report.check("export COCO and read it back", lambda: _export_coco(folder, root / "coco export"))

    def page_clean() -> str:
        errors = [c for c in window.console if c[0] >= 2]
        if errors or window.blocked:
            raise RuntimeError(f"JS errors: {errors[:3]}; blocked requests: {window.blocked[:3]}")
        return f"{len(window.console)} console lines, no errors, no blocked requests"

    report.check("no JavaScript errors or blocked requests", page_clean)
    window.close()


def _export_coco(folder: Path, out: Path) -> dict[str, Any]:
    """The self-test project (one image, one 50 x 60 box of class 'selftest') as COCO."""
    try:
        from backend.formats import ExportOptions, export_project
    except ImportError as exc:
        raise RuntimeError(f"COCO exporter missing: backend.formats.export_project ({exc})") from exc
    from backend.store import Project

    with Project.open(folder) as project:
        export_project(project, "coco", out, ExportOptions())
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    cats = {c["id"]: c["name"] for c in data.get("categories", [])}
    anns = data.get("annotations", [])
    if len(data.get("images", [])) != 1 or len(anns) != 1:
        raise RuntimeError(f"expected 1 image and 1 annotation, got {len(data.get('images', []))} "
                           f"and {len(anns)}")
    if [round(v, 3) for v in anns[0]["bbox"]] != [10, 20, 50, 60] or cats.get(anns[0]["category_id"]) != "selftest":
        raise RuntimeError(f"annotation does not match the shape: {anns[0]}, categories {cats}")
    return {"file": "annotations.json", "images": 1, "annotations": 1, "bbox": anns[0]["bbox"]}


# -- cold start measurement ---------------------------------------------------------------------

def seconds_since_process_start() -> float | None:
    """How long this process has existed (Linux: /proc start time vs. the boot clock), else None."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def write_startup_report(window: Any, path: Path, started: float | None) -> dict[str, Any]:
    """Wait until the page is usable (loaded, bridge connected), then write the timings as JSON.

    ``ready_at`` is wall-clock time, so a parent process that noted the time before starting
    the binary gets the whole cold start (for a onefile: unpacking included) by subtraction.
    """
    from backend.gui.waiting import wait_page_ready

    wait_page_ready(window)
    now = time.time()
    alive = seconds_since_process_start()
    data = {"ready_at": now, "since_main_s": round(now - started, 3) if started else None,
            "since_process_start_s": round(alive, 3) if alive is not None else None,
            "frozen": is_frozen(), "build": build_info()}
    atomic.write_json(Path(path), data)
    print(f"page ready {data['since_process_start_s']} s after the process started")
    return data
