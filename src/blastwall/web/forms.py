"""Reading what people type into the interface's forms, with the same kind of clear error
as the API's validation: what was wrong, in which field, and what to write instead."""

from __future__ import annotations

from datetime import UTC, datetime

from blastwall.errors import InvalidInput, Problem

TIME_HINT = "write it as 2026-12-08T10:30 (UTC)"


def utc_time(text: str, *, field: str, what: str) -> datetime:
    """A time from a form field: ISO 8601, read as UTC unless it names its zone. `what`
    names it in the error ('The submission time')."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"{what} is not a time.", [Problem(field, TIME_HINT)]) from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def optional_utc_time(text: str, *, field: str, what: str) -> datetime | None:
    """As `utc_time`, with a blank field read as none."""
    return utc_time(text, field=field, what=what) if text.strip() else None
