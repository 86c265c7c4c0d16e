"""The one QObject on the web channel. Thin on purpose: JSON in, ``Api.call``, JSON out.

Validation and behaviour live in ``backend.api`` (tested without Qt). Events from worker
threads are re-posted to the GUI thread before they reach the channel, since QWebChannel
must only be touched there.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from backend.api.handlers import page_refusal
from backend.api.service import Api

log = logging.getLogger(__name__)
MAX_ARGS_BYTES = 16 << 20  # a polygon-heavy call is a few MB at most; refuse absurd payloads


class Bridge(QObject):
    event = Signal(str, str)
    _post = Signal(str, str)

    def __init__(self, api: Api, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.api = api
        self._post.connect(self.event, Qt.ConnectionType.QueuedConnection)
        api.listeners.append(self.publish)

    def publish(self, name: str, payload: Any) -> None:
        """Thread-safe: may be called from any thread."""
        self._post.emit(name, json.dumps(payload, default=str))

    @Slot(str, str, result=str)
    def call(self, method: str, args_json: str) -> str:
        if len(args_json) > MAX_ARGS_BYTES:
            answer: dict[str, Any] = {"error": {"code": "invalid_argument",
                                                "message": "The request was too large.", "detail": None}}
        else:
            try:
                args = json.loads(args_json) if args_json else {}
            except ValueError:
                answer = {"error": {"code": "invalid_argument", "message": "The request was not valid JSON.",
                                    "detail": None}}
            else:
                # The page is untrusted: calls naming paths get its extra checks first.
                answer = page_refusal(self.api, method, args) or self.api.call(method, args)
        if "error" in answer:
            log.info("%s -> %s", method, answer["error"]["code"])
        try:
            return json.dumps(answer, default=str, allow_nan=False)
        except ValueError:  # a NaN/inf slipped into a result: a bug, but never an exception in Qt
            log.exception("%s returned a value JSON cannot carry", method)
            return json.dumps({"error": {"code": "internal", "detail": None,
                                         "message": "Fieldmark produced an invalid answer; please report this."}})
