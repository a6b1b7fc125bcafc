"""The built-in notifiers, registered as a plugin (`blastwall.plugins.DEFAULT_PLUGINS`)."""

from __future__ import annotations

from blastwall.comms.notifiers.ecosystem import AppriseNotifier
from blastwall.comms.notifiers.email import EmailNotifier
from blastwall.comms.notifiers.web import (
    PagerDutyNotifier,
    SlackNotifier,
    StatusWebhookNotifier,
    TeamsNotifier,
    WebhookNotifier,
)
from blastwall.hookspecs import hookimpl
from blastwall.plugins import Notifier

__all__ = ["blastwall_notifiers"]


@hookimpl
def blastwall_notifiers() -> list[Notifier]:
    """E-mail, webhooks, Slack, Teams, PagerDuty, apprise, and the status page's webhooks."""
    return [
        EmailNotifier(),
        WebhookNotifier(),
        SlackNotifier(),
        TeamsNotifier(),
        PagerDutyNotifier(),
        AppriseNotifier(),
        StatusWebhookNotifier(),
    ]
