"""The signals page: recent signals with filters and keyset pagination, a count of the shown
signals per system and detector, and for each the candidate or incident it joined.

Signals are read through `signals.service.list_signals`, as the API reads them. The
candidate of a signal is shown only where `correlation.service.get_candidate` shows it to
the person: a candidate that became a restricted incident the person does not take part in
is neither linked nor named. The excerpt of what a detector matched is content, shown only
to roles that may see content (`see_content`), like the interactions it was cut from."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.correlation import service as correlation
from blastwall.correlation.models import Candidate
from blastwall.dependencies import SessionDep
from blastwall.errors import NotFound
from blastwall.signals import service
from blastwall.signals.models import Signal
from blastwall.signals.schemas import SignalSeverity, SignalStatus
from blastwall.web.deps import UiDep
from blastwall.web.render import page

router = APIRouter()
PAGE = 50
Order = Literal["time", "system", "detector"]


def _visible_candidates(
    session: Session, principal: Principal, signals: list[Signal]
) -> dict[int, Candidate]:
    """The candidates of `signals` that the person may see, by id."""
    seen: dict[int, Candidate] = {}
    for candidate_id in {s.candidate_id for s in signals if s.candidate_id is not None}:
        try:
            seen[candidate_id] = correlation.get_candidate(
                session, candidate_id=candidate_id, principal=principal
            )
        except NotFound:  # a restricted incident's: not even its title
            continue
    return seen


def system_of(signal: Signal) -> str:
    return signal.system_id or signal.system_ref or "—"


def detector_of(signal: Signal) -> str:
    """The detector that raised a finding; for other signals, their source."""
    return signal.detector or signal.source


def _sorted(signals: list[Signal], order: Order) -> list[Signal]:
    """The page's signals newest first, or grouped by system or detector (newest first in
    each group)."""
    if order == "system":
        return sorted(signals, key=system_of)
    if order == "detector":
        return sorted(signals, key=detector_of)
    return signals


@router.get("/signals")
def signals_page(
    request: Request,
    session: SessionDep,
    ui: UiDep,
    system: Annotated[str | None, Query(max_length=200)] = None,
    detector: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=200)] = None,
    severity: Annotated[SignalSeverity | None, Query()] = None,
    status: Annotated[SignalStatus | None, Query()] = None,
    order: Annotated[Order, Query()] = "time",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Signals newest first, PAGE at a time, filtered as the API filters them."""
    principal = ui.principal
    rows, next_cursor = service.list_signals(
        session,
        principal=principal,
        limit=PAGE,
        cursor=cursor,
        system=system or None,
        detector=detector or None,
        kind=kind or None,
        severity=severity.value if severity else None,
        status=status.value if status else None,
    )
    chosen = {
        "system": system or "",
        "detector": detector or "",
        "kind": kind or "",
        "severity": severity.value if severity else "",
        "status": status.value if status else "",
    }
    kept = {k: v for k, v in chosen.items() if v}
    if order != "time":
        kept["order"] = order
    counts = Counter((system_of(s), detector_of(s)) for s in rows)
    return page(
        request,
        "signals/list.html",
        signals=_sorted(rows, order),
        candidates=_visible_candidates(session, principal, rows),
        show_content=principal.can(Permission.see_content),
        counts=sorted(counts.items()),
        chosen=chosen,
        order=order,
        severities=[s.value for s in SignalSeverity],
        statuses=[s.value for s in SignalStatus],
        system_of=system_of,
        detector_of=detector_of,
        next_url=f"/ui/signals?{urlencode({**kept, 'cursor': next_cursor})}"
        if next_cursor
        else None,
        first_url=f"/ui/signals?{urlencode(kept)}" if cursor else None,
    )
