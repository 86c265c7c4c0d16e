"""Per-user settings (recent projects, theme), one JSON file in the user data folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backend import atomic

log = logging.getLogger(__name__)
MAX_RECENT = 10
THEMES = ("dark", "light")


class Settings:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._data: dict[str, Any] = {"recent": [], "theme": "dark"}
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._data.update(loaded)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            # A damaged settings file must not stop the app; it is rewritten on the next change.
            log.warning("ignoring unreadable settings %s: %s", self.path, exc)

    def _save(self) -> None:
        try:
            atomic.write_json(self.path, self._data)
        except OSError as exc:
            log.warning("could not save settings %s: %s", self.path, exc)

    @property
    def theme(self) -> str:
        t = self._data.get("theme")
        return t if t in THEMES else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        self._data["theme"] = value
        self._save()

    @property
    def recent(self) -> list[str]:
        r = self._data.get("recent")
        return [p for p in r if isinstance(p, str)] if isinstance(r, list) else []

    def add_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        self._data["recent"] = [p] + [x for x in self.recent if x != p][: MAX_RECENT - 1]
        self._save()
