"""The only way into signal storage: generic signals, people's reports and Alertmanager alerts.

A signal names the AI system it is about. A name that is not in the inventory is not refused:
the signal keeps the name (`system_ref`) without a system (`system_id` is null) and counts as
unregistered — an AI system nobody declared is itself worth an incident (shadow AI).

Nothing is stored twice. A signal or report sent with an `Idempotency-Key` is remembered
with its principal and a hash of its body for `REPLAY_WINDOW`: the same key again answers
the signal it created (`replay`), the same key with another body is refused. An Alertmanager
alert is identified by its fingerprint and start time: a notification sent again changes
nothing, and never touches the signal of another firing of the same alert.

    signals   generic signals: storing and reading them
    reports   people's reports
    alerts    Alertmanager notifications
    requests  idempotency keys
    systems   the inventory system a name stands for
"""

from blastwall.signals.service.alerts import ingest_alertmanager
from blastwall.signals.service.reports import (
    REPORT_KIND,
    REPORT_SOURCE,
    REPORT_SUMMARY_LENGTH,
    create_report,
    report_answer,
)
from blastwall.signals.service.requests import KEY_HEADER, REPLAY_WINDOW, Idempotency, replay
from blastwall.signals.service.signals import create_signal, get_signal, list_signals, to_out
from blastwall.signals.service.systems import SystemMatcher

__all__ = [
    "KEY_HEADER",
    "REPLAY_WINDOW",
    "REPORT_KIND",
    "REPORT_SOURCE",
    "REPORT_SUMMARY_LENGTH",
    "Idempotency",
    "SystemMatcher",
    "create_report",
    "create_signal",
    "get_signal",
    "ingest_alertmanager",
    "list_signals",
    "replay",
    "report_answer",
    "to_out",
]
