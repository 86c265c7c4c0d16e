"""Leave out what PySide6's hooks collect but Fieldmark never uses (called from ``main.spec``).

Two steps on the Analysis TOCs:

1. ``DROP`` patterns: Qt plugins for embedded/remote displays, printing, network and TLS
   backends, PDF and the virtual keyboard; Qt's translations (the UI is English) and Chromium's
   locales except en-US (they only translate Chromium's built-in strings, which we never show);
   the DevTools resources (the app never opens DevTools; Chromium starts without them); in the
   torch variant, torch's C++ test programs.
2. ``prune_orphans`` (Linux): a shared library that no kept extension module, plugin or helper
   needs any more (the dependencies of what step 1 removed: CUPS, GnuTLS, the virtual keyboard,
   Qt PDF...) is left out too. ldd lists the whole dependency closure of each root, so a
   library some kept file needs is never dropped.
3. ``strip_debug`` (Linux): libpython without its debug sections.

``build_verify`` and the self-test catch a wrong decision here: the build or the self-test
fails if the page, the bridge, the models or the offscreen/xcb platforms stop working.
"""

from __future__ import annotations

import fnmatch
import posixpath
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

# "PySide6/*x" matches the Linux (PySide6/Qt/x), Windows (PySide6/x) and macOS (inside the
# Qt frameworks) layouts alike: fnmatch's "*" also matches "/".
_P = "PySide6/*plugins/"
DROP = [
    "PySide6/*translations/*.qm",
    "PySide6/*qtwebengine_locales/*",
    "PySide6/*qtwebengine_devtools_resources.pak",
    "PySide6/*qml/*", _P + "qmltooling/*", _P + "printsupport/*", _P + "tls/*",
    _P + "networkinformation/*", _P + "generic/*", _P + "egldeviceintegrations/*",
    _P + "platforminputcontexts/*virtualkeyboard*", _P + "imageformats/*qpdf*",
    _P + "platforms/*eglfs*", _P + "platforms/*linuxfb*", _P + "platforms/*minimalegl*",
    _P + "platforms/*vnc*", _P + "platforms/*vkkhrdisplay*",
    # torch variant: torch's C++ test programs and protoc, shipped in the wheel (130 MB)
    "torch/test/*", "torch/bin/*",
]
KEEP = ["PySide6/*qtwebengine_locales/en-US.pak",
        "torch/bin/torch_shm_manager"]  # ``import torch`` checks that it exists

# Entries a process loads by itself (dlopen or exec): the roots of the dependency closure.
# NSS (Chromium's crypto) dlopens its software token and its helpers by name.
ROOTS = ["*.abi3.so", "*.cpython-*.so", "python3*/lib-dynload/*", "libpython3*", _P + "*",
         "PySide6/*libexec/*", "onnxruntime/capi/*", "torch/lib/*", "tokenizers/*",
         "libsoftokn3*", "libfreebl*", "libnssckbi*", "libnssdbm3*"]
# Entries that are only there because something links them: candidates for pruning.
DEPENDENCY_DIRS = ["*.libs/*", "PySide6/Qt/lib/*"]

Entry = tuple  # PyInstaller TOC entry: (dest name, source path, typecode)


def _match(name: str, patterns: Iterable[str]) -> bool:
    name = name.replace("\\", "/")
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def wanted(dest: str) -> bool:
    return _match(dest, KEEP) or not _match(dest, DROP)


def drop_unused(entries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(kept, dropped) by the DROP/KEEP patterns."""
    kept = [e for e in entries if wanted(e[0])]
    return kept, [e for e in entries if not wanted(e[0])]


def _is_dependency(dest: str) -> bool:
    return "/" not in dest.replace("\\", "/") or _match(dest, DEPENDENCY_DIRS)


def drop_matching(entries: list[Entry], patterns: Iterable[str]) -> list[Entry]:
    """``entries`` without those whose destination name matches one of ``patterns``."""
    return [e for e in entries if not _match(e[0], patterns)]


def prune_orphans(binaries: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(kept, dropped): shared libraries no root needs (Linux only; elsewhere nothing is dropped)."""
    if not sys.platform.startswith("linux"):
        return binaries, []
    from PyInstaller.depend.bindepend import get_imports

    needed: set[str] = set()
    for dest, src, typecode in binaries:
        # Roots: extension modules (typecode EXTENSION), plugins, helpers, dlopen'ed libraries.
        if typecode in ("BINARY", "EXTENSION", "EXECUTABLE") and (
                typecode != "BINARY" or _match(dest, ROOTS) or not _is_dependency(dest)):
            for name, path in get_imports(src):
                needed.add(PurePosixPath(name).name)
                if path:
                    needed.add(PurePosixPath(str(path)).name)
    kept, dropped = [], []
    for entry in binaries:
        dest, _src, typecode = entry
        base = PurePosixPath(dest.replace("\\", "/")).name
        orphan = (typecode == "BINARY" and _is_dependency(dest) and not _match(dest, ROOTS)
                  and ".so" in base and base not in needed)
        (dropped if orphan else kept).append(entry)
    gone = {e[0] for e in dropped}
    # A symlink (dest, target, "SYMLINK") to a dropped library goes with it.
    links = [e for e in kept if e[2] == "SYMLINK"
             and posixpath.normpath(posixpath.join(posixpath.dirname(e[0]), e[1])) in gone]
    return [e for e in kept if e not in links], dropped + links


# Built here without stripping (pyenv, distro Pythons): libpython carries ~17 MB of debug info.
# Only these are stripped; stripping patchelf'ed wheel libraries (numpy's OpenBLAS) breaks them
# ("ELF load command address/offset not page-aligned"), so PyInstaller's global strip is off.
STRIP_DEBUG = ["libpython3*"]


def strip_debug(binaries: list[Entry], workdir: Path) -> list[Entry]:
    """Linux: point ``STRIP_DEBUG`` entries at copies without debug sections (``strip --strip-debug``)."""
    if not sys.platform.startswith("linux") or shutil.which("strip") is None:
        return binaries
    out = []
    for dest, src, typecode in binaries:
        if typecode == "BINARY" and _match(dest, STRIP_DEBUG):
            copy = workdir / "stripped" / PurePosixPath(dest).name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy)
            subprocess.run(["strip", "--strip-debug", str(copy)], check=True)
            src = str(copy)
        out.append((dest, src, typecode))
    return out
