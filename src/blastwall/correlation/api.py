"""Correlation routes: incident candidates and their triage, signal groups, noise rules, and
the policy in force."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from blastwall.auth.roles import Permission
from blastwall.correlation import flows, service, triage
from blastwall.correlation.schemas import (
    Accept,
    CandidateOut,
    CandidateStatus,
    Decline,
    GroupOut,
    InhibitionOut,
    MaintenanceCreate,
    Merge,
    NoiseRuleKind,
    NoiseRuleOut,
    SnoozeCreate,
)
from blastwall.dependencies import PageDep, PrincipalDep, SessionDep, SettingsDep, audit_object
from blastwall.incidents.schemas import Archetype, Severity
from blastwall.pagination import Page
from blastwall.signals import service as signals
from blastwall.signals.schemas import SignalOut

router = APIRouter(tags=["correlation"])

CandidateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The candidate's number.")]
RuleId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The noise rule's number.")]


@router.get("/candidates", response_model=Page[CandidateOut])
def list_candidates(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    status: Annotated[CandidateStatus | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    archetype: Annotated[Archetype | None, Query()] = None,
    system: Annotated[str | None, Query(max_length=200, description="Covers this system.")] = None,
    incident_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Carried on by this incident.")
    ] = None,
) -> Page[CandidateOut]:
    """Incident candidates, newest first. A candidate that became a restricted incident is
    listed only for those who may see the incident."""
    rows, next_cursor = service.list_candidates(
        session,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        status=status.value if status else None,
        severity=severity.value if severity else None,
        archetype=archetype.value if archetype else None,
        system=system,
        incident_id=incident_id,
    )
    return Page(items=service.describe(session, rows), next=next_cursor)


@router.get("/candidates/{candidate_id}", response_model=CandidateOut)
def get_candidate(
    candidate_id: CandidateId, session: SessionDep, principal: PrincipalDep
) -> CandidateOut:
    """One candidate, with its severity and the policy's reasoning."""
    row = service.get_candidate(session, candidate_id=candidate_id, principal=principal)
    return service.describe(session, [row])[0]


@router.get("/candidates/{candidate_id}/groups", response_model=Page[GroupOut])
def list_groups(
    candidate_id: CandidateId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[GroupOut]:
    """The signal groups of a candidate (each a fingerprint, counted), oldest first."""
    rows, next_cursor = service.list_groups(
        session,
        principal=principal,
        candidate_id=candidate_id,
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page(items=[GroupOut.model_validate(r) for r in rows], next=next_cursor)


@router.get("/candidates/{candidate_id}/signals", response_model=Page[SignalOut])
def list_signals(
    candidate_id: CandidateId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[SignalOut]:
    """The signals of a candidate, newest first. Signals an inhibition held back here say so
    in `held_by`; snoozed signals and those of a maintenance window join no candidate."""
    rows, next_cursor = service.list_signals(
        session,
        principal=principal,
        candidate_id=candidate_id,
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page(items=[signals.to_out(r) for r in rows], next=next_cursor)


def _decided(request: Request, session: SessionDep, row: Any) -> CandidateOut:
    audit_object(request, f"candidate:{row.id}")
    return service.describe(session, [row])[0]


@router.post("/candidates/{candidate_id}/accept", response_model=CandidateOut)
def accept(
    request: Request,
    candidate_id: CandidateId,
    body: Accept,
    session: SessionDep,
    principal: PrincipalDep,
) -> CandidateOut:
    """Turn a pending (or declined) candidate into an incident, keeping its signals."""
    row = triage.accept(session, candidate_id=candidate_id, data=body, actor=principal)
    return _decided(request, session, row)


@router.post("/candidates/{candidate_id}/decline", response_model=CandidateOut)
def decline(
    request: Request,
    candidate_id: CandidateId,
    body: Decline,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> CandidateOut:
    """Record that a candidate is no incident, and why; its signals are snoozed unless
    `snooze` is false."""
    policy = flows.current_policy(settings.correlation_policy)
    row = triage.decline(
        session, candidate_id=candidate_id, data=body, actor=principal, policy=policy
    )
    return _decided(request, session, row)


@router.post("/candidates/{candidate_id}/merge", response_model=CandidateOut)
def merge(
    request: Request,
    candidate_id: CandidateId,
    body: Merge,
    session: SessionDep,
    principal: PrincipalDep,
) -> CandidateOut:
    """Add a candidate's signals to an existing incident, which takes its later ones too."""
    row = triage.merge(session, candidate_id=candidate_id, data=body, actor=principal)
    return _decided(request, session, row)


@router.get("/noise-rules", response_model=Page[NoiseRuleOut])
def list_rules(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    kind: Annotated[NoiseRuleKind | None, Query()] = None,
    active: Annotated[bool | None, Query(description="true: only rules in force now.")] = None,
) -> Page[NoiseRuleOut]:
    """Snoozes and maintenance windows, newest first, ended and expired ones included."""
    rows, next_cursor = service.list_rules(
        session,
        principal=principal,
        limit=page.limit,
        cursor=page.cursor,
        kind=kind.value if kind else None,
        active=active,
    )
    return Page(items=[service.rule_out(r) for r in rows], next=next_cursor)


@router.get("/noise-rules/{rule_id}/signals", response_model=Page[SignalOut])
def held_signals(
    rule_id: RuleId, session: SessionDep, principal: PrincipalDep, page: PageDep
) -> Page[SignalOut]:
    """The signals a snooze or maintenance window held back, newest first."""
    rows, next_cursor = service.held_signals(
        session, principal=principal, rule_id=rule_id, limit=page.limit, cursor=page.cursor
    )
    return Page(items=[signals.to_out(r) for r in rows], next=next_cursor)


@router.post("/noise-rules/snoozes", response_model=NoiseRuleOut, status_code=201)
def add_snooze(
    request: Request, body: SnoozeCreate, session: SessionDep, principal: PrincipalDep
) -> NoiseRuleOut:
    """Hold back the signals matching every field of `match` until `until`."""
    rule = service.add_snooze(session, data=body, actor=principal)
    audit_object(request, f"noise-rule:{rule.id}")
    return service.rule_out(rule)


@router.post("/noise-rules/maintenance", response_model=NoiseRuleOut, status_code=201)
def add_maintenance(
    request: Request, body: MaintenanceCreate, session: SessionDep, principal: PrincipalDep
) -> NoiseRuleOut:
    """Hold back a system's signals from `starts_at` to `ends_at`."""
    rule = service.add_maintenance(session, data=body, actor=principal)
    audit_object(request, f"noise-rule:{rule.id}")
    return service.rule_out(rule)


@router.post("/noise-rules/{rule_id}/end", response_model=NoiseRuleOut)
def end_rule(
    request: Request, rule_id: RuleId, session: SessionDep, principal: PrincipalDep
) -> NoiseRuleOut:
    """End a snooze or a maintenance window now."""
    rule = service.end_rule(session, rule_id=rule_id, actor=principal)
    audit_object(request, f"noise-rule:{rule.id}")
    return service.rule_out(rule)


@router.get("/inhibitions", response_model=Page[InhibitionOut])
def list_inhibitions(principal: PrincipalDep, settings: SettingsDep) -> Page[InhibitionOut]:
    """The inhibition rules of the policy in force, all on one page (they are few)."""
    principal.require(Permission.read)
    rules = flows.current_policy(settings.correlation_policy).inhibitions
    return Page(items=[InhibitionOut.model_validate(rule.model_dump()) for rule in rules])


@router.get("/correlation-policy")
def get_policy(principal: PrincipalDep, settings: SettingsDep) -> dict[str, Any]:
    """The correlation and severity policy in force; durations in ISO 8601 (`PT15M`)."""
    principal.require(Permission.read)
    return flows.current_policy(settings.correlation_policy).model_dump(mode="json")
