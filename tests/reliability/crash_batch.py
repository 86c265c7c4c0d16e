"""The batch worker of the crash tests: ``python main.py autolabel ...`` with a side log of the
work it does per image.

Run in a process forked by ``crash_zygote.py`` (``job = "autolabel"``). Before the command runs,
the run's per-image step and ``fail_run_item`` are wrapped to log ``start`` (before the encoder
pass) and ``done`` / ``failed`` (after the store committed the image's proposals and its run
item). A ``start`` for an image whose item was already committed is duplicate work, even if the
store would refuse the second write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.reliability.crash_state import SideLog


def work(argv: list[str], log_path: Path) -> int:
    import main
    from backend.ai.runs import RunService
    from backend.store.runs import RunsMixin

    log = SideLog(log_path)
    step = RunService._step
    fail = RunsMixin.fail_run_item

    def logged_step(self: Any, project: Any, kind: str, params: Any, run_id: int) -> Any:
        inner = step(self, project, kind, params, run_id)

        def one(image_id: int, rgb: Any) -> int:
            log.write({"ev": "start", "run": run_id, "image": image_id})
            shapes = inner(image_id, rgb)
            log.write({"ev": "done", "run": run_id, "image": image_id, "shapes": shapes})
            return int(shapes)
        return one

    def logged_fail(self: Any, run_id: int, image_id: int, reason: str) -> None:
        log.write({"ev": "start", "run": run_id, "image": image_id})
        fail(self, run_id, image_id, reason)
        log.write({"ev": "failed", "run": run_id, "image": image_id})

    RunService._step = logged_step  # type: ignore[method-assign]
    RunsMixin.fail_run_item = logged_fail  # type: ignore[method-assign]
    return int(main.main(argv))
