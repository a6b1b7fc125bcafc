"""The status page over HTTP, without a token: the HTML page, Statuspage's read API, and
subscriptions with their confirmation, the messages they bring, and their limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from blastwall import pipeline
from blastwall.api import create_app
from blastwall.comms.api.statuspage import ClientLimiter
from blastwall.db import Database
from blastwall.errors import TooManyRequests
from blastwall.settings import Settings
from tests.support.statuspage import Outbox, apply_example, published

DOCUMENTS = (
    "summary.json",
    "status.json",
    "components.json",
    "incidents.json",
    "incidents/unresolved.json",
    "scheduled-maintenances.json",
    "scheduled-maintenances/upcoming.json",
    "scheduled-maintenances/active.json",
)
URL = "https://status.example.com/status"


@pytest.fixture
def page(db: Database) -> Iterator[tuple[TestClient, Outbox]]:
    """The API with the example components, and the messages it hands to the notifications."""
    with db.transaction() as session:
        apply_example(session)
    app = create_app(db, Settings(status_page_url=URL, status_page_name="Acme status"))
    outbox = Outbox().subscribe()  # after create_app, which makes the subscriptions anew
    with TestClient(app) as client:
        yield client, outbox


def publish(db: Database, **changes: object) -> None:
    with db.transaction() as session:
        pipeline.publish(session, published(**changes))


def link(text: str, kind: str) -> str:
    found = re.search(rf"{URL}(/subscribers/{kind}/[A-Za-z0-9_-]+)", text)
    assert found, text
    return "/status" + found.group(1)


def test_the_page_and_its_documents_need_no_token(
    db: Database, page: tuple[TestClient, Outbox]
) -> None:
    client, _ = page
    publish(db, title="Assistant <script>alert(1)</script> slow")
    html = client.get("/status")
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "Major System Outage" in html.text and "Support assistant" in html.text
    assert "<script>alert" not in html.text and "&lt;script&gt;alert(1)" in html.text
    for name in DOCUMENTS:
        answer = client.get(f"/status/api/v2/{name}")
        assert answer.status_code == 200, name
        assert answer.json()["page"] == {
            "id": "blastwall",
            "name": "Acme status",
            "url": URL,
            "time_zone": "Etc/UTC",
            "updated_at": answer.json()["page"]["updated_at"],
        }
    summary = client.get("/status/api/v2/summary.json").json()
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    component = summary["components"][0]
    assert set(component) >= {
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "position",
        "description",
        "showcase",
        "start_date",
        "group_id",
        "page_id",
        "group",
        "only_show_if_degraded",
    }
    [incident] = summary["incidents"]
    assert set(incident) >= {
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "monitoring_at",
        "resolved_at",
        "impact",
        "shortlink",
        "started_at",
        "page_id",
        "incident_updates",
        "components",
    }
    assert set(incident["incident_updates"][0]) >= {
        "id",
        "status",
        "body",
        "incident_id",
        "created_at",
        "updated_at",
        "display_at",
        "affected_components",
    }


def test_a_confirmed_subscriber_gets_the_news_of_its_components(
    db: Database, page: tuple[TestClient, Outbox]
) -> None:
    client, outbox = page
    answer = client.post(
        "/status/api/v2/subscribers",
        json={"email": "reader@example.com", "component_ids": ["support-assistant"]},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending"
    client.post("/status/api/v2/subscribers", json={"email": "other@example.com"})
    client.post(
        "/status/api/v2/subscribers",
        json={"email": "refunds@example.com", "component_ids": ["refunds"]},
    )
    [confirmation] = outbox.to("reader@example.com")
    assert confirmation.recipient_kind == "email"
    assert confirmation.subject == "Confirm your subscription to Acme status"
    publish(db)
    assert len(outbox.to("reader@example.com")) == 1  # nothing before it is confirmed

    confirm = link(confirmation.body, "confirm")
    form = client.get(confirm)  # a link alone confirms nothing (mail scanners follow links)
    assert form.status_code == 200 and '<form method="post">' in form.text
    done = client.post(confirm)
    assert done.status_code == 200 and "reader@example.com will receive news" in done.text
    assert client.post(confirm).status_code == 200  # again: still confirmed
    publish(db, update_id=2, phase="identified")
    [_, news] = outbox.to("reader@example.com")
    assert news.subject == "[Acme status] Support assistant answers slowly: identified"
    assert "What happened: answers take minutes." in news.body
    assert news.key.startswith("status-update:")
    assert news.payload["incident"]["status"] == "identified"
    assert news.payload["page"]["status_indicator"] == "critical"
    assert outbox.to("refunds@example.com")[1:] == []  # another component's subscriber

    unsubscribe = link(news.body, "unsubscribe")
    assert client.post(unsubscribe).status_code == 200
    assert client.post(unsubscribe).status_code == 404
    publish(db, update_id=3, phase="resolved")
    assert len(outbox.to("reader@example.com")) == 2


def test_a_webhook_subscriber_gets_statuspage_payloads(
    db: Database, page: tuple[TestClient, Outbox]
) -> None:
    client, outbox = page
    hook = "https://hooks.example.com/status"
    assert client.post("/status/api/v2/subscribers", json={"webhook": hook}).status_code == 202
    [confirmation] = outbox.to(hook)
    assert confirmation.recipient_kind == "webhook"
    client.post(confirmation.payload["meta"]["confirm"].removeprefix(URL.removesuffix("/status")))
    publish(db)
    [_, news] = outbox.to(hook)
    assert set(news.payload) == {"meta", "page", "incident"}
    assert news.payload["incident"]["components"][0]["id"] == "support-assistant"
    assert news.payload["meta"]["unsubscribe"].startswith(f"{URL}/subscribers/unsubscribe/")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com", "webhook": "https://example.com/h"},
        {"email": "not an address"},
        {"webhook": "ftp://example.com/h"},
        {"webhook": "http://127.0.0.1:9/h"},
        {"webhook": "http://[::1]/h"},
        {"webhook": "http://localhost:8000/h"},
        {"webhook": "http://169.254.169.254/latest/meta-data"},
        {"webhook": "https://10.1.2.3/h"},
        {"email": "a@example.com", "component_ids": ["nope"]},
        {"email": "a@example.com", "extra": 1},
    ],
)
def test_a_bad_subscription_is_refused(page: tuple[TestClient, Outbox], body: object) -> None:
    client, outbox = page
    answer = client.post("/status/api/v2/subscribers", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert outbox.messages == []


def test_unknown_links_are_refused(page: tuple[TestClient, Outbox]) -> None:
    client, _ = page
    answer = client.post("/status/subscribers/confirm/" + "x" * 43)
    assert answer.status_code == 404 and "subscribe again" in answer.text
    assert client.get("/status/subscribers/confirm/short").status_code == 422


def test_subscriptions_are_limited_per_client_address(db: Database) -> None:
    app = create_app(db, Settings(status_subscribe_per_hour=2))
    with TestClient(app) as client:
        for n in range(2):
            body = {"email": f"r{n}@example.com"}
            assert client.post("/status/api/v2/subscribers", json=body).status_code == 202
        refused = client.post("/status/api/v2/subscribers", json={"email": "r9@example.com"})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert "try again later" in refused.json()["detail"]
        assert client.get("/status/api/v2/status.json").status_code == 200


def test_a_public_body_is_still_bounded(db: Database) -> None:
    app = create_app(db, Settings(max_body_bytes=1024))
    with TestClient(app) as client:
        big = {"email": "a@example.com", "component_ids": ["x" * 90] * 20}
        assert client.post("/status/api/v2/subscribers", json=big).status_code == 413


def test_the_limiter_slides_and_forgets() -> None:
    now = [0.0]
    limiter = ClientLimiter(2, window=10, max_clients=2, clock=lambda: now[0])
    limiter.admit("a")
    limiter.admit("a")
    with pytest.raises(TooManyRequests):
        limiter.admit("a")
    now[0] = 10.5
    limiter.admit("a")  # the first two left the window
    limiter.admit("b")
    limiter.admit("c")  # "a" is forgotten: memory stays bounded
    limiter.admit("a")
    limiter.admit("a")


def test_private_webhooks_when_the_page_allows_them(db: Database) -> None:
    app = create_app(db, Settings(status_private_webhooks=True))
    with TestClient(app) as client:
        body = {"webhook": "http://127.0.0.1:9/h"}
        assert client.post("/status/api/v2/subscribers", json=body).status_code == 202


def test_the_page_form_subscribes_an_email_address(page: tuple[TestClient, Outbox]) -> None:
    client, outbox = page
    html = client.get("/status").text
    assert '<form method="post" action="/status/subscribe">' in html
    assert 'name="component" value="refunds"' in html
    form = {"email": "reader@example.com", "component": ["refunds", "fraud-checks"]}
    answer = client.post("/status/subscribe", data=form)
    assert answer.status_code == 202 and "Check your inbox" in answer.text
    [confirmation] = outbox.to("reader@example.com")
    assert "(fraud-checks, refunds)" in confirmation.body
    refused = client.post("/status/subscribe", data={"email": "nope"})
    assert refused.status_code == 422 and "not one mail can be sent to" in refused.text
    assert client.post("/status/subscribe", data={}).status_code == 422
    assert len(outbox.messages) == 1
