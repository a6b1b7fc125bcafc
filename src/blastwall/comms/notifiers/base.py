"""What a notifier is given and what it answers: the message (the same for every kind of
channel), the channel's configuration with its secrets, and the receipt of one try."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

__all__ = [
    "ChannelConfig",
    "Message",
    "Receipt",
    "client",
    "http_receipt",
    "post_json",
    "text_setting",
    "timeout_of",
    "url_problems",
]

PAGER_SEVERITY = {"SEV1": "critical", "SEV2": "error", "SEV3": "warning", "SEV4": "info"}
"""The PagerDuty (and generic) severity of an incident's severity."""
DETAIL_CHARS = 500
"""How much of a receiver's answer a receipt keeps."""


@dataclass(frozen=True)
class Message:
    """One notification, before it is shaped for a kind of channel.

    `key` is its idempotency key: the outbox holds one message per key, and the key goes
    out with every try (the webhook-id, an e-mail's Message-ID) so that a receiver can drop
    a repeat. `event` says what happened (`opened`, `escalated`, `update_published`,
    `reminder_due`, `test`, ...). `facts` are short labelled values (severity, systems)
    that chat cards show as fields; `data` is the structured event a webhook receives.
    `action` is PagerDuty's event action (`trigger`, `acknowledge`, `resolve`) and
    `dedup_key` the alert it goes to (one per incident)."""

    key: str
    event: str
    subject: str
    text: str
    created_at: datetime
    incident_id: int | None = None
    severity: str | None = None
    restricted: bool = False
    facts: tuple[tuple[str, str], ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    action: str = "trigger"
    dedup_key: str | None = None


@dataclass(frozen=True)
class ChannelConfig:
    """A channel as its notifier sees it: `settings` with the secrets in them."""

    name: str
    kind: str
    settings: Mapping[str, Any]
    public: bool = False


@dataclass(frozen=True)
class Receipt:
    """The outcome of one try: `ok` when the receiver took the message; `status` says how
    it answered (`HTTP 202`, `SMTP 250`, `sent`), `code` is the numeric status when there
    is one, `detail` the start of its answer or the error."""

    ok: bool
    status: str
    code: int | None = None
    detail: str = ""


def text_setting(settings: Mapping[str, Any], name: str, problems: list[str]) -> str | None:
    """The setting `name` when it is a non-empty string; else a problem saying so."""
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"'{name}' is required (a non-empty string)")
        return None
    return value


def url_problems(settings: Mapping[str, Any], name: str = "url") -> list[str]:
    problems: list[str] = []
    url = text_setting(settings, name, problems)
    if url is not None and not url.startswith(("http://", "https://")):
        problems.append(f"'{name}' must be an http:// or https:// URL")
    return problems


_client: httpx.Client | None = None
_client_made = threading.Lock()


def client() -> httpx.Client:
    """The process's HTTP client for notifications: one connection pool, shared by the
    delivery threads (httpx clients are thread-safe)."""
    global _client
    with _client_made:
        if _client is None:
            _client = httpx.Client(
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
                follow_redirects=False,
            )
        return _client


def timeout_of(settings: Mapping[str, Any]) -> float:
    value = settings.get("timeout", 10.0)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 10.0


def post_json(
    url: str, body: bytes, *, headers: Mapping[str, str] | None = None, timeout: float
) -> Receipt:
    """POST `body` (JSON) to `url`; the receipt of the answer, or of the failure to get one."""
    try:
        response = client().post(
            url,
            content=body,
            headers={"content-type": "application/json", **(headers or {})},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        return Receipt(ok=False, status="no answer", detail=f"{type(exc).__name__}: {exc}"[:500])
    return http_receipt(response)


def http_receipt(response: httpx.Response) -> Receipt:
    return Receipt(
        ok=200 <= response.status_code < 300,
        status=f"HTTP {response.status_code}",
        code=response.status_code,
        detail=response.text[:DETAIL_CHARS],
    )
