"""What goes into a frozen Fieldmark, shared by ``main.spec``, the build scripts and the checks.

One spec, parameterized (never near-copies of it). Options come from the arguments after
``--`` on the PyInstaller command line, else from environment variables:

    --mode onefile|onedir     FIELDMARK_BUILD_MODE   (default onefile)
    --torch                   FIELDMARK_BUILD_TORCH=1 (bundle torch + transformers: in-app
                                                      checkpoint conversion; default off)
    --packs DIR               FIELDMARK_BUILD_PACKS  (a pack folder, or a folder of pack folders,
                                                      bundled as ``packs/<name>``; default none)

Names: the single file is ``dist/<name>`` (``.exe`` on Windows), the one-folder app is
``dist/<name>-onedir/<name>``, where ``<name>`` is ``fieldmark`` or ``fieldmark-torch``.
This module imports nothing from PyInstaller, so tests and scripts can use it anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "Fieldmark"
BUNDLE_ID = "org.fieldmark.Fieldmark"
BUILD_INFO = "build_info.json"  # written into the bundle root; read by the self-test

# Never needed by either variant, but optional imports (tifffile, PIL, transformers, hub) would
# drag them in: test and reference tools; video decoding (PyAV, 100 MB), OpenCV, Xet downloads,
# TLS crypto, TensorBoard, Arrow.
EXCLUDES_TOOLS = ["scipy", "skimage", "matplotlib", "pycocotools", "pandas", "sklearn", "av", "cv2",
                  "hf_xet", "cryptography", "tensorboard", "torch.utils.tensorboard", "pyarrow",
                  "torchvision", "torchaudio"]
# Python packages the default build must not contain: torch/transformers and what only the
# export code needs are build-time tools (ARCHITECTURE.md); the torch variant keeps those.
EXCLUDES_DEFAULT = EXCLUDES_TOOLS + [
    "torch", "transformers", "safetensors", "huggingface_hub", "onnx",
    "onnxscript", "sympy", "networkx", "jinja2", "onnxruntime.quantization", "build_scripts",
    "yaml"]  # numpy.show_config's optional YAML output
# Never bundled. Test tools; onnxruntime's transformer-optimizer and tools (unrelated to HF
# transformers); and Qt Python bindings the app never imports: PySide6's hooks add them because
# libQt6WebEngineCore links the matching Qt libraries, but those native libraries still come in
# through binary dependency analysis, which is all QtWebEngine needs (the self-test proves it).
EXCLUDES_ALWAYS = ["tkinter", "_tkinter", "pytest", "_pytest", "hypothesis", "IPython",
                   "jupyter_client", "ipykernel", "mypy", "pip", "setuptools", "pkg_resources",
                   "lib2to3", "pydoc_data", "numpy.f2py", "numpy.tests", "PIL.ImageQt",
                   "onnxruntime.transformers", "onnxruntime.tools", "onnxruntime.backend",
                   "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets",
                   "PySide6.QtPositioning", "PySide6.QtOpenGL", "PySide6.QtTest", "PySide6.QtSvg",
                   "PySide6.QtDBus"]

# The single file's launcher (build_scripts/launcher) uses a few standard modules; PyInstaller
# unpacks whatever it bundles at every start, so everything else stays out (hashlib and
# concurrent.futures are imported by the build-side code of the same module only).
LAUNCHER_EXCLUDES = EXCLUDES_ALWAYS + [m for m in EXCLUDES_DEFAULT if m != "build_scripts"] + [
    "backend", "numpy", "PIL", "PySide6", "shiboken6", "onnxruntime", "tokenizers", "tifffile",
    "hashlib", "_hashlib", "ssl", "_ssl", "concurrent", "multiprocessing", "asyncio", "email", "http",
    "xml", "unittest", "pydoc", "ctypes", "_ctypes", "lzma", "_lzma", "bz2", "_bz2", "decimal",
    "_decimal", "sqlite3"]
# ... and of the standard library's native modules, the CJK codecs (base_library brings every
# codec; the launcher decodes nothing but UTF-8 and the file system encoding).
LAUNCHER_DROP = ("*/_codecs_*", "*/_multibytecodec*")

# Packages the app ships: a module of one of these that exists here but is not in the bundle
# is a missed hidden import (build_verify.check_warnings).
RUNTIME_PACKAGES = ("backend", "PySide6", "shiboken6", "numpy", "onnxruntime", "PIL",
                    "tifffile", "tokenizers")
TORCH_PACKAGES = ("torch", "transformers", "safetensors", "huggingface_hub", "tokenizers",
                  "onnx", "build_scripts")


@dataclass(frozen=True)
class Options:
    mode: str = "onefile"
    torch: bool = False
    packs: Path | None = None

    @property
    def name(self) -> str:
        return "fieldmark-torch" if self.torch else "fieldmark"

    @property
    def variant(self) -> str:
        return "torch" if self.torch else "default"


def parse_options(argv: list[str], env: dict[str, str] | None = None) -> Options:
    """Options from spec arguments (after ``--``), falling back to FIELDMARK_BUILD_* variables."""
    env = dict(os.environ if env is None else env)
    p = argparse.ArgumentParser(prog="pyinstaller main.spec --")
    p.add_argument("--mode", choices=("onefile", "onedir"),
                   default=env.get("FIELDMARK_BUILD_MODE", "onefile"))
    p.add_argument("--torch", action="store_true",
                   default=env.get("FIELDMARK_BUILD_TORCH", "") in ("1", "true", "yes"))
    p.add_argument("--packs", type=Path, default=env.get("FIELDMARK_BUILD_PACKS") or None)
    a = p.parse_args(argv)
    if a.mode not in ("onefile", "onedir"):
        raise SystemExit(f"FIELDMARK_BUILD_MODE={a.mode!r}: use onefile or onedir")
    return Options(mode=a.mode, torch=bool(a.torch), packs=Path(a.packs).resolve() if a.packs else None)


def version() -> str:
    """``backend.__version__``, read without importing the app (the spec runs in PyInstaller)."""
    for line in (ROOT / "backend" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("backend/__init__.py has no __version__")


def exe_suffix() -> str:
    return ".exe" if sys.platform == "win32" else ""


def artifact(dist: Path, opts: Options) -> Path:
    """The file (onefile) or folder (onedir) a build with ``opts`` produces under ``dist``."""
    if opts.mode == "onefile":
        return dist / (opts.name + exe_suffix())
    return dist / f"{opts.name}-onedir"


def pack_dirs(packs: Path | None) -> list[Path]:
    """The pack folders to bundle: ``packs`` itself if it is one, else its sub-folders that are."""
    if packs is None:
        return []
    if not packs.is_dir():
        raise SystemExit(f"--packs {packs}: not a folder")
    if (packs / "manifest.json").is_file():
        return [packs]
    found = sorted(d for d in packs.iterdir() if (d / "manifest.json").is_file())
    if not found:
        raise SystemExit(f"--packs {packs}: no model pack in it (no */manifest.json)")
    return found


def excludes(opts: Options) -> list[str]:
    return EXCLUDES_ALWAYS + (EXCLUDES_TOOLS if opts.torch else EXCLUDES_DEFAULT)


def source_modules() -> list[str]:
    """Every module of the ``backend`` package in the source tree (dotted names)."""
    mods = set()
    for f in (ROOT / "backend").rglob("*.py"):
        parts = list(f.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods.add(".".join(parts))
    return sorted(mods)


def build_info(opts: Options, packs: list[Path]) -> dict[str, object]:
    """Written into the bundle: the self-test imports ``backend_modules`` one by one."""
    return {"app": APP_NAME, "version": version(), "variant": opts.variant, "mode": opts.mode,
            "platform": sys.platform, "python": sys.version.split()[0],
            "packs": [p.name for p in packs], "backend_modules": source_modules()}


def write_build_info(path: Path, opts: Options, packs: list[Path]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_info(opts, packs), indent=2) + "\n", encoding="utf-8")
    return path


def windows_version_info(name: str) -> object:
    """The Windows version resource (Explorer's Properties → Details) for the executable."""
    from PyInstaller.utils.win32 import versioninfo as vi

    nums = tuple(int(x) for x in (version().split(".") + ["0", "0", "0"])[:4] if x.isdigit())
    nums = (nums + (0, 0, 0, 0))[:4]
    strings = [vi.StringStruct(k, v) for k, v in (
        ("CompanyName", APP_NAME), ("FileDescription", f"{APP_NAME} — offline image labeling"),
        ("FileVersion", version()), ("InternalName", name), ("OriginalFilename", name + ".exe"),
        ("ProductName", APP_NAME), ("ProductVersion", version()))]
    return vi.VSVersionInfo(
        ffi=vi.FixedFileInfo(filevers=nums, prodvers=nums),
        kids=[vi.StringFileInfo([vi.StringTable("040904B0", strings)]),
              vi.VarFileInfo([vi.VarStruct("Translation", [0x0409, 1200])])])
