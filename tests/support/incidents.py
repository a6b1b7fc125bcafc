"""An incident opened through the API, as a responder would open one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def open_refund_incident(
    client: TestClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    """Open an incident on the refund agent (SEV2, agentic misalignment), with `fields`
    over the defaults; the incident as the API answers it."""
    body = {
        "title": "Refund agent issues refunds nobody asked for",
        "archetype": "agentic_misalignment",
        "severity": "SEV2",
        "severity_reason": "money leaves",
        "systems": ["refund-agent"],
        **fields,
    }
    answer = client.post("/api/v1/incidents", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())
