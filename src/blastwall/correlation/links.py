"""One attack, one incident: signals joined by a shared trace or conversation.

A signal that shares its trace (else its conversation) with a signal received within the
window, on the same system or on one linked to it in the inventory (`depends_on`, either
way), joins that signal's live candidate, whatever their archetypes. The strongest signal,
the one the severity policy rates gravest alone, gives the candidate its archetype; the
candidate keeps the reasons. An open incident takes what the later signal changed: a
graver severity, the new archetype, each on its timeline, old → new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from blastwall import pipeline
from blastwall.auth.roles import Principal
from blastwall.correlation import service
from blastwall.correlation.matching import system_of
from blastwall.correlation.models import Candidate
from blastwall.correlation.schemas import CandidateStatus
from blastwall.correlation.severity import Assessment, at_or_above, signal_rank
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident
from blastwall.signals.models import Signal

MAX_LINKED = 50  # signals joined by trace or conversation listed in a candidate's reasons


@dataclass(frozen=True)
class Link:
    """An earlier signal of the same trace or conversation whose candidate takes a signal."""

    candidate: Candidate
    other: Signal
    by: str  # trace or conversation
    value: str

    @property
    def name(self) -> str:
        return f"{self.by}:{self.value}"[:250]


def shared_ids(signal: Signal) -> list[tuple[str, str]]:
    """What may join a signal to the candidate of another: its trace, then its
    conversation, as (`trace` or `conversation`, value)."""
    found = [("trace", signal.trace_id), ("conversation", signal.conversation_id)]
    return [(by, value) for by, value in found if value]


def related(mine: str, theirs: str | None, depends_on: Callable[[str], list[str]]) -> bool:
    """The same system, or one that depends on the other in the inventory."""
    if theirs is None:
        return False
    return mine == theirs or theirs in depends_on(mine) or mine in depends_on(theirs)


def find(
    session: Session,
    signal: Signal,
    *,
    since: datetime,
    depends_on: Callable[[str], list[str]],
    live: Callable[[Candidate | None], Candidate | None],
) -> Link | None:
    """The live candidate of the latest signal received since `since` that shares the
    signal's trace (else its conversation) on a related system. Reports are left to their
    own rule (the candidate of their conversation, on any system). A declined candidate takes
    no signal this way: what follows an attack someone called noise may be worse."""
    system = system_of(signal)
    if signal.source == "report" or system is None:
        return None
    for by, value in shared_ids(signal):
        for other in service.signals_sharing(
            session, field=by, value=value, since=since, besides=signal.id
        ):
            if not related(system, system_of(other), depends_on):
                continue
            found = session.get(Candidate, other.candidate_id) if other.candidate_id else None
            candidate = live(found)
            if candidate is not None and candidate.status != CandidateStatus.declined:
                return Link(candidate, other, by, value)
    return None


# --- the strongest signal ---------------------------------------------------------------------


def affected(signal: Signal) -> int:
    """The conversations or users a signal is about: its own, or the sender's count."""
    attributes = signal.attributes or {}
    own = int(bool(signal.conversation_id) or any(attributes.get(n) for n in ("user", "user_id")))
    counted = [attributes.get(n) for n in ("conversations", "users")]
    return max([own, *(c for c in counted if isinstance(c, int))])


def strength(signal: Signal, rating: Assessment) -> dict[str, Any]:
    """How strong a signal is, as a candidate's reasons keep it: the severity the policy
    gives it alone, its own severity, and when it began."""
    began = signal.starts_at or signal.created_at
    return {
        "kind": "archetype",
        "signal": signal.id,
        "archetype": signal.archetype,
        "severity": rating.severity,
        "points": rating.points,
        "signal_severity": signal.severity,
        "at": began.isoformat() if began else None,
    }


def stronger(mine: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """More points alone, then a graver signal severity; on a tie, the signal that began
    first (the cause, more often than not), whatever the order they arrived in."""
    ours = (mine.get("points", 0), signal_rank(mine.get("signal_severity", "")))
    other = (theirs.get("points", 0), signal_rank(theirs.get("signal_severity", "")))
    if ours != other:
        return ours > other
    began, their_start = mine.get("at"), theirs.get("at")
    if not began or not their_start:
        return False
    return datetime.fromisoformat(began) < datetime.fromisoformat(their_start)


def rated(strength: dict[str, Any]) -> str:
    """`SEV2 (11 points; signal high)`: how the policy rates a signal alone."""
    return (
        f"{strength.get('severity')} ({strength.get('points')} points; signal "
        f"{strength.get('signal_severity')})"
    )


def first_reasons(signal: Signal, rating: Assessment) -> list[dict[str, Any]]:
    """The reasons of a candidate a signal starts: where its archetype comes from."""
    if signal.archetype is None:
        return []
    mine = strength(signal, rating)
    why = f"{signal.archetype} from signal {signal.id}, the first; alone it rates {rated(mine)}"
    return [{**mine, "why": why}]


def weigh(
    candidate: Candidate,
    signal: Signal,
    link: Link,
    *,
    new_group: bool,
    rate: Callable[[Signal], Assessment],
    may_lead: bool = True,
) -> None:
    """Give the candidate the archetype of the stronger of its strongest signal and this
    one, and list this one among its reasons (once per group): the signal it shares the
    trace or conversation with, how the policy rates it alone, what became of the archetype.
    A signal too weak to start a candidate alone (`may_lead` false) never gives it."""
    mine = strength(signal, rate(signal))
    reasons = list(candidate.reasons or [])
    holder = next((r for r in reasons if r.get("kind") == "archetype"), None)
    if holder is None and candidate.archetype and link.other.archetype == candidate.archetype:
        holder = strength(link.other, rate(link.other))  # a candidate from before reasons
    previous = candidate.archetype
    if signal.archetype is None or not may_lead:
        wins = False
    elif candidate.archetype is None:
        wins = True
    else:
        wins = holder is not None and stronger(mine, holder)
    if wins:
        beaten = (
            f", above {holder['archetype']} of signal {holder['signal']}, {rated(holder)}"
            if holder is not None
            else "; the candidate had no archetype"
        )
        why = f"{signal.archetype} from signal {signal.id}, the strongest: alone it rates "
        reasons = [{**mine, "why": why + rated(mine) + beaten}] + [
            r for r in reasons if r.get("kind") != "archetype"
        ]
        candidate.archetype = signal.archetype
    if new_group and sum(r.get("kind") == "linked" for r in reasons) < MAX_LINKED:
        if wins and signal.archetype == previous:
            outcome = f"the strongest {previous} signal now"
        elif wins:
            outcome = f"the strongest, so the archetype is now {signal.archetype}"
        elif not may_lead:
            outcome = (
                "too weak to start a candidate alone, it joins: the archetype stays "
                f"{candidate.archetype or 'open'}"
            )
        else:
            outcome = f"the archetype stays {candidate.archetype or 'open'}" + (
                f" (signal {holder['signal']} rates {rated(holder)})" if holder else ""
            )
        other = link.other
        reasons.append(
            {
                "kind": "linked",
                "signal": signal.id,
                "archetype": signal.archetype,
                "system": system_of(signal),
                "by": link.by,
                "value": link.value,
                "with_signal": other.id,
                "severity": mine["severity"],
                "points": mine["points"],
                "why": f"signal {signal.id} ({signal.archetype or signal.kind}, "
                f"{signal.severity}, on {system_of(signal)}) shares {link.by} {link.value} "
                f"with signal {other.id} ({other.archetype or other.kind} on "
                f"{system_of(other)}); alone it rates {rated(mine)}: {outcome}",
            }
        )
    candidate.reasons = reasons


# --- the incident -----------------------------------------------------------------------------


def graver(severity: str, than: str) -> bool:
    return at_or_above(severity, than) and severity != than


def carry(
    session: Session,
    incident: Incident,
    candidate: Candidate,
    signal: Signal,
    *,
    before: str,
    archetype_before: str | None,
    actor: Principal,
) -> bool:
    """Carry on to the candidate's open incident what a signal joined by trace or
    conversation changed: a graver severity raises it (never lowers it); a new strongest
    archetype replaces the one the incident took from the candidate, unless a person changed
    it since. Each change is a `field_changed` entry on its timeline, old → new. True when
    the severity was raised."""
    why = f"signal {signal.id} ({signal.archetype or signal.kind}) joined by {signal.linked_by}"
    if (
        candidate.archetype is not None
        and candidate.archetype != archetype_before
        and incident.archetype == archetype_before
    ):
        incidents.record_entry(
            session,
            incident=incident,
            kind="field_changed",
            text=f"archetype changed {archetype_before} → {candidate.archetype}: {why} is the "
            "strongest signal",
            data={
                "field": "archetype",
                "before": archetype_before,
                "after": candidate.archetype,
                "candidate": candidate.id,
                "signal": signal.id,
            },
            actor=actor,
        )
        incident.archetype = candidate.archetype
    raise_it = graver(candidate.severity, before) and graver(candidate.severity, incident.severity)
    if raise_it:
        explained = service.explain(candidate)
        incidents.record_entry(
            session,
            incident=incident,
            kind="field_changed",
            text=f"severity raised {incident.severity} → {candidate.severity}: {why}. {explained}",
            data={
                "field": "severity",
                "before": incident.severity,
                "after": candidate.severity,
                "candidate": candidate.id,
                "signal": signal.id,
            },
            actor=actor,
        )
        before_severity = incident.severity
        incident.severity = candidate.severity
        incident.severity_reason = explained
        detail = f"Severity raised {before_severity} → {candidate.severity}: {why}."
        event = incidents.change_event(
            session, incident, change="escalated", actor=actor, detail=detail
        )
        pipeline.publish(session, event)
    return raise_it
