"""Drafts of a report, in Markdown, rendered from the incident's confirmed facts: the regime's
required contents, each filled or stated as "not yet determined", with the list of gaps at
the head. Suspected facts and open hypotheses appear only in a section marked as such, and
only where the regime allows preliminary information."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from blastwall.auth.roles import Permission, Principal
from blastwall.containment import service as containment
from blastwall.containment.affected import find_affected
from blastwall.db import utcnow
from blastwall.incidents import service as incidents
from blastwall.incidents.models import Incident, TimelineEntry
from blastwall.inventory import service as inventory
from blastwall.obligations import flows, service
from blastwall.obligations.models import IncidentFact
from blastwall.obligations.profile import OrganisationSpec
from blastwall.obligations.rules import Content
from blastwall.obligations.schemas import FactState, ObligationOut

__all__ = ["UNKNOWN", "Draft", "render", "to_pdf"]

UNKNOWN = "not yet determined"


@dataclass(frozen=True)
class Draft:
    markdown: str
    gaps: list[str]


@dataclass(frozen=True)
class _Sources:
    session: Session
    incident: Incident
    facts: dict[str, IncidentFact]
    profile: OrganisationSpec | None
    anchors: dict[str, datetime]
    principal: Principal

    def fact(self, name: str) -> Any:
        row = self.facts.get(name)
        if row is None or row.state is not FactState.confirmed:
            return None
        return row.value


def _systems(src: _Sources) -> str | None:
    ids = incidents.systems_of(src.session, incident_ids=[src.incident.id]).get(src.incident.id, [])
    lines = []
    for system_id in ids:
        spec = inventory.get_system(src.session, system_id=system_id).parsed
        parts = [f"{m.provider} {m.name} {m.version}" for m in spec.components.models]
        parts += [f"prompt {p.id} {p.version}" for p in spec.components.prompts]
        lines.append(
            f"- {spec.name} (`{spec.id}`): " + ("; ".join(parts) or "no components declared")
        )
    return "\n".join(lines) or None


def _dates(src: _Sources) -> str | None:
    lines = [f"- Detected: {src.incident.detected_at.isoformat()}"]
    lines += [
        f"- {kind.replace('_', ' ').capitalize()}: {at.isoformat()}"
        for kind, at in src.anchors.items()
    ]
    return "\n".join(lines)


def _nature(src: _Sources) -> str | None:
    texts = [src.incident.summary] if src.incident.summary else []
    entries = src.session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.incident_id == src.incident.id, TimelineEntry.kind == "fact")
        .order_by(TimelineEntry.id)
    )
    texts += [
        f"- {e.text}"
        for e in entries
        if "obligation_facts" not in e.data and "anchor" not in e.data
    ]
    confirmed = src.session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.incident_id == src.incident.id,
            TimelineEntry.kind == "hypothesis_confirmed",
        )
    )
    texts += [f"- {e.text}" for e in confirmed]
    return "\n".join(texts) or None


def _measures(src: _Sources) -> str | None:
    rows, _ = containment.list_actions(src.session, incident_id=src.incident.id, limit=200)
    lines = []
    for row in rows:
        line = f"- {row.describe()}: {row.state}"
        if row.applied_at:
            line += f", applied {row.applied_at.isoformat()}"
        if row.verification:
            line += f", verification {row.verification}"
        lines.append(line + f" ({row.reason})")
    return "\n".join(lines) or None


def _contact(src: _Sources) -> str | None:
    point = src.profile.contact() if src.profile else None
    if point is None:
        return None
    return ", ".join(x for x in (f"{point.name} ({point.role})", point.email, point.phone) if x)


def _fact(name: str) -> Callable[[_Sources], str | None]:
    def value(src: _Sources) -> str | None:
        found = src.fact(name)
        if found is None:
            return None
        if isinstance(found, list):
            return ", ".join(str(x) for x in found)
        if isinstance(found, bool):
            return "yes" if found else "no"
        return str(found)

    return value


FILLERS: dict[str, Callable[[_Sources], str | None]] = {
    "systems": _systems,
    "dates": _dates,
    "nature": _nature,
    "measures": _measures,
    "contact": _contact,
    "affected_people": _fact("affected_people"),
    "records": _fact("records"),
    "data_categories": _fact("data_categories"),
    "consequences": _fact("consequences"),
    "causes": _fact("causes"),
    "causal_link": _fact("causal_link"),
    "cross_border": _fact("cross_border"),
    "unlawful_or_malicious": _fact("unlawful_or_malicious"),
}


def _fill(content: Content, src: _Sources) -> str | None:
    filler = FILLERS.get(content.source)
    return filler(src) if filler else None


def _measured(src: _Sources) -> str:
    """What the telemetry's affected report counts (`blastwall affected`), beside a count of
    people not yet determined; nothing where the reader may not see content."""
    if not src.principal.can(Permission.see_content):
        return ""
    found = find_affected(src.session, incident_id=src.incident.id, principal=src.principal)
    if not found.users and not found.conversations:
        return ""
    return (
        f" The telemetry's affected report counts {len(found.users)} user(s) in "
        f"{len(found.conversations)} conversation(s) ({found.scope}); a measure, not yet "
        "confirmed as the number of people affected."
    )


def _preliminary(src: _Sources) -> list[str]:
    lines = [
        f"- {row.name} = {row.value!r} (suspected, set by {row.set_by})"
        for row in src.facts.values()
        if row.state is FactState.suspected
    ]
    hypotheses = src.session.scalars(
        select(TimelineEntry).where(
            TimelineEntry.incident_id == src.incident.id, TimelineEntry.kind == "hypothesis"
        )
    )
    judged = set(
        src.session.scalars(
            select(TimelineEntry.ref_id).where(
                TimelineEntry.incident_id == src.incident.id, TimelineEntry.ref_id.is_not(None)
            )
        )
    )
    lines += [f"- {h.text} (open hypothesis)" for h in hypotheses if h.id not in judged]
    return lines


def _clock_lines(obligation: ObligationOut) -> list[str]:
    lines = []
    for clock in obligation.clocks:
        if clock.due is None:
            wait = ", ".join(clock.waiting_for)
            when = (
                f"waiting for {wait}"
                if wait
                else "no fixed period (" + (clock.note or "see the text") + ")"
            )
        else:
            when = f"due {clock.due.local} ({clock.due.basis})"
            when += "".join(f"; or {a.local} ({a.basis})" for a in clock.alternatives)
        lines.append(f"- {clock.name} ({clock.article}): {when}")
    return lines


def render(
    session: Session, *, incident_id: int, obligation_id: int, principal: Principal
) -> Draft:
    """The draft of an obligation's report."""
    obligation = flows.describe(
        session, incident_id=incident_id, principal=principal, obligation_id=obligation_id
    )[0]
    incident = incidents.get_incident(session, incident_id=incident_id, principal=principal)
    current = service.current_profile(session)
    profile = current[1] if current else None
    rule = service.rules_of(profile)[obligation.rule_id][0]
    src = _Sources(
        session,
        incident,
        service.facts_of(session, incident_id=incident.id),
        profile,
        {k: a.at for k, a in flows.anchors(session, incident).items()},
        principal,
    )
    filled = [(c, _fill(c, src)) for c in rule.contents]
    gaps = [c.label for c, value in filled if value is None]
    lines = [
        f"# Draft: {obligation.regime}, {obligation.article}",
        "",
        f"{obligation.title}. Incident {incident.id}: {incident.title}. Obligation "
        f"{obligation.id} ({obligation.status.value.replace('_', ' ')}). Drafted "
        f"{utcnow().isoformat(timespec='seconds')} from confirmed facts only. "
        f"Official text: {obligation.link}",
        "",
        "## Gaps",
        "",
        *([f"- {g}: {UNKNOWN}" for g in gaps] or ["- none"]),
        "",
        "## Deadlines",
        "",
        *_clock_lines(obligation),
        "",
        "## Contents",
    ]
    for content, value in filled:
        cited = f" ({content.article})" if content.article else ""
        shown = value or f"_{UNKNOWN}_"
        if value is None and content.source == "affected_people":
            shown += _measured(src)
        lines += ["", f"### {content.label}{cited}", "", shown]
    if rule.preliminary_allowed:
        lines += [
            "",
            "## Preliminary information: hypotheses, not confirmed",
            "",
            *(_preliminary(src) or ["- none"]),
        ]
    return Draft("\n".join(lines) + "\n", gaps)


_PLAIN = str.maketrans(
    {"→": "->", "…": "...", "—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"'}
)


def _latin(text: str) -> str:
    """The PDF's core fonts are Latin-1: other characters are written as `?`."""
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def to_pdf(markdown: str) -> bytes:
    """The draft as a PDF (fpdf2): headings, bullets and paragraphs of its Markdown."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    sizes = {"# ": 16, "## ": 13, "### ": 11}
    for line in markdown.splitlines():
        heading = next((m for m in ("### ", "## ", "# ") if line.startswith(m)), None)
        if heading is not None:
            pdf.set_font("Helvetica", "B", sizes[heading])
            pdf.multi_cell(0, 7, _latin(line[len(heading) :]), new_x="LMARGIN", new_y="NEXT")
            continue
        italic = line.startswith("_") and line.endswith("_") and len(line) > 1
        pdf.set_font("Helvetica", "I" if italic else "", 10)
        text = line.strip("_") if italic else line
        pdf.multi_cell(0, 5, _latin(text) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
