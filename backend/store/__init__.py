"""The project store: images, classes, shapes, settings and undo history in SQLite.

Use :class:`Project` (``Project.open(folder)``); the other modules are its parts.
"""

from backend.store.project import Project

__all__ = ["Project"]
