"""JSON nested deeper than a parser follows is refused with a 4xx and a message, never a 500:
on the routes that parse JSON themselves (CycloneDX import, OTLP/JSON) and on those FastAPI
parses."""

from __future__ import annotations

import pytest

from tests.conftest import Clients

H = dict[str, str]
DEPTH = 100_000
ARRAYS = b"[" * DEPTH + b"]" * DEPTH
OBJECTS = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
ROUTES = [
    ("/api/v1/systems/cyclonedx", "application/vnd.cyclonedx+json"),
    ("/api/v1/systems/cyclonedx", "application/json"),
    ("/v1/traces", "application/json"),
    ("/api/v1/systems", "application/json"),
    ("/api/v1/incidents", "application/json"),
    ("/api/v1/signals", "application/json"),
    ("/api/v1/ingest/alertmanager", "application/json"),
    ("/api/v1/controls/held", "application/json"),
]


@pytest.mark.parametrize(("path", "media"), ROUTES)
@pytest.mark.parametrize("document", [ARRAYS, OBJECTS], ids=["arrays", "objects"])
def test_deep_json_is_a_client_error(
    clients: Clients, admin: H, inventory: list[str], path: str, media: str, document: bytes
) -> None:
    answer = clients.client.post(path, content=document, headers={**admin, "content-type": media})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"]


def test_a_deep_bom_names_the_problem(clients: Clients, admin: H) -> None:
    """Valid JSON at the top (a CycloneDX BOM), nested too deeply below."""
    deep = b'{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":' + OBJECTS + b"}"
    answer = clients.client.post(
        "/api/v1/systems/cyclonedx",
        content=deep,
        headers={**admin, "content-type": "application/vnd.cyclonedx+json"},
    )
    assert answer.status_code == 422
    assert "nested too deeply" in answer.json()["detail"]


@pytest.mark.parametrize("depth", [500, 2000])
def test_nested_components_below_and_above_the_parser_limit(
    clients: Clients, admin: H, depth: int
) -> None:
    """A BOM whose components nest `depth` levels: refused with a 4xx (Blastwall reads no
    nesting that deep into a system), never a server error."""
    component = '{"type":"library","name":"leaf"}'
    for level in range(depth):
        component = f'{{"type":"library","name":"c{level}","components":[{component}]}}'
    bom = (
        '{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":'
        '{"type":"application","name":"deep","bom-ref":"system:deep"}},'
        f'"components":[{component}]}}'
    )
    answer = clients.client.post(
        "/api/v1/systems/cyclonedx",
        content=bom.encode(),
        headers={**admin, "content-type": "application/vnd.cyclonedx+json"},
    )
    assert answer.status_code < 500, answer.text
