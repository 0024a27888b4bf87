"""An operator's overrides of a dataclass of thresholds (``DetectorConfig``,
``QualityConfig``…): each value checked against the type of its field's default, no number
below zero (no threshold is), and every error naming ``kind.field``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NoReturn


def replaced(config: Any, fields: Any, where: str) -> Any:
    """The dataclass ``config`` with ``fields`` replaced, each checked against the type of
    its default (a nested dataclass takes a mapping of its own fields)."""
    changes = _checked_fields(config, fields, where)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as exc:  # the dataclass's own rules (__post_init__) name the field
        raise ValueError(f"{where}.{exc}") from None


def _checked_fields(config: Any, fields: Any, where: str) -> dict[str, Any]:
    """``fields`` (a mapping of field names of the dataclass ``config`` to values), each
    value checked against the type of ``config``'s and converted to it."""
    if not isinstance(fields, Mapping):
        raise ValueError(f"{where}: expected a table of thresholds, got {fields!r}")
    known = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for name, value in fields.items():
        if name not in known:
            raise ValueError(
                f"{where}.{name}: not a threshold of {type(config).__name__} (its module, "
                "under processing/, lists them)"
            )
        changes[name] = _checked(getattr(config, name), value, f"{where}.{name}")
    return changes


def _checked(default: Any, value: Any, where: str) -> Any:
    """``value`` as the type of ``default``; a whole number does for a decimal one. Numbers
    below zero are refused: every threshold is a count, a share or a size."""
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return replaced(default, value, where)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, expected = number and isinstance(value, int), "a whole number"
    elif isinstance(default, float):
        ok, expected = number, "a number"
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        if not (isinstance(value, list | tuple) and len(value) == len(default)):
            _wrong(where, f"{len(default)} values", value)
        return tuple(_checked(d, v, where) for d, v in zip(default, value, strict=True))
    else:
        ok, expected = isinstance(value, type(default)), type(default).__name__
    if not ok:
        _wrong(where, expected, value)
    if number and value < 0:
        raise ValueError(f"{where}: must be 0 or more, got {value!r}")
    return value


def _wrong(where: str, expected: str, value: Any) -> NoReturn:
    raise ValueError(f"{where}: expected {expected}, got {value!r}")
