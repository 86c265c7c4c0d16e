"""Run a check as a user that file permissions apply to (root ignores them, and CI runs as root)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

NOBODY = 65534


def as_unprivileged(work: Callable[[], Any]) -> Any:
    """``work()``'s (JSON-able) result, run as ourselves, or as 'nobody' in a forked child when
    we are root. Forked rather than started fresh: the interpreter and modules are already loaded,
    so the child needs no access to wherever Python is installed. Skips the test when the switch
    is not possible here; an exception in the child fails it with its repr."""
    if os.geteuid() != 0:
        return work()
    import fcntl  # noqa: F401  (the store's lock imports it lazily: load it while we still can)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write, json.dumps({"value": work()}).encode())
        except BaseException as exc:  # noqa: BLE001 — reported to the parent, which fails the test
            os.write(write, json.dumps({"crash": repr(exc)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    os.waitpid(pid, 0)
    if not text:
        pytest.skip("cannot switch to an unprivileged user here")
    answer = json.loads(text)
    assert "crash" not in answer, answer["crash"]
    return answer["value"]
