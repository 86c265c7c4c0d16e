"""The application API: what the page (through the bridge) and the self-test may ask.

Pure Python, no Qt: the bridge only turns JSON into ``call(method, args)`` and back. Every
answer is ``{"ok": result}`` or ``{"error": {code, message, detail}}``; a handler never lets an
exception escape (unexpected ones are logged as bugs and reported as ``internal``).
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend import __version__, paths
from backend.api import ai_handlers, export_handlers, handlers
from backend.api.settings import THEMES, Settings
from backend.api.validate import args_dict, get_choice, get_str
from backend.errors import FieldmarkError, ImageReadError, InvalidArgument, NotFound, ProjectLocked
from backend.imaging import SUPPORTED_EXTENSIONS, probe
from backend.jobs.runner import Cancelled, Job, JobContext, JobRunner
from backend.store import Project

log = logging.getLogger(__name__)

Handler = Callable[["Api", dict[str, Any]], Any]


def demo_source() -> Path:
    return paths.resource("demo", "images")


class Api:
    """Holds the open project and dispatches named calls to handlers."""

    def __init__(self, settings: Settings, *, pick_folder: Callable[[], str | None] | None = None,
                 demo_dir: Path | None = None) -> None:
        self.settings = settings
        self.pick_folder = pick_folder
        self.demo_dir = demo_dir or paths.user_data_dir() / "demo-project"
        self.project: Project | None = None
        self.is_demo = False
        self.startup_error: dict[str, Any] | None = None  # why the project given at start did not open
        self.listeners: list[Callable[[str, Any], None]] = []
        self.jobs = JobRunner(workers=1)
        self.jobs.listeners.append(self.emit)
        self._probe_job: Job | None = None
        self.methods: dict[str, Handler] = {
            "app.ping": lambda api, a: {"value": a.get("value")},
            "app.info": Api._info,
            "app.set_theme": Api._set_theme,
            "app.startup_error": lambda api, a: api.startup_error,
            "project.open": lambda api, a: api.open_project(Path(get_str(a, "path"))),
            "project.pick": Api._pick,
            "project.recent": Api._recent,
            **handlers.METHODS,
            **ai_handlers.METHODS,
            **export_handlers.METHODS,
        }

    # -- dispatch ---------------------------------------------------------------------------
    def call(self, method: str, args: Any) -> dict[str, Any]:
        try:
            handler = self.methods.get(method)
            if handler is None:
                raise InvalidArgument(f"Unknown method '{method}'.", code="unknown_method")
            return {"ok": handler(self, args_dict(args))}
        except FieldmarkError as exc:
            return {"error": exc.to_dict()}
        except Exception as exc:  # noqa: BLE001 — the one catch-all at the bridge boundary
            log.exception("bug in %s", method)
            return {"error": {"code": "internal",
                              "message": f"Something went wrong in Fieldmark ({type(exc).__name__}: "
                                         f"{exc}). Your labels are safe; please report this.",
                              "detail": traceback.format_exc(limit=8)}}

    def emit(self, name: str, payload: Any) -> None:
        for listener in list(self.listeners):
            try:
                listener(name, payload)
            except Exception:  # noqa: BLE001 — a broken listener must not undo an open or kill a probe
                log.exception("listener failed on %s", name)

    def require_project(self) -> Project:
        if self.project is None:
            raise NotFound("No project is open. Open a folder of images first.", code="no_project")
        return self.project

    # -- project lifecycle ------------------------------------------------------------------
    def summary(self) -> dict[str, Any] | None:
        p = self.project
        if p is None:
            return None
        return {"path": str(p.folder), "name": p.folder.name, "demo": self.is_demo,
                "image_count": p.image_count()}

    def open_project(self, folder: Path, *, demo: bool = False) -> dict[str, Any]:
        folder = Path(folder).expanduser()
        try:
            is_dir = folder.is_dir()
        except OSError:  # name too long, no permission on a parent: still "not a folder we can open"
            is_dir = False
        if not is_dir:
            raise NotFound(f"'{folder}' is not a folder. Choose a folder that holds your images.",
                           code="not_a_folder")
        if self.project is not None and self.project.folder.resolve() == folder.resolve():
            # Opening the open project again (drop, dialog) re-scans it instead of tripping the lock.
            self._stop_probe()
            self.project.scan(SUPPORTED_EXTENSIONS)
            self._start_probe(self.project)  # files added or changed since need their sizes too
            summary = self.summary()
            self.emit("project.changed", {"project": summary})
            return summary  # type: ignore[return-value]
        new = Project.open(folder)
        try:
            new.scan(SUPPORTED_EXTENSIONS)
        except BaseException:
            new.close()
            raise
        self.close_project()
        self.project, self.is_demo = new, demo
        self._start_probe(new)
        if not demo:
            self.settings.add_recent(folder)
        summary = self.summary()
        self.emit("project.changed", {"project": summary})
        return summary  # type: ignore[return-value]

    def open_demo(self) -> dict[str, Any]:
        """Copy the bundled sample photos to a writable folder once, then open it there."""
        target = self.demo_dir
        target.mkdir(parents=True, exist_ok=True)
        for src in sorted(demo_source().iterdir()):
            if src.suffix.lower() in SUPPORTED_EXTENSIONS and not (target / src.name).exists():
                shutil.copy2(src, target / src.name)
        try:
            return self.open_project(target, demo=True)
        except ProjectLocked as exc:
            # Two plain starts share one demo: the second window should say so in its own terms
            # (its path is in the user data folder, which means nothing to the person).
            pid = exc.detail.get("pid") if isinstance(exc.detail, dict) else None
            who = f" (pid {pid})" if pid is not None else ""
            raise ProjectLocked(
                f"The demo project is already open in another Fieldmark window{who}. Open a "
                "folder of your own images here, or use the demo in that window.",
                detail=exc.detail) from exc

    def _start_probe(self, project: Project) -> None:
        """Look at every not-yet-probed file in the background: size, pages, or why it is unreadable.

        The list is usable at once (the scan reads no file); this fills in the details and flags
        broken files, in batches so the page refreshes a few times, not 10,000 times.
        """
        todo = [(im["id"]) for im in project.images() if im["width"] is None and im["error"] is None]
        if not todo:
            return

        def work(ctx: JobContext) -> dict[str, int]:
            changed: list[int] = []
            failed = 0
            last = time.monotonic()
            for n, image_id in enumerate(todo, 1):
                ctx.check()  # a close or re-open cancels us: report "cancelled", not "done"
                if self.project is not project:
                    raise Cancelled()
                try:
                    info = probe(project.image_path(image_id))
                    project.update_image_info(image_id, width=info.width, height=info.height,
                                              pages=info.pages, error=None)
                except ImageReadError as exc:
                    project.update_image_info(image_id, error=exc.message)
                    failed += 1
                except FieldmarkError as exc:  # project closed under us, or a store problem
                    log.info("probe stopped: %s", exc.message)
                    break
                changed.append(image_id)
                if len(changed) >= 1000 or n == len(todo) or time.monotonic() - last > 2.0:
                    self.emit("images.changed", {"ids": changed})
                    changed, last = [], time.monotonic()
                    ctx.progress(n, len(todo), "reading image headers")
            return {"probed": len(todo), "unreadable": failed}

        self._probe_job = self.jobs.submit("probe", work)

    def _stop_probe(self) -> None:
        if self._probe_job is not None:
            self.jobs.cancel(self._probe_job.id)
            if self._probe_job.future is not None:
                try:
                    self._probe_job.future.result(timeout=30)
                except Exception:  # noqa: BLE001 — its failure was already reported as an event
                    pass
            self._probe_job = None

    def shutdown(self) -> None:
        """App exit: close the project (runs are paused, resumable) and stop every worker thread."""
        self.close_project()
        ai_handlers.shutdown(self)
        self.jobs.shutdown(wait=False)

    def close_project(self) -> None:
        self._stop_probe()
        ai_handlers.project_closing(self)  # pause batch runs before their store closes
        if self.project is not None:
            self.project.close()
            self.project = None

    # -- app-level handlers -----------------------------------------------------------------
    def _info(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"version": __version__, "project": self.summary(), "recent": self.settings.recent,
                "theme": self.settings.theme, "formats": sorted(SUPPORTED_EXTENSIONS),
                "startup_error": self.startup_error}

    def _set_theme(self, a: dict[str, Any]) -> dict[str, Any]:
        self.settings.theme = get_choice(a, "theme", THEMES)
        return {"theme": self.settings.theme}

    def _pick(self, a: dict[str, Any]) -> dict[str, Any] | None:
        if self.pick_folder is None:
            raise InvalidArgument("Folder picking is not available here.", code="unsupported")
        chosen = self.pick_folder()
        return self.open_project(Path(chosen)) if chosen else None

    def _recent(self, a: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"path": p, "name": Path(p).name, "exists": Path(p).is_dir()} for p in self.settings.recent]
