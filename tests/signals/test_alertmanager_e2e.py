"""End to end with a real Prometheus Alertmanager: an alert posted to Alertmanager reaches
Blastwall through the webhook receiver, first firing, then resolved.

Needs the `alertmanager` binary (Debian: package prometheus-alertmanager); skipped without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.alertmanager import (
    WAIT,
    Alertmanager,
    Blastwall,
    alertmanager,
    blastwall,
    rfc3339,
    wait_for,
)

__all__ = ["alertmanager", "blastwall"]  # the fixtures

pytestmark = pytest.mark.slow


def test_alert_fires_then_resolves(blastwall: Blastwall, alertmanager: Alertmanager) -> None:
    headers = {"Authorization": f"Bearer {blastwall.token}"}
    now = datetime.now(UTC)
    alert = {
        "labels": {
            "alertname": "RefundRateHigh",
            "severity": "page",
            "blastwall_system": "refund-agent",
        },
        "annotations": {"summary": "Refunds per minute 5x above baseline"},
        "startsAt": rfc3339(now),
        "generatorURL": "http://prometheus.example/graph",
    }
    # Firing until the test resolves it below: an alert that ended by itself a few seconds on
    # could be resolved before a slow machine's poll ever saw it firing.
    posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=[alert], timeout=WAIT)
    assert posted.status_code == 200, posted.text

    def signals() -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{blastwall.url}/api/v1/signals",
            params={"source": "alertmanager"},
            headers=headers,
            timeout=WAIT,
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["items"])

    firing = wait_for(
        "the firing alert in Blastwall",
        lambda: [s for s in signals() if s["status"] == "firing"],
        log=alertmanager.log,
    )
    assert len(firing) == 1
    signal = firing[0]
    assert signal["kind"] == "RefundRateHigh" and signal["severity"] == "critical"
    assert signal["system_id"] == "refund-agent" and signal["unregistered"] is False
    assert signal["summary"] == "Refunds per minute 5x above baseline"
    assert signal["fingerprint"] and signal["created_by"] == "alertmanager"
    assert signal["attributes"]["generatorURL"] == "http://prometheus.example/graph"
    assert signal["attributes"]["alertmanager"]["receiver"] == "blastwall"

    alert["endsAt"] = rfc3339(datetime.now(UTC))
    posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=[alert], timeout=WAIT)
    assert posted.status_code == 200, posted.text
    resolved = wait_for(
        "the alert's resolution in Blastwall",
        lambda: [s for s in signals() if s["status"] == "resolved"],
        log=alertmanager.log,
    )
    assert [s["id"] for s in resolved] == [signal["id"]]
    assert resolved[0]["ends_at"] is not None
    assert len(signals()) == 1, "the resolution updated the signal instead of adding one"
