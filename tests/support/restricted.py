"""A restricted incident for the tests of who sees what."""

from __future__ import annotations

from tests.conftest import Clients


def restricted_incident(
    clients: Clients, headers: dict[str, str], system: str = "refund-agent", severity: str = "SEV1"
) -> int:
    """Open a restricted data-exfiltration incident on `system` as `headers`; its number."""
    answer = clients.client.post(
        "/api/v1/incidents",
        json={
            "title": "Insider",
            "archetype": "data_exfiltration",
            "severity": severity,
            "systems": [system],
            "visibility": "restricted",
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])
