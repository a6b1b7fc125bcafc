"""Labelled scenario streams over the example inventory: true incidents of several kinds
mixed with benign noise, duplicates, flapping alerts, a maintenance window and a snoozed
exercise. Each event is labelled with the true incident it belongs to (None: noise) and with
its scenario kind. They measure correlation and severity (`bench/correlation.py`) and are
drill material.

One round of ten hours, times from the round's start (each kind starts a few minutes late,
by chance, and draws its sizes from the seed):

    0:00  injection        a fast campaign against support-chatbot: findings and guardrail
                           blocks over 40 minutes in 25 conversations, one customer's report
    1:00  vendor_outage    openai errors on two or three systems, flapping every 4 minutes
                           for 32 minutes; the latency findings and alerts they cause
    2:00  runaway          the refund agent looping on issue-refund for 20 minutes
    3:00  leak             a secret in code-assistant's answers: 3-6 findings, 2-4 conversations
    3:00  maintenance      declared on fraud-scoring: scoring errors and feature lag
    4:00  drift            code-assistant's answers drifting, a finding every 30 minutes for
                           5 hours (a ticket: it waits for triage, it need not page)
    4:30  slow_campaign    injection hits in 5-9 conversations over 2-3 hours, at detector
                           confidences of 0.55-0.95, and 3-6 user reports of offensive answers
                           in those conversations
    6:00  injection_tool_misuse  an injection in one refund-agent conversation, then refunds
                           above the limit in the same conversation and trace: one incident
    8:00  flapping         a critical alert firing two minutes in every five for 30-60 minutes
    any   benign_warnings  2-4 one-off warnings on the high-risk systems: the refund agent
                           quoting a customer's own e-mail address back, a feature-store
                           latency blip on fraud-scoring, a guardrail's "possibly offensive"
                           flag, a weak drift finding (noise: none may page)
    any   noise            evaluation notes (info), low-confidence findings, canary hits of a
                           red-team exercise (under a snooze); optionally `stray_warnings`

Responders resolve each incident 20 minutes after its last signal (`settle` events).

**When the evidence would convince a human** (`Incident.convinced_at`), the moment by which
a page is due, read off the stream as a person reading the signals would:

- a campaign of injections: hits from at least 3 conversations and a person's report in a
  conversation that has a hit; or hits from at least 5 conversations, the first 30 minutes
  old or more, whichever comes first;
- a leak: the first finding of a provider key or private key; for a bare high-entropy
  string (the detector is 0.6 confident), the first finding in a second conversation;
- an injection followed by tool misuse: the first tool call out of policy after it;
- a runaway agent, a vendor outage, a flapping critical alert: the first signal (a looping
  agent that spends money; a critical alert is the operator's own "wake me up").
"""

from blastwall.correlation.scenarios.model import (
    KINDS,
    MINUTE,
    ROUND_SECONDS,
    Action,
    Event,
    Incident,
    Scenario,
    Snooze,
    Window,
    campaign_convinced,
)
from blastwall.correlation.scenarios.stream import SCHEDULE, generate

__all__ = [
    "KINDS",
    "MINUTE",
    "ROUND_SECONDS",
    "SCHEDULE",
    "Action",
    "Event",
    "Incident",
    "Scenario",
    "Snooze",
    "Window",
    "campaign_convinced",
    "generate",
]
