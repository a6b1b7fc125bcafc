"""`blastwall candidates ...` and `blastwall noise ...`: triage incident candidates; snooze
signals and declare maintenance windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from sqlalchemy.orm import Session

from blastwall.console import audit, operator, out, print_json, print_table, session_scope
from blastwall.correlation import flows, service, triage
from blastwall.correlation.models import Candidate
from blastwall.correlation.policy import load_policy
from blastwall.correlation.schemas import (
    Accept,
    CandidateOut,
    CandidateStatus,
    Decline,
    GroupOut,
    MaintenanceCreate,
    Match,
    Merge,
    NoiseRuleKind,
    SnoozeCreate,
)
from blastwall.incidents.schemas import Archetype, Severity, Visibility
from blastwall.settings import get_settings
from blastwall.signals import service as signals

app = typer.Typer(
    help="Incident candidates: list (the default), show, accept, decline, merge; the policy.",
    invoke_without_command=True,
)
noise_app = typer.Typer(
    help="Noise control: snoozes and maintenance windows.", no_args_is_help=True
)

CandidateArg = Annotated[int, typer.Argument(help="The candidate's number.", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _print(candidates: list[CandidateOut], json: bool) -> None:
    if json:
        print_json(candidates)
        return
    print_table(
        ["id", "severity", "status", "incident", "signals", "systems", "last signal", "title"],
        [
            (
                c.id,
                c.severity,
                c.status,
                c.incident_id,
                c.signal_count,
                c.systems,
                c.last_signal_at,
                c.title,
            )
            for c in candidates
        ],
    )


@app.callback()
def candidates(
    ctx: typer.Context,
    status: Annotated[CandidateStatus | None, typer.Option(help="Only this status.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Only this severity.")] = None,
    system: Annotated[str | None, typer.Option(help="Only those covering this system.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    json: JsonOpt = False,
) -> None:
    """List incident candidates, newest first (`blastwall candidates --status pending`)."""
    if ctx.invoked_subcommand is not None:
        return
    with session_scope() as session:
        rows, _ = service.list_candidates(
            session,
            principal=operator(),
            limit=limit,
            status=status.value if status else None,
            severity=severity.value if severity else None,
            system=system,
        )
        items = service.describe(session, rows)
    _print(items, json)


@app.command("show")
def show(candidate_id: CandidateArg, json: JsonOpt = False) -> None:
    """Show a candidate: its severity, the policy's reasoning and its signal groups."""
    with session_scope() as session:
        row = service.get_candidate(session, candidate_id=candidate_id, principal=operator())
        c = service.describe(session, [row])[0]
        groups, _ = service.list_groups(
            session, principal=operator(), candidate_id=candidate_id, limit=500
        )
        group_items = [GroupOut.model_validate(g) for g in groups]
    if json:
        print_json({"candidate": c, "groups": group_items})
        return
    out.print(f"[bold]Candidate {c.id}: {escape(c.title)}[/bold]", highlight=False, markup=True)
    out.print(
        f"{c.severity} · {c.status.value}"
        + (f" · incident {c.incident_id}" if c.incident_id else "")
        + f" · {c.basis.value} {c.key} · systems: {', '.join(c.systems) or '-'}",
        highlight=False,
    )
    out.print(f"severity: {c.severity_explanation}", highlight=False)
    e = c.evidence
    seen = [
        f"{e.reports} report(s), {e.corroborated} corroborated by a detector",
        f"{e.attempts} other signal(s), {e.blocked} blocked",
        f"highest confidence {e.confidence:.2f}" if e.confidence is not None else "",
        "leaked: " + ", ".join(f"{k} ({v})" for k, v in e.leaks.items()) if e.leaks else "",
        f"baseline {e.baseline_per_hour:.2g}/h",
    ]
    out.print("evidence: " + "; ".join(s for s in seen if s), highlight=False)
    for why in e.succeeded:
        out.print(f"  got through: {why}", highlight=False)
    if c.escalated_at is not None:
        out.print(
            f"escalated to {c.escalated_to} at {_utc(c.escalated_at):%Y-%m-%d %H:%M} UTC "
            "(recorded and logged; Blastwall sends no notification yet)",
            highlight=False,
        )
    if c.decision_reason:
        out.print(f"decided by {c.decided_by}: {c.decision_reason}")
    print_table(
        [
            "group",
            "count",
            "severity",
            "source",
            "kind",
            "system",
            "last seen",
            "held by",
            "summary",
        ],
        [
            (
                g.id,
                g.count,
                g.severity,
                g.source,
                g.kind,
                g.system or "-",
                g.last_seen,
                g.held_by,
                g.summary,
            )
            for g in group_items
        ],
    )


@app.command("accept")
def accept(
    candidate_id: CandidateArg,
    title: Annotated[str | None, typer.Option(help="Default: the candidate's.")] = None,
    archetype: Annotated[Archetype | None, typer.Option(help="When it has none.")] = None,
    severity: Annotated[Severity | None, typer.Option(help="Default: the policy's.")] = None,
    restricted: Annotated[bool, typer.Option(help="Visible to participants only.")] = False,
    json: JsonOpt = False,
) -> None:
    """Turn a candidate into an incident, keeping its signals."""
    data = Accept(
        title=title,
        archetype=archetype,
        severity=severity,
        visibility=Visibility.restricted if restricted else Visibility.open,
    )
    _triage(
        "accept",
        lambda session: triage.accept(
            session,
            candidate_id=candidate_id,
            data=data,
            actor=operator(),
        ),
        json,
    )


@app.command("decline")
def decline(
    candidate_id: CandidateArg,
    reason: Annotated[str, typer.Option(help="Why it is no incident (recorded).")],
    snooze: Annotated[
        bool, typer.Option(help="Snooze its signals for the policy's decline_snooze time.")
    ] = True,
    json: JsonOpt = False,
) -> None:
    """Decline a candidate with a reason; its signals are snoozed unless --no-snooze."""
    data = Decline(reason=reason, snooze=snooze)
    _triage(
        "decline",
        lambda session: triage.decline(
            session,
            candidate_id=candidate_id,
            data=data,
            actor=operator(),
            policy=flows.current_policy(get_settings().correlation_policy),
        ),
        json,
    )


@app.command("merge")
def merge(
    candidate_id: CandidateArg,
    into: Annotated[int, typer.Option("--into", help="The incident to merge into.", min=1)],
    json: JsonOpt = False,
) -> None:
    """Merge a candidate into an existing incident."""
    data = Merge(incident_id=into)
    _triage(
        "merge",
        lambda session: triage.merge(
            session, candidate_id=candidate_id, data=data, actor=operator()
        ),
        json,
    )


def _triage(verb: str, decide: Callable[[Session], Candidate], json: bool) -> None:
    """Run a triage decision, audit it, and print the candidate as it now stands."""
    with session_scope() as session:
        row = decide(session)
        audit(session, command=f"candidates {verb}", object=f"candidate:{row.id}")
        c = service.describe(session, [row])[0]
    if json:
        print_json(c)
        return
    where = f": incident {c.incident_id}" if c.incident_id else ""
    out.print(f"Candidate {c.id} {c.status.value}{where}", highlight=False)


@app.command("policy")
def policy(
    check: Annotated[
        Path | None, typer.Option(help="Check this override file instead of showing the policy.")
    ] = None,
) -> None:
    """Show the correlation and severity policy in force, or check an override file."""
    if check is not None:
        load_policy(check)
        out.print(f"{check}: valid", highlight=False)
        return
    print_json(flows.current_policy(get_settings().correlation_policy))


# --- noise ----------------------------------------------------------------------------------


@noise_app.command("list")
def list_rules(
    active: Annotated[bool, typer.Option(help="Only rules in force now.")] = False,
    kind: Annotated[NoiseRuleKind | None, typer.Option(help="snooze or maintenance.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    json: JsonOpt = False,
) -> None:
    """List snoozes and maintenance windows (newest first), and the policy's inhibitions."""
    with session_scope() as session:
        rows, _ = service.list_rules(
            session,
            principal=operator(),
            limit=limit,
            active=True if active else None,
            kind=kind.value if kind else None,
        )
        items = [service.rule_out(r) for r in rows]
    inhibitions = flows.current_policy(get_settings().correlation_policy).inhibitions
    if json:
        print_json({"rules": items, "inhibitions": inhibitions})
        return
    print_table(
        ["id", "kind", "active", "system", "match", "from", "until", "by", "reason"],
        [
            (
                r.id,
                r.kind,
                "yes" if r.active else "no",
                r.system_id,
                ", ".join(f"{k}={v}" for k, v in r.match.items()),
                r.starts_at,
                r.ended_at or r.ends_at,
                r.created_by,
                r.reason,
            )
            for r in items
        ],
    )
    print_table(
        ["inhibition", "when", "holds", "via"],
        [(i.name, i.when, [h.value for h in i.holds], i.via) for i in inhibitions],
    )


@noise_app.command("show")
def show_rule(
    rule_id: Annotated[int, typer.Argument(help="The rule's number.", min=1)],
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many signals.")] = 50,
    json: JsonOpt = False,
) -> None:
    """Show the signals a snooze or maintenance window held back, newest first."""
    with session_scope() as session:
        rows, _ = service.held_signals(session, principal=operator(), rule_id=rule_id, limit=limit)
        items = [signals.to_out(r) for r in rows]
    if json:
        print_json(items)
        return
    print_table(
        ["signal", "received", "source", "kind", "severity", "system", "summary"],
        [
            (
                s.id,
                s.created_at,
                s.source,
                s.kind,
                s.severity,
                s.system_id or s.system_ref or "-",
                s.summary,
            )
            for s in items
        ],
    )


@noise_app.command("snooze")
def snooze(
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
    until: Annotated[datetime, typer.Option(help="When it expires (ISO 8601; UTC if naive).")],
    source: Annotated[str | None, typer.Option(help="Signals from this source.")] = None,
    kind: Annotated[str | None, typer.Option(help="Signals of this kind.")] = None,
    detector: Annotated[str | None, typer.Option(help="Findings of this detector.")] = None,
    archetype: Annotated[Archetype | None, typer.Option(help="Of this archetype.")] = None,
    system: Annotated[str | None, typer.Option(help="About this system.")] = None,
    fingerprint: Annotated[str | None, typer.Option(help="With this fingerprint.")] = None,
) -> None:
    """Hold back the signals matching every option given, until it expires."""
    data = SnoozeCreate(
        match=Match(
            source=source,
            kind=kind,
            detector=detector,
            archetype=archetype,
            system=system,
            fingerprint=fingerprint,
        ),
        reason=reason,
        until=_utc(until),
    )
    with session_scope() as session:
        rule = service.add_snooze(session, data=data, actor=operator())
        audit(session, command="noise snooze", object=f"noise-rule:{rule.id}")
        out.print(f"snooze {rule.id} until {rule.ends_at:%Y-%m-%d %H:%M:%SZ}")


@noise_app.command("maintenance")
def maintenance(
    system: Annotated[str, typer.Option(help="The system under maintenance.")],
    start: Annotated[datetime, typer.Option(help="Start (ISO 8601; UTC if naive).")],
    end: Annotated[datetime, typer.Option(help="End (ISO 8601; UTC if naive).")],
    reason: Annotated[str, typer.Option(help="What is done (recorded).")],
) -> None:
    """Declare a maintenance window: the system's signals are held back while it lasts."""
    data = MaintenanceCreate(system=system, starts_at=_utc(start), ends_at=_utc(end), reason=reason)
    with session_scope() as session:
        rule = service.add_maintenance(session, data=data, actor=operator())
        audit(session, command="noise maintenance", object=f"noise-rule:{rule.id}")
        out.print(f"maintenance window {rule.id} for {system}")


@noise_app.command("end")
def end(rule_id: Annotated[int, typer.Argument(help="The rule's number.", min=1)]) -> None:
    """End a snooze or a maintenance window now."""
    with session_scope() as session:
        rule = service.end_rule(session, rule_id=rule_id, actor=operator())
        audit(session, command="noise end", object=f"noise-rule:{rule.id}")
        out.print(f"noise rule {rule.id} ended")
