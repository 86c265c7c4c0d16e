"""Handlers for images, shapes, classes and undo: validate, call the store, return records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.api.validate import get_choice, get_int, get_optional_int, get_str, has
from backend.errors import FieldmarkError, ImageReadError, InvalidArgument
from backend.imaging import probe

if TYPE_CHECKING:
    from backend.api.service import Api

STATUSES = ("new", "in_progress", "done", "skipped")
KINDS = ("box", "polygon", "point", "mask")


def _images_list(api: Api, a: dict[str, Any]) -> list[dict[str, Any]]:
    query = a.get("query") or None
    status = get_choice(a, "status", STATUSES) if a.get("status") else None
    if query is not None and not isinstance(query, str):
        raise InvalidArgument("'query' must be a string.", detail={"field": "query"})
    return api.require_project().images(query=query, status=status)


def _image_get(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    """The image record plus what only a look at the file tells (pages, channels, dtype)."""
    project = api.require_project()
    image_id = get_int(a, "id")
    try:
        info = probe(project.image_path(image_id))
    except ImageReadError as exc:
        return {**project.update_image_info(image_id, error=exc.message), "channels": None, "dtype": None}
    record = project.image(image_id)
    if (record["width"], record["height"], record["pages"], record["error"]) != (
            info.width, info.height, info.pages, None):
        record = project.update_image_info(image_id, width=info.width, height=info.height,
                                           pages=info.pages, error=None)
    return {**record, "channels": info.channels, "dtype": info.dtype}


def _image_set_status(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    return api.require_project().set_image_status(get_int(a, "id"), get_choice(a, "status", STATUSES))


def _shapes_list(api: Api, a: dict[str, Any]) -> list[dict[str, Any]]:
    return api.require_project().shapes(get_int(a, "image_id"))


def _shapes_add(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    if "geometry" not in a:
        raise InvalidArgument("'geometry' is required.", detail={"field": "geometry"})
    return api.require_project().add_shape(get_int(a, "image_id"), get_choice(a, "kind", KINDS),
                                           a["geometry"], get_optional_int(a, "class_id"))


def _shapes_update(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if has(a, "geometry"):
        fields["geometry"] = a["geometry"]
    if has(a, "class_id"):
        fields["class_id"] = get_optional_int(a, "class_id")
    if not fields:
        raise InvalidArgument("Nothing to update: give 'geometry' and/or 'class_id'.")
    return api.require_project().update_shape(get_int(a, "id"), **fields)


def _shapes_delete(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    shape_id = get_int(a, "id")
    api.require_project().delete_shape(shape_id)
    return {"id": shape_id}


def _classes_add(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    color = get_str(a, "color", max_len=7) if a.get("color") else None
    return api.require_project().add_class(get_str(a, "name", max_len=200), color)


def _classes_delete(api: Api, a: dict[str, Any]) -> dict[str, Any]:
    class_id = get_int(a, "id")
    api.require_project().delete_class(class_id)
    return {"id": class_id}


def _chosen_folders(api: Api) -> set[Path]:
    """Folders the person chose to open: the recent list (each was picked, dropped or named on
    the command line once) and the open project."""
    chosen = {Path(p) for p in api.settings.recent}
    if api.project is not None:
        chosen.add(api.project.folder)
    return {p.resolve() for p in chosen}


def _check_page_open(api: Api, a: dict[str, Any]) -> None:
    """``project.open`` from the page: only a folder the person chose before.

    Opening a folder creates ``.fieldmark/`` in it and scans it, so a page that could name any
    path could write into any folder the user can write (ARCHITECTURE.md, "The web page is
    untrusted territory"). The page only ever re-opens recent projects; new ones come through
    the native dialog (``project.pick``) or a drop, which the shell handles without the page.
    A path that is not a folder is left to ``project.open`` (it answers ``not_a_folder``).
    """
    path = a.get("path")
    if not isinstance(path, str) or "\x00" in path:
        return  # project.open refuses it with the field named
    try:
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir() or folder in _chosen_folders(api):
            return
    except (OSError, RuntimeError):  # unreadable or a symlink loop: project.open says why
        return
    raise InvalidArgument(f"'{folder}' is not one of your recent projects. Open it with "
                          "Open folder (Ctrl+O) or drop it on the window.", code="not_picked",
                          detail={"field": "path", "value": str(folder)})


def _refuse_page_install(api: Api, a: dict[str, Any]) -> None:
    """``models.install`` names any file; the page installs through ``models.pick_install``,
    where the shell's native dialog supplies the path and the page never sees it."""
    raise InvalidArgument("Choose the model pack with Install from file or folder in the Models "
                          "dialog.", code="not_picked", detail={"field": "path"})


# Checks for calls that come from the page only (backend/gui/bridge.py). The CLI, the self-test
# and the shell's own drop handler name paths a person typed or dropped, so they skip these.
PAGE_CHECKS: dict[str, Callable[[Api, dict[str, Any]], None]] = {
    "project.open": _check_page_open,
    "models.install": _refuse_page_install,
}


def page_refusal(api: Api, method: str, args: Any) -> dict[str, Any] | None:
    """The error answer for a page call that names a path the person did not choose, or None."""
    check = PAGE_CHECKS.get(method)
    if check is None or not isinstance(args, dict):
        return None
    try:
        check(api, args)
    except FieldmarkError as exc:
        return {"error": exc.to_dict()}
    return None


METHODS: dict[str, Callable[[Api, dict[str, Any]], Any]] = {
    "images.list": _images_list,
    "image.get": _image_get,
    "image.set_status": _image_set_status,
    "shapes.list": _shapes_list,
    "shapes.add": _shapes_add,
    "shapes.update": _shapes_update,
    "shapes.delete": _shapes_delete,
    "classes.list": lambda api, a: api.require_project().classes(),
    "classes.add": _classes_add,
    "classes.rename": lambda api, a: api.require_project().rename_class(
        get_int(a, "id"), get_str(a, "name", max_len=200)),
    "classes.recolor": lambda api, a: api.require_project().recolor_class(
        get_int(a, "id"), get_str(a, "color", max_len=7)),
    "classes.delete": _classes_delete,
    "classes.merge": lambda api, a: api.require_project().merge_classes(
        get_int(a, "source"), get_int(a, "target")),
    "edit.undo": lambda api, a: api.require_project().undo(),
    "edit.redo": lambda api, a: api.require_project().redo(),
    "edit.state": lambda api, a: api.require_project().undo_state(),
}
