"""Stopping an onnxruntime pass from another thread, so a click need not wait for a background one.

onnxruntime checks ``RunOptions.terminate`` between graph nodes and then fails the run; the
session stays usable. :class:`Interruptible` installs fresh run options for the passes made on
the current thread until the block ends; ``interrupt()`` (from any thread) sets the flag, and the
pass in progress raises :class:`Interrupted` within a node or two (milliseconds). What to do
then (re-queue the pass) is the caller's business: see ``backend/ai/worker.py``.
"""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


class Interrupted(RuntimeError):
    """The model pass was stopped by :meth:`Interruptible.interrupt`; it produced nothing."""


class Interruptible:
    """``with Interruptible() as handle:`` — passes on this thread inside can be stopped."""

    def __init__(self) -> None:
        import onnxruntime as ort

        self.options: Any = ort.RunOptions()

    def __enter__(self) -> Interruptible:
        _local.options = self.options
        return self

    def __exit__(self, *exc: object) -> None:
        _local.options = None

    def interrupt(self) -> None:
        self.options.terminate = True


def run_options() -> Any | None:
    """The run options the current thread's passes must use (None outside a block)."""
    return getattr(_local, "options", None)


def check(options: Any | None, exc: BaseException) -> None:
    """Raise :class:`Interrupted` (from ``exc``) when ``exc`` is onnxruntime obeying ``options``."""
    if options is not None and options.terminate:
        raise Interrupted("the pass was stopped for a more urgent one") from exc
