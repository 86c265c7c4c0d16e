"""Argument checking for everything that arrives from the page (untrusted) or the CLI.

Each getter raises :class:`InvalidArgument` naming the field and the value it got, so a bad
call from the page becomes a clear error instead of an exception deep in the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from backend.errors import InvalidArgument

_MISSING = object()
# Ids are SQLite INTEGERs: a bigger number from the page (JSON has no limit) would reach the
# store as an OverflowError, a "bug" for the person, instead of a refused argument.
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


def _bad(name: str, value: Any, want: str) -> InvalidArgument:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidArgument(f"'{name}' must be {want}, got {shown}.", detail={"field": name})


def args_dict(args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise _bad("args", args, "an object")
    return args


def get_int(args: dict[str, Any], name: str, *, default: Any = _MISSING, minimum: int | None = None) -> int:
    value = args.get(name, default)
    if value is _MISSING:
        raise InvalidArgument(f"'{name}' is required.", detail={"field": name})
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(name, value, "an integer")
    if not INT_MIN <= value <= INT_MAX:
        raise _bad(name, value, "an integer that fits in 64 bits")
    if minimum is not None and value < minimum:
        raise _bad(name, value, f"at least {minimum}")
    return value


def get_optional_int(args: dict[str, Any], name: str) -> int | None:
    if args.get(name) is None:
        return None
    return get_int(args, name)


def get_str(args: dict[str, Any], name: str, *, default: Any = _MISSING, max_len: int = 4096,
            allow_empty: bool = False) -> str:
    value = args.get(name, default)
    if value is _MISSING:
        raise InvalidArgument(f"'{name}' is required.", detail={"field": name})
    if not isinstance(value, str):
        raise _bad(name, value, "a string")
    if len(value) > max_len:
        raise _bad(name, value, f"at most {max_len} characters")
    if "\x00" in value:  # no name or path holds one; the OS refuses it with a ValueError
        raise _bad(name, value, "text without NUL characters")
    if not allow_empty and not value.strip():
        raise _bad(name, value, "a non-empty string")
    return value


def get_choice(args: dict[str, Any], name: str, choices: Iterable[str], *, default: Any = _MISSING) -> str:
    opts = tuple(choices)
    value = args.get(name, default)
    if value is _MISSING:
        raise InvalidArgument(f"'{name}' is required.", detail={"field": name})
    if value not in opts:
        raise _bad(name, value, "one of " + ", ".join(opts))
    return str(value)


def get_float(args: dict[str, Any], name: str, *, default: Any = _MISSING, lo: float | None = None,
              hi: float | None = None) -> float:
    value = args.get(name, default)
    if value is _MISSING:
        raise InvalidArgument(f"'{name}' is required.", detail={"field": name})
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(name, value, "a finite number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _bad(name, value, f"between {lo} and {hi}")
    return float(value)


def has(args: dict[str, Any], name: str) -> bool:
    return name in args
