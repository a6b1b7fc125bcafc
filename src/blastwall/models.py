"""Every table, imported in one place so that metadata and migrations see them all."""

from blastwall.audit.models import AuditEntry
from blastwall.auth.models import ApiToken
from blastwall.db import Base
from blastwall.detection.models import CanaryToken
from blastwall.evidence.models import (
    Checkpoint,
    EvidenceItem,
    FullViewGrant,
    Hunt,
    HuntMatch,
    LedgerHead,
    LedgerRecord,
    LegalHold,
)
from blastwall.incidents.models import (
    Incident,
    IncidentSystem,
    Participant,
    RoleAssignment,
    Task,
    TimelineEntry,
)
from blastwall.inventory.models import Change, System, SystemComponent
from blastwall.signals.models import Signal
from blastwall.telemetry.models import ContextSpan, IngestKey, Interaction

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "CanaryToken",
    "Change",
    "Checkpoint",
    "ContextSpan",
    "EvidenceItem",
    "FullViewGrant",
    "Hunt",
    "HuntMatch",
    "Incident",
    "IncidentSystem",
    "IngestKey",
    "Interaction",
    "LedgerHead",
    "LedgerRecord",
    "LegalHold",
    "Participant",
    "RoleAssignment",
    "Signal",
    "System",
    "SystemComponent",
    "Task",
    "TimelineEntry",
]
