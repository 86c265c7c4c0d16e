"""The rules that make a build FAIL when the bundle lacks something (build_scripts/build_verify.py)
and the trimming that must never remove what the app loads (build_scripts/build_trim.py).

These need no built binary: the rules run on listings shaped like PyInstaller's, and the
dependency pruning runs ldd on the real installed Qt libraries.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from build_scripts import build_config as bc
from build_scripts import build_trim as bt
from build_scripts import build_verify as bv

REQUIRED_QT = ["PySide6/Qt/libexec/QtWebEngineProcess", "PySide6/Qt/resources/qtwebengine_resources.pak",
               "PySide6/Qt/resources/qtwebengine_resources_100p.pak", "PySide6/Qt/resources/icudtl.dat",
               "PySide6/Qt/resources/v8_context_snapshot.bin",
               "PySide6/Qt/translations/qtwebengine_locales/en-US.pak",
               "PySide6/Qt/plugins/platforms/libqoffscreen.so", "PySide6/Qt/plugins/platforms/libqxcb.so"]


def complete_listing(packs: list[Path] = ()) -> bv.Listing:  # type: ignore[assignment]
    """What a correct default build holds, file by file (from the source tree and this env)."""
    files = {f.relative_to(bc.ROOT).as_posix(): 1 for d in ("web", "demo/images")
             for f in (bc.ROOT / d).rglob("*") if f.is_file()}
    files.update({name: 1 for name in REQUIRED_QT + bv._installed_ort_libs() + [bc.BUILD_INFO]})
    for p in packs:
        for f in p.rglob("*"):
            files[f"packs/{p.name}/{f.relative_to(p).as_posix()}"] = 1
    return bv.Listing(files=files, modules=set(bc.source_modules()) | {"numpy", "PySide6"})


def _pack(tmp_path: Path) -> Path:
    p = tmp_path / "owl-tiny"
    p.mkdir()
    (p / "manifest.json").write_text('{"files": {"text.onnx": "00", "tokenizer.json": "11"}}')
    (p / "text.onnx").write_bytes(b"x")
    (p / "tokenizer.json").write_text("{}")
    return p


def test_a_complete_bundle_passes() -> None:
    assert bv.check_listing(complete_listing(), bc.Options(), []) == []


@pytest.mark.parametrize(("remove", "expected"), [
    ("PySide6/Qt/libexec/QtWebEngineProcess", "Qt WebEngine helper process"),
    ("PySide6/Qt/resources/icudtl.dat", "ICU data"),
    ("PySide6/Qt/translations/qtwebengine_locales/en-US.pak", "en-US locale"),
    ("web/index.html", "missing web asset web/index.html"),
    ("demo/images/chelsea.jpg", "missing demo image demo/images/chelsea.jpg"),
    (bc.BUILD_INFO, "build info"),
])
def test_a_missing_required_file_is_named(remove: str, expected: str) -> None:
    listing = complete_listing()
    del listing.files[remove]
    problems = bv.check_listing(listing, bc.Options(), [])
    assert len(problems) == 1 and expected in problems[0]


def test_missing_onnxruntime_providers_and_backend_modules_are_named() -> None:
    listing = complete_listing()
    ort = bv._installed_ort_libs()
    assert any("providers_shared" in n for n in ort) or sys.platform == "darwin"
    for name in ort:
        del listing.files[name]
    listing.modules.discard("backend.models.sam")
    problems = bv.check_listing(listing, bc.Options(), [])
    assert "missing Python module backend.models.sam" in problems
    assert sum("missing onnxruntime library" in p for p in problems) == len(ort)


def test_a_bundled_pack_must_be_complete(tmp_path: Path) -> None:
    pack = _pack(tmp_path)
    listing = complete_listing([pack])
    assert bv.check_listing(listing, bc.Options(), [pack]) == []
    del listing.files["packs/owl-tiny/tokenizer.json"]
    assert bv.check_listing(listing, bc.Options(), [pack]) == \
        ["missing file tokenizer.json of the bundled pack owl-tiny"]


def test_torch_in_the_default_build_fails_and_is_required_in_the_torch_variant() -> None:
    listing = complete_listing()
    listing.modules.add("torch.nn")
    assert any("default build contains torch" in p for p in bv.check_listing(listing, bc.Options(), []))
    torch_opts = bc.Options(torch=True)
    problems = bv.check_listing(complete_listing(), torch_opts, [])
    assert "torch variant: missing Python module transformers" in problems


def test_the_warn_file_rules(tmp_path: Path) -> None:
    warn = tmp_path / "warn.txt"
    warn.write_text("\n".join([
        "missing module named numpy._core.cross - imported by numpy._core (top-level)",
        "missing module named nonexistent_dep - imported by backend.models.sam (top-level)",
        "missing module named numpy.linalg - imported by numpy (top-level)",
        "missing module named torch - imported by onnxruntime.transformers.machine_info (delayed)",
        "missing module named msvcrt - imported by backend.store.lock (conditional)",
        "missing module named zarr - imported by tifffile.zarr (top-level)",
    ]) + "\n")
    problems, accepted = bv.check_warnings(warn, bc.Options(), excludes=["torch"])
    assert problems == [
        "our code imports nonexistent_dep, which is not in the bundle (backend.models.sam (top-level))",
        "PyInstaller did not collect numpy.linalg, which exists here (hidden import?)",
    ]
    assert accepted["a name imported from a module (from X import name), not a module"] == 1
    assert accepted["left out on purpose (main.spec excludes)"] == 1
    assert sum(accepted.values()) == 4


def test_trimming_keeps_the_en_us_locale_and_drops_the_rest() -> None:
    loc = "PySide6/Qt/translations/qtwebengine_locales/"
    entries = [(loc + "en-US.pak", "src", "DATA"), (loc + "de.pak", "src", "DATA"),
               ("PySide6/Qt/translations/qtbase_de.qm", "src", "DATA"),
               ("PySide6/Qt/resources/qtwebengine_resources.pak", "src", "DATA"),
               ("PySide6/Qt/plugins/platforms/libqxcb.so", "src", "BINARY"),
               ("PySide6/Qt/plugins/platforms/libqvnc.so", "src", "BINARY")]
    kept, dropped = bt.drop_unused(entries)
    assert [e[0] for e in kept] == [loc + "en-US.pak", "PySide6/Qt/resources/qtwebengine_resources.pak",
                                    "PySide6/Qt/plugins/platforms/libqxcb.so"]
    assert len(dropped) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="dependency pruning runs on Linux only")
def test_pruning_keeps_what_an_extension_links_and_drops_orphans() -> None:
    spec = importlib.util.find_spec("PySide6")
    assert spec and spec.submodule_search_locations
    qt = Path(next(iter(spec.submodule_search_locations)))
    lib = qt / "Qt" / "lib"
    binaries = [("PySide6/QtWebEngineWidgets.abi3.so", str(qt / "QtWebEngineWidgets.abi3.so"), "EXTENSION"),
                ("PySide6/Qt/lib/libQt6WebEngineWidgets.so.6", str(lib / "libQt6WebEngineWidgets.so.6"), "BINARY"),
                ("PySide6/Qt/lib/libQt6Core.so.6", str(lib / "libQt6Core.so.6"), "BINARY"),
                ("PySide6/Qt/lib/libQt6Pdf.so.6", str(lib / "libQt6Pdf.so.6"), "BINARY"),
                ("libQt6Pdf.so.6", "PySide6/Qt/lib/libQt6Pdf.so.6", "SYMLINK")]
    kept, dropped = bt.prune_orphans(binaries)
    assert [e[0] for e in dropped] == ["PySide6/Qt/lib/libQt6Pdf.so.6", "libQt6Pdf.so.6"]
    assert "PySide6/Qt/lib/libQt6WebEngineWidgets.so.6" in [e[0] for e in kept]


def test_spec_options_from_arguments_and_environment(tmp_path: Path) -> None:
    assert bc.parse_options([], env={}) == bc.Options()
    opts = bc.parse_options([], env={"FIELDMARK_BUILD_MODE": "onedir", "FIELDMARK_BUILD_TORCH": "1"})
    assert (opts.mode, opts.torch, opts.name) == ("onedir", True, "fieldmark-torch")
    opts = bc.parse_options(["--mode", "onefile", "--packs", str(tmp_path)], env={"FIELDMARK_BUILD_MODE": "onedir"})
    assert opts.mode == "onefile" and opts.packs == tmp_path.resolve()
    assert bc.artifact(Path("dist"), bc.Options(mode="onedir")) == Path("dist/fieldmark-onedir")
    with pytest.raises(SystemExit, match="no model pack"):
        bc.pack_dirs(tmp_path)
