"""TIMESTAMPTZ values: ISO 8601 text in, microseconds since the Unix epoch (UTC) stored.

A value without an offset is read in the collection's `timezone` property (UTC by
default); output is ISO 8601 in the request's `timezone`, else the collection's.
A leaf module (imports only `shoal.errors` and the standard library).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shoal.errors import invalid

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=64)
def zone(name: str | None) -> tzinfo:
    """The tz database zone `name` (UTC when empty), or 1100."""
    if not name or name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(f"invalid timezone: {name}") from None


def parse_iso(text: object, default_tz: str | None = None) -> int:
    """Microseconds since the epoch of an ISO 8601 timestamp (1100 if it is not one)."""
    if not isinstance(text, str):
        raise invalid(f"TIMESTAMPTZ values must be ISO 8601 strings, got {text!r}")
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise invalid(f"invalid TIMESTAMPTZ value {text!r}: expected ISO 8601, like 2025-01-01T08:00:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(default_tz))
    return (value - EPOCH) // timedelta(microseconds=1)


def format_iso(micros: int, tz: str | None = None) -> str:
    value = (EPOCH + timedelta(microseconds=int(micros))).astimezone(zone(tz))
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
