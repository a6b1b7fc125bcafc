"""The Prometheus Alertmanager webhook (payload version 4) and how its alerts become signals.

Each alert is one signal:

    source          "alertmanager"
    kind            labels.alertname ("alert" when there is none)
    severity        labels.severity, case-insensitive: critical, page → critical;
                    error, high, major → high; warning, warn → warning; anything else or
                    none → info
    summary         annotations.summary, else annotations.description, else the alertname
    archetype       labels.blastwall_archetype, when it is one of the incident archetypes
    attributes      {"labels", "annotations", "generatorURL", "alertmanager": {"receiver",
                    "externalURL", "groupKey"}}; values are clipped to 2,000 characters
    fingerprint     the alert's fingerprint (a hash of the labels when none was sent)
    starts_at       startsAt; ends_at: endsAt of a resolved alert (Alertmanager sends the zero
                    time, 0001-01-01, for a firing one)

The system (see `system_of`): the `blastwall_system` label decides when present (an id that
is not in the inventory makes the signal unregistered); otherwise the first of the `system`,
`service` and `job` labels that matches an inventory system id, or one of a system's
`telemetry.service_names`, case-insensitively. When none matches, a `system` label is kept as
an unregistered system; unmatched `service` and `job` labels are not, since most of them name
infrastructure rather than AI systems.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from blastwall.incidents.schemas import Archetype
from blastwall.signals.schemas import (
    MAX_ATTRIBUTES_BYTES,
    SUMMARY_LENGTH,
    SignalSeverity,
    SignalStatus,
)

SOURCE = "alertmanager"
VERSION = "4"
VALUE_LENGTH = 2000

ARCHETYPES = frozenset(a.value for a in Archetype)
SEVERITIES: dict[str, SignalSeverity] = {
    "critical": SignalSeverity.critical,
    "page": SignalSeverity.critical,
    "error": SignalSeverity.high,
    "high": SignalSeverity.high,
    "major": SignalSeverity.high,
    "warning": SignalSeverity.warning,
    "warn": SignalSeverity.warning,
}


def _time(value: Any) -> Any:
    """Alertmanager's zero time (year 1) means "not set"; other times go to UTC."""
    if isinstance(value, str) and value.startswith("0001-01-01"):
        return None
    return value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("the timestamp needs a timezone (Alertmanager sends RFC 3339)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the timestamp is out of range") from None


Timestamp = Annotated[datetime | None, BeforeValidator(_time)]
Labels = Annotated[dict[str, str], Field(default_factory=dict, max_length=1000)]


class Tolerant(BaseModel):
    """Fields Alertmanager may add in later releases are ignored, not refused."""

    model_config = ConfigDict(extra="ignore")


class Alert(Tolerant):
    status: SignalStatus
    labels: Labels
    annotations: Labels
    startsAt: Timestamp = None
    endsAt: Timestamp = None
    generatorURL: str = ""
    fingerprint: Annotated[str, Field(max_length=200)] = ""

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class Payload(Tolerant):
    """The body Alertmanager's webhook receiver posts."""

    version: str = Field(description='The webhook payload version; Blastwall reads "4".')
    groupKey: str = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    status: SignalStatus
    receiver: str = ""
    groupLabels: Labels
    commonLabels: Labels
    commonAnnotations: Labels
    externalURL: str = ""
    alerts: Annotated[list[Alert], Field(max_length=10000)]

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str) -> str:
        if value != VERSION:
            raise ValueError(
                f"Blastwall reads Alertmanager webhook payload version {VERSION}, not "
                f"{value!r}; use an Alertmanager release that sends version {VERSION}"
            )
        return value


@dataclass(frozen=True)
class AlertSignal:
    """What one alert says, ready to be stored as a signal."""

    fingerprint: str
    status: SignalStatus
    kind: str
    severity: SignalSeverity
    summary: str
    archetype: str | None
    attributes: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    labels: dict[str, str]


def _clip(value: str, length: int = VALUE_LENGTH) -> str:
    value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return value if len(value) <= length else value[: length - 1] + "…"


def _clip_all(values: dict[str, str], length: int = VALUE_LENGTH) -> dict[str, str]:
    return {_clip(k, 200): _clip(v, length) for k, v in values.items()}


def map_severity(value: str | None) -> SignalSeverity:
    """The signal severity of an alert's `severity` label."""
    return SEVERITIES.get((value or "").strip().lower(), SignalSeverity.info)


def fingerprint_of(alert: Alert) -> str:
    """The alert's own fingerprint, or a stable hash of its labels when it has none."""
    if alert.fingerprint.strip():
        return _clip(alert.fingerprint.strip(), 200)
    encoded = json.dumps(alert.labels, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(encoded.encode("utf-8", errors="surrogatepass")).hexdigest()
    return f"labels:{digest[:32]}"


def _attributes(alert: Alert, payload: Payload) -> dict[str, Any]:
    context = {
        "receiver": _clip(payload.receiver),
        "externalURL": _clip(payload.externalURL),
        "groupKey": _clip(payload.groupKey),
    }
    for length in (VALUE_LENGTH, 200, 40):
        attributes: dict[str, Any] = {
            "labels": _clip_all(alert.labels, length),
            "annotations": _clip_all(alert.annotations, length),
            "generatorURL": _clip(alert.generatorURL, length),
            "alertmanager": context,
        }
        size = len(json.dumps(attributes, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size <= MAX_ATTRIBUTES_BYTES:
            if length != VALUE_LENGTH:
                attributes["clipped"] = True
            return attributes
    return {"labels": {}, "annotations": {}, "alertmanager": context, "clipped": True}


def to_signal(alert: Alert, payload: Payload) -> AlertSignal:
    """Map one alert of a webhook payload to a signal."""
    labels = alert.labels
    alertname = labels.get("alertname", "").strip()
    summary = (
        alert.annotations.get("summary", "").strip()
        or alert.annotations.get("description", "").strip()
        or alertname
        or "Alert from Alertmanager"
    )
    archetype = labels.get("blastwall_archetype", "").strip()
    return AlertSignal(
        fingerprint=fingerprint_of(alert),
        status=alert.status,
        kind=_clip(alertname or "alert", 200),
        severity=map_severity(labels.get("severity")),
        summary=_clip(summary, SUMMARY_LENGTH),
        archetype=archetype if archetype in ARCHETYPES else None,
        attributes=_attributes(alert, payload),
        starts_at=alert.startsAt,
        ends_at=alert.endsAt if alert.status is SignalStatus.resolved else None,
        labels=labels,
    )


SYSTEM_LABELS = ("blastwall_system", "system", "service", "job")


def system_of(
    labels: dict[str, str], match: Callable[[str], str | None]
) -> tuple[str | None, str | None]:
    """(inventory system id or None, the name the labels gave or None).

    `match` answers the inventory system a name stands for (an id or a service name)."""
    explicit = _clip(labels.get("blastwall_system", "").strip(), 200)
    if explicit:
        return match(explicit), explicit
    for label in SYSTEM_LABELS[1:]:
        value = _clip(labels.get(label, "").strip(), 200)
        if value:
            found = match(value)
            if found is not None:
                return found, value
    claimed = _clip(labels.get("system", "").strip(), 200)
    return None, claimed or None
