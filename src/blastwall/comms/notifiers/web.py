"""Notifiers that POST JSON: a generic webhook signed per Standard Webhooks, Slack and
Microsoft Teams incoming webhooks in their own payload formats, PagerDuty Events API v2."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

import orjson

from blastwall.comms.notifiers.base import (
    PAGER_SEVERITY,
    ChannelConfig,
    Message,
    Receipt,
    post_json,
    text_setting,
    timeout_of,
    url_problems,
)

__all__ = [
    "PagerDutyNotifier",
    "SlackNotifier",
    "TeamsNotifier",
    "WebhookNotifier",
    "sign",
    "slack_payload",
    "teams_payload",
]

SECRET_PREFIX = "whsec_"
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


def _secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of Standard Webhooks: `v1,` and the base64 HMAC-SHA256,
    keyed with the secret's bytes (after `whsec_`), of `id.timestamp.body`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookNotifier:
    """Settings: `url`, `secret` (`whsec_` and base64 of 24 to 64 random bytes; a secret),
    `timeout`. The body is `{"type": "incident.opened", "timestamp": ..., "data": {...}}`,
    signed in the headers webhook-id (the message's idempotency key, the same on every try),
    webhook-timestamp and webhook-signature."""

    kind = "webhook"
    secret_keys = frozenset({"secret"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        problems = url_problems(settings)
        secret = text_setting(settings, "secret", problems)
        if secret is not None:
            try:
                if not secret.startswith(SECRET_PREFIX) or not 24 <= len(_secret_key(secret)) <= 64:
                    raise ValueError
            except (ValueError, binascii.Error):
                problems.append(
                    "'secret' must be 'whsec_' and the base64 of 24 to 64 random bytes "
                    "(docs/notifications.md shows how to make one)"
                )
        return problems

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        settings = channel.settings
        body = orjson.dumps(
            {
                "type": f"{'incident' if message.incident_id else 'blastwall'}.{message.event}",
                "timestamp": message.created_at.isoformat(),
                "data": {
                    "incident_id": message.incident_id,
                    "severity": message.severity,
                    "restricted": message.restricted,
                    "subject": message.subject,
                    "text": message.text,
                    **message.data,
                },
            }
        )
        sent_at = int(time.time())  # of this try: receivers refuse old timestamps
        headers = {
            "webhook-id": message.key,
            "webhook-timestamp": str(sent_at),
            "webhook-signature": sign(str(settings["secret"]), message.key, sent_at, body),
        }
        return post_json(str(settings["url"]), body, headers=headers, timeout=timeout_of(settings))


class StatusWebhookNotifier:
    """The status page's webhook subscribers: POST the Statuspage-shaped payload
    (`message.data["payload"]`) as JSON to the subscriber's URL (setting `url`), as
    Atlassian Statuspage does (unsigned; the webhook-id header carries the idempotency
    key)."""

    kind = "status_webhook"
    secret_keys: frozenset[str] = frozenset()

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        return url_problems(settings)

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        body = orjson.dumps(message.data.get("payload") or {})
        headers = {"webhook-id": message.key}
        url = str(channel.settings["url"])
        return post_json(url, body, headers=headers, timeout=timeout_of(channel.settings))


def slack_payload(message: Message) -> dict[str, Any]:
    """A Slack incoming webhook's payload: `text` (the notification's fallback) and blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message.text[:3000] or "-"}},
    ]
    if message.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{value}"[:2000]}
                    for label, value in message.facts[:10]
                ],
            }
        )
    return {"text": f"{message.subject}\n{message.text}"[:4000], "blocks": blocks}


class SlackNotifier:
    """Settings: `url` (the incoming webhook's URL, a secret), `timeout`."""

    kind = "slack"
    secret_keys = frozenset({"url"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        return url_problems(settings)

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        body = orjson.dumps(slack_payload(message))
        settings = channel.settings
        return post_json(str(settings["url"]), body, timeout=timeout_of(settings))


def teams_payload(message: Message) -> dict[str, Any]:
    """A Teams workflow webhook's payload: a message with one Adaptive Card (1.4)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": message.subject,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": message.text or "-", "wrap": True},
    ]
    if message.facts:
        facts = [{"title": label, "value": value} for label, value in message.facts]
        body.append({"type": "FactSet", "facts": facts})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


class TeamsNotifier:
    """Settings: `url` (the workflow's "When a Teams webhook request is received" URL, a
    secret), `timeout`."""

    kind = "teams"
    secret_keys = frozenset({"url"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        return url_problems(settings)

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        body = orjson.dumps(teams_payload(message))
        settings = channel.settings
        return post_json(str(settings["url"]), body, timeout=timeout_of(settings))


def pagerduty_event(message: Message, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: trigger, acknowledge or resolve the incident's alert (its
    `dedup_key`, one per incident)."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": message.action,
        "dedup_key": message.dedup_key or message.key,
    }
    if message.action == "trigger":
        event["payload"] = {
            "summary": message.subject[:1024],
            "source": "blastwall",
            "severity": PAGER_SEVERITY.get(message.severity or "", "error"),
            "custom_details": {"text": message.text, **dict(message.facts)},
        }
    return event


class PagerDutyNotifier:
    """Settings: `routing_key` (the integration key, a secret), `url` (default the Events
    API v2 endpoint), `timeout`."""

    kind = "pagerduty"
    secret_keys = frozenset({"routing_key"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        text_setting(settings, "routing_key", problems)
        if "url" in settings:
            problems += url_problems(settings)
        return problems

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        settings = channel.settings
        body = orjson.dumps(pagerduty_event(message, str(settings["routing_key"])))
        url = str(settings.get("url") or PAGERDUTY_URL)
        return post_json(url, body, timeout=timeout_of(settings))
