"""``python crash_gui.py PROJECT LOG``: the real app (``main.main([PROJECT])``: crash handler,
window, page, bridge, event loop) with its page adding shapes without pause, until killed.

The page itself calls the bridge (``window.fieldmark.api("shapes.add", ...)``) in a loop, as
its drawing tools do, and keeps each answer; a timer on the GUI thread moves the answers it has
received to the side log LOG (one JSON line per shape: ``{"id", "image_id", "geometry"}``). So
every logged shape was acknowledged to the page, and at the kill a few more may have been
acknowledged but not logged yet, or be in flight. The app meanwhile does its own writing: the
folder scan, the background header probe, the recent-projects settings, thumbnails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EDIT_LOOP = """(() => {
  window.__crash = {acks: [], error: null};
  (async () => {
    await window.fieldmark.ready;
    const images = await window.fieldmark.api('images.list', {});
    for (let n = 0; ; n += 1) {
      const image = images[n % images.length];
      const x = (n * 7) % 100, y = (n * 5) % 80;
      const shape = await window.fieldmark.api('shapes.add',
        {image_id: image.id, kind: 'box', geometry: [x, y, x + 20 + n % 9, y + 15]});
      window.__crash.acks.push({id: shape.id, image_id: shape.image_id, geometry: shape.geometry});
    }
  })().catch((e) => { window.__crash.error = String((e && e.message) || e); });
  return true;
})()"""

DRAIN = ("JSON.stringify(window.__crash ? {acks: window.__crash.acks.splice(0), "
         "error: window.__crash.error} : null)")


def drive(log_path: Path) -> None:
    """Make every MainWindow start the edit loop once its page has loaded."""
    from PySide6.QtCore import QTimer

    from backend.gui import app
    from tests.reliability.crash_state import SideLog

    log = SideLog(log_path)

    class DrivenWindow(app.MainWindow):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._started = False
            self._timer = QTimer(self)
            self._timer.timeout.connect(self._tick)
            self._timer.start(20)

        def _tick(self) -> None:
            if not self.load_ok:
                return
            if not self._started:
                self._started = True
                self.page.runJavaScript(EDIT_LOOP, 0, lambda _: None)
                return
            self.page.runJavaScript(DRAIN, 0, self._drained)

        def _drained(self, text: Any) -> None:
            if not text:
                return
            batch = json.loads(text)
            for ack in batch["acks"]:
                log.write(ack)
            if batch["error"]:
                log.write({"error": batch["error"]})

    app.MainWindow = DrivenWindow  # type: ignore[misc]


if __name__ == "__main__":
    import main

    drive(Path(sys.argv[2]))
    sys.exit(main.main([sys.argv[1]]))
