"""Keyset pagination: lists answer `{"items": [...], "next": cursor-or-null}`.

A cursor is an opaque, URL-safe token holding the sort key of the last item served.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session

from blastwall.errors import InvalidInput, Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next: str | None = None


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _parse(value: Any, kind: type) -> Any:
    if kind is datetime and isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 2**63:
            raise ValueError("out of range")
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"expected {kind.__name__}")


def decode_cursor(cursor: str | None, *, types: tuple[type, ...]) -> list[Any] | None:
    """The sort key inside `cursor`, typed as `types`; InvalidInput if it was not made by
    `encode_cursor` for this list."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(key, list) or len(key) != len(types):
            raise ValueError("wrong shape")
        return [_parse(v, t) for v, t in zip(key, types, strict=True)]
    except (binascii.Error, ValueError, UnicodeError, orjson.JSONDecodeError):
        raise InvalidInput(
            "The cursor is not one this server issued.",
            [Problem("query.cursor", "use the `next` value of the previous page, unchanged")],
        ) from None


def by_id(row: Any) -> list[Any]:
    return [row.id]


def fetch_page(
    session: Session,
    query: Select[T],
    *,
    limit: int,
    key: Callable[[T], list[Any]] = by_id,
) -> tuple[list[T], str | None]:
    """Up to `limit` rows of the ordered `query`, and the cursor of the next page (None when
    this is the last): `key` gives the sort key of a row, as the cursor stores it."""
    rows = list(session.scalars(query.limit(limit + 1)))
    next_cursor = encode_cursor(key(rows[limit - 1])) if len(rows) > limit else None
    return rows[:limit], next_cursor
