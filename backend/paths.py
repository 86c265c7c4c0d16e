"""One resource locator for bundled assets, from source and from a frozen (PyInstaller) build."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resource_root() -> Path:
    """Folder that holds ``web/``, ``backend/`` data and bundled packs.

    From source this is the repository root; in a PyInstaller build it is ``sys._MEIPASS``.
    """
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def resource(*parts: str) -> Path:
    return resource_root().joinpath(*parts)


def user_data_dir() -> Path:
    """Per-user folder for settings, logs, caches and installed packs (created on demand)."""
    override = os.environ.get("FIELDMARK_DATA_DIR")
    if override:
        base = Path(override)
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "Fieldmark"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "Fieldmark"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "fieldmark"
    base.mkdir(parents=True, exist_ok=True)
    return base


def is_inside(path: Path, root: Path) -> bool:
    """True when ``path`` (after resolving symlinks and ``..``) lies inside ``root``."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
