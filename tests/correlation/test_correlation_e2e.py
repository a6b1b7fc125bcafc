"""End to end with a real Prometheus Alertmanager: an openai outage alerted on two systems
becomes one candidate, and one incident, as the alerts arrive; their resolution resolves
the groups. Skipped without the `alertmanager` binary, like test_alertmanager_e2e."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.alertmanager import (  # noqa: F401 (fixtures)
    WAIT,
    Alertmanager,
    Blastwall,
    alertmanager,
    blastwall,
    rfc3339,
    wait_for,
)

pytestmark = pytest.mark.slow


def test_an_outage_on_two_systems_is_one_incident(
    blastwall: Blastwall,  # noqa: F811
    alertmanager: Alertmanager,  # noqa: F811
) -> None:
    headers = {"Authorization": f"Bearer {blastwall.token}"}
    now = datetime.now(UTC)
    alerts = [
        {
            "labels": {
                "alertname": "UpstreamErrors",
                "severity": "critical",
                "blastwall_system": system,
                "blastwall_archetype": "vendor_failure",
                "vendor": "openai",
            },
            "annotations": {"summary": f"openai errors above 20% for {system}"},
            "startsAt": rfc3339(now),
        }
        for system in ("support-chatbot", "refund-agent")
    ]
    posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=WAIT)
    assert posted.status_code == 200, posted.text

    def get(path: str, **params: Any) -> Any:
        answer = httpx.get(f"{blastwall.url}{path}", params=params, headers=headers, timeout=WAIT)
        assert answer.status_code == 200, answer.text
        return answer.json()

    firing = wait_for(
        "both alerts in Blastwall",
        lambda: len(s := get("/api/v1/signals", source="alertmanager")["items"]) == 2 and s,
        log=alertmanager.log,
    )
    assert {s["candidate_id"] for s in firing} == {firing[0]["candidate_id"]}
    candidate = get(f"/api/v1/candidates/{firing[0]['candidate_id']}")
    assert candidate["basis"] == "component" and candidate["component"] == "vendor:openai"
    assert candidate["systems"] == ["refund-agent", "support-chatbot"]
    assert candidate["status"] == "opened" and candidate["incident_id"] is not None
    incident = get(f"/api/v1/incidents/{candidate['incident_id']}")
    assert incident["archetype"] == "vendor_failure" and incident["severity"] in ("SEV1", "SEV2")
    assert sorted(incident["systems"]) == ["refund-agent", "support-chatbot"]

    for alert in alerts:  # resolved now, rather than by an end a few seconds on
        alert["endsAt"] = rfc3339(datetime.now(UTC))
    posted = httpx.post(f"{alertmanager.url}/api/v2/alerts", json=alerts, timeout=WAIT)
    assert posted.status_code == 200, posted.text
    wait_for(
        "the resolutions in Blastwall",
        lambda: all(
            s["status"] == "resolved"
            for s in get("/api/v1/signals", source="alertmanager")["items"]
        ),
        log=alertmanager.log,
    )
    groups = get(f"/api/v1/candidates/{candidate['id']}/groups")["items"]
    assert len(groups) == 2 and all(g["resolved_at"] for g in groups)
