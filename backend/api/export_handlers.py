"""Handlers for export and import (docs/bridge.md, "Export and import").

Thin: check arguments, run the work as a job (answer ``{"job": id}`` at once; ``job.progress``
while it runs; ``job.done`` with the summary), return plain dicts. The work is
:func:`backend.formats.export_project` / :func:`backend.formats.import_project`, the same code
the CLI runs.

Paths: the page never names a path the person did not choose (ARCHITECTURE.md, "The web page
is untrusted territory"). An export is written only into a folder picked with
``export.pick_out`` in this session, as a new folder (or .zip) named after the project and the
format, never over anything that exists. An import reads only what ``import.pick`` returned in
this session, or a path inside the open project (labelme files often sit next to the images).

Native dialogs: ``api.pick_path(kind, title, name_filter)`` (``kind`` "file" or "folder"),
when the window provides it; otherwise ``api.pick_folder()``.

Cancel: ``export.cancel`` / ``import.cancel`` stop the job at the next image. An export works in
a hidden staging folder until it is complete, so a cancelled (or failed) export leaves nothing
behind; an import writes nothing until everything is read, then commits in one transaction.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.api.validate import get_choice, get_str
from backend.errors import InvalidArgument, NotFound
from backend.formats import (
    FORMATS,
    ExportOptions,
    describe_formats,
    export_project,
    import_project,
    load_format,
)
from backend.formats.catalog import CATALOG
from backend.jobs.runner import Cancelled, JobContext

if TYPE_CHECKING:
    from backend.api.service import Api
    from backend.store import Project

# Lists in a job's result are cut to this many entries (the counts stay exact): a summary is
# read by a person, and a 100,000-line list would only slow the bridge.
MAX_LISTED = 500
_PROGRESS_EVERY_S = 0.1
_lock = threading.Lock()


@dataclass
class _Picked:
    """What the person chose in native dialogs this session (resolved paths)."""

    out_folders: set[Path] = field(default_factory=set)
    last_out: Path | None = None
    sources: set[Path] = field(default_factory=set)


def _picked(api: Api) -> _Picked:
    with _lock:
        found: _Picked | None = getattr(api, "_transfer_picked", None)
        if found is None:
            found = _Picked()
            api._transfer_picked = found  # type: ignore[attr-defined]
        return found


def _pick(api: Api, kind: str, title: str, name_filter: str = "") -> str | None:
    picker: Callable[..., str | None] | None = getattr(api, "pick_path", None)
    if picker is not None:
        return picker(kind, title, name_filter)
    if api.pick_folder is None:
        raise InvalidArgument("Choosing a file or folder is not available here.",
                              code="unsupported")
    return api.pick_folder()


def _title(fmt: str) -> str:
    info = CATALOG.get(fmt)
    return info.label if info else fmt


def _in_hidden_store(path: Path) -> bool:
    return ".fieldmark" in path.parts


# -- formats --------------------------------------------------------------------------------

def _formats(api: Api, a: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": f["name"], **{k: v for k, v in f.items() if k != "name"}}
            for f in describe_formats()]


def _get_format(a: dict[str, Any], *, importing: bool = False) -> str:
    fmt = get_choice(a, "format", tuple(FORMATS))
    impl = load_format(fmt)                    # FormatError when it is not in this build
    if importing and not hasattr(impl, "import_"):
        raise InvalidArgument(f"Fieldmark can export {_title(fmt)} but not import it.",
                              detail={"field": "format", "value": fmt})
    return fmt


# -- export ---------------------------------------------------------------------------------

def _check_out_folder(chosen: Path) -> Path:
    folder = chosen.expanduser().resolve()
    if not folder.is_dir():
        raise NotFound(f"'{folder}' is not a folder. Choose a folder to export into.",
                       code="not_a_folder", detail={"file": str(folder)})
    if _in_hidden_store(folder):
        raise InvalidArgument(f"'{folder}' is inside a project's .fieldmark folder, which "
                              "holds Fieldmark's own data. Choose another folder.",
                              detail={"file": str(folder)})
    if not os.access(folder, os.W_OK):
        raise InvalidArgument(f"You may not write to '{folder}'. Choose another folder.",
                              code="not_writable", detail={"file": str(folder)})
    return folder


def _pick_out(api: Api, a: dict[str, Any]) -> dict[str, str] | None:
    chosen = _pick(api, "folder", "Choose where to export")
    if not chosen:
        return None
    folder = _check_out_folder(Path(chosen))
    picked = _picked(api)
    picked.out_folders.add(folder)
    picked.last_out = folder
    return {"folder": str(folder)}


def _out_folder(api: Api, a: dict[str, Any]) -> Path:
    """The picked folder the export goes into: ``out`` if given, else the last one picked."""
    picked = _picked(api)
    if a.get("out") is None:
        if picked.last_out is None:
            raise InvalidArgument("Choose a folder to export into first.", code="no_output",
                                  detail={"field": "out"})
        return picked.last_out
    folder = Path(get_str(a, "out")).expanduser().resolve()
    if folder not in picked.out_folders:
        raise InvalidArgument(f"'{folder}' was not chosen as an export folder. Choose it with "
                              "the folder button first.", code="not_picked",
                              detail={"field": "out", "value": str(folder)})
    return folder


def target_path(project: Project, fmt: str, folder: Path, options: ExportOptions) -> Path:
    """Where an export of ``project`` as ``fmt`` into ``folder`` goes: a new
    ``<project>-<fmt>`` folder, or ``.zip`` with ``resize``; ``-2``, ``-3``... when taken."""
    suffix = ".zip" if options.resize is not None else ""
    stem = f"{project.folder.name}-{fmt}"
    for n in range(1, 10_000):
        path = folder / f"{stem}{'' if n == 1 else f'-{n}'}{suffix}"
        if not path.exists() and not path.is_symlink():
            return path
    raise InvalidArgument(f"'{folder}' already holds too many exports named {stem}; choose "
                          "another folder.", detail={"file": str(folder)})


def _options(a: dict[str, Any]) -> ExportOptions:
    return ExportOptions.from_dict(a.get("options") or {})


def _target(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    fmt = _get_format(a)
    return {"path": str(target_path(project, fmt, _out_folder(api, a), _options(a)))}


def _progress(api: Api, project: Project, ctx: JobContext) -> Callable[[int, int, str], None]:
    """The formats' progress callback for a job: stops it when cancelled (or when its project
    is closed), and passes on at most ~10 updates a second, plus the start and end of each
    phase (a phase counts from 0)."""
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        ctx.check()
        if api.project is not project:
            raise Cancelled()
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY_S or done == 0 or done >= total:
            last[0] = now
            ctx.progress(done, total, message)
    return progress


def _listed(items: list[Any]) -> list[Any]:
    return items[:MAX_LISTED]


def _run_export(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    fmt = _get_format(a)
    options = _options(a)
    folder = _out_folder(api, a)

    def work(ctx: JobContext) -> dict[str, Any]:
        target = target_path(project, fmt, folder, options)
        summary = export_project(project, fmt, target, options, _progress(api, project, ctx))
        out = summary.to_dict()
        out.update(skipped=_listed(summary.skipped), skipped_count=len(summary.skipped),
                   notes=_listed(summary.notes), notes_count=len(summary.notes),
                   files=_listed(summary.files), title=_title(fmt))
        return out
    return {"job": api.jobs.submit("export", work).id}


# -- import ---------------------------------------------------------------------------------

def _pick_source(api: Api, a: dict[str, Any]) -> dict[str, str] | None:
    fmt = _get_format(a, importing=True)
    info = CATALOG.get(fmt)
    kind = info.import_source if info and info.import_source else "folder"
    chosen = _pick(api, kind, f"Choose the {_title(fmt)} "
                              f"{'file' if kind == 'file' else 'folder'} to import",
                   info.file_filter if info else "")
    if not chosen:
        return None
    path = Path(chosen).expanduser().resolve()
    if not path.exists():
        raise NotFound(f"There is nothing at '{path}'. Choose another file or folder.",
                       detail={"file": str(path)})
    _picked(api).sources.add(path)
    return {"path": str(path), "kind": "folder" if path.is_dir() else "file"}


def _source(api: Api, project: Project, a: dict[str, Any]) -> Path:
    path = Path(get_str(a, "path")).expanduser().resolve()
    folder = project.folder.resolve()
    inside_project = (path == folder or folder in path.parents) and not _in_hidden_store(
        path.relative_to(folder))
    if not inside_project and path not in _picked(api).sources:
        raise InvalidArgument(f"'{path}' was not chosen for import. Choose it with the "
                              "file button first.", code="not_picked",
                              detail={"field": "path", "value": str(path)})
    return path


def _run_import(api: Api, a: dict[str, Any]) -> dict[str, str]:
    project = api.require_project()
    fmt = _get_format(a, importing=True)
    path = _source(api, project, a)

    def work(ctx: JobContext) -> dict[str, Any]:
        result = import_project(project, fmt, path, _progress(api, project, ctx))
        out = result.to_dict()
        out.update(skipped=_listed(result.skipped), skipped_count=len(result.skipped),
                   source=str(path), title=_title(fmt))
        return out
    return {"job": api.jobs.submit("import", work).id}


# -- cancel ---------------------------------------------------------------------------------

def _canceller(kind: str) -> Callable[[Api, dict[str, Any]], dict[str, Any]]:
    """``<kind>.cancel``: the job named, or (without ``job``) every ``kind`` job queued or
    running — the page may not know the id yet when a job waits behind another."""
    def cancel(api: Api, a: dict[str, Any]) -> dict[str, Any]:
        if a.get("job") is None:
            ids = [j.id for j in list(api.jobs.jobs.values())
                   if j.kind == kind and j.state in ("queued", "running")]
            return {"jobs": ids, "cancelled": any([api.jobs.cancel(i) for i in ids])}
        job_id = get_str(a, "job", max_len=100)
        job = api.jobs.jobs.get(job_id)
        if job is None or job.kind != kind:
            raise NotFound(f"There is no {kind} job '{job_id}'.", code="no_job",
                           detail={"field": "job", "value": job_id})
        return {"jobs": [job_id], "cancelled": api.jobs.cancel(job_id)}
    return cancel


METHODS: dict[str, Callable[[Api, dict[str, Any]], Any]] = {
    "export.formats": _formats,
    "export.pick_out": _pick_out,
    "export.target": _target,
    "export.run": _run_export,
    "export.cancel": _canceller("export"),
    "import.pick": _pick_source,
    "import.run": _run_import,
    "import.cancel": _canceller("import"),
}
