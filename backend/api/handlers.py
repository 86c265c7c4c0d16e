"""Handlers for images, shapes, classes and undo: validate, call the store, return records."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from backend.api.validate import get_choice, get_int, get_optional_int, get_str, has
from backend.errors import ImageReadError, InvalidArgument
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
