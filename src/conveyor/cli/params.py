"""Option parsers whose bad values become click usage errors (exit 2), not engine errors.

They are option callbacks rather than ParamType subclasses because ParamType
became generic in later click releases; callbacks read the same on every click >= 8.1.
"""

from __future__ import annotations

import re
from typing import Any

import click

from ..errors import PayloadError
from ..payload import parse_json_object

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")


def parse_duration(text: str) -> float:
    """'90' or '90s', '30m', '12h', '7d', '2w' -> seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90, 90s, 30m, 12h or 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def json_object(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        return parse_json_object(value, what="the payload")
    except PayloadError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def name_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """'families,images' -> ['families', 'images']."""
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise click.BadParameter("give at least one name, e.g. default,images", ctx, param)
    return names


def concurrency(ctx: click.Context, param: click.Parameter, value: str | None) -> int | dict[str, int] | None:
    """'5' (every queue) or 'families=3,images=10' (per queue)."""
    if value is None:
        return None
    if "=" not in value:
        return _count(value, ctx, param)
    limits: dict[str, int] = {}
    for item in value.split(","):
        queue, sep, count = item.partition("=")
        if not sep or not queue.strip():
            raise click.BadParameter(f"{item!r} is not queue=count (e.g. families=3,images=10)", ctx, param)
        limits[queue.strip()] = _count(count, ctx, param)
    return limits


def _count(text: str, ctx: click.Context, param: click.Parameter) -> int:
    try:
        count = int(text)
    except ValueError:
        raise click.BadParameter(f"{text.strip()!r} is not a whole number", ctx, param) from None
    if count < 1:
        raise click.BadParameter(f"concurrency must be at least 1, got {count}", ctx, param)
    return count
