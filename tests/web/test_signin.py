"""Signing in and out of the web interface, sessions, CSRF and idempotent actions."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from blastwall.audit.models import AuditEntry
from blastwall.auth import service as auth_service
from blastwall.auth.models import UiSession
from blastwall.db import Database, utcnow
from tests.support.web import LOGIN_CSRF, Browser, sign_in_with, token


def test_front_door_and_pages_send_a_stranger_to_sign_in(app_client: TestClient) -> None:
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/ui/incidents"
    answer = app_client.get("/ui/incidents?status=triage", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fincidents%3Fstatus%3Dtriage"
    form = app_client.get(answer.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/ui/incidents?status=triage"' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]


def test_sign_in_sets_a_strict_http_only_cookie_and_is_audited(
    app_client: TestClient, db: Database
) -> None:
    secret = token(db, "responder", "rita")
    form = app_client.get("/ui/login")
    login_csrf = LOGIN_CSRF.search(form.text)
    assert login_csrf
    done = app_client.post(
        "/ui/login",
        data={"token": secret, "login_csrf": login_csrf.group(1), "next": "https://evil.test/"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/incidents"  # never another site
    cookie = done.headers["set-cookie"]
    assert "bw_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert secret not in cookie
    page = app_client.get("/ui/incidents")
    assert page.status_code == 200 and "rita" in page.text
    with db.session(read_only=True) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.path == "/ui/login").order_by(AuditEntry.id)
        ).all()[-1]
    assert entry.actor == "rita" and entry.status_code == 303


def test_a_bad_token_or_a_stale_form_is_refused_with_a_reason(
    app_client: TestClient, db: Database
) -> None:
    form = app_client.get("/ui/login")
    login_csrf = LOGIN_CSRF.search(form.text)
    assert login_csrf
    wrong = app_client.post(
        "/ui/login", data={"token": "bw_nope", "login_csrf": login_csrf.group(1)}
    )
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    stale = app_client.post(
        "/ui/login", data={"token": token(db, "viewer", "vic"), "login_csrf": "forged"}
    )
    assert stale.status_code == 403 and "stale" in stale.text
    assert "bw_session" not in stale.headers.get("set-cookie", "")


def test_an_action_needs_the_sessions_csrf_token(app_client: TestClient, db: Database) -> None:
    person = Browser(app_client, db, "commander", "cora")
    forged = app_client.post(
        "/ui/logout",
        data={"csrf_token": "forged", "idempotency_key": "k1"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert app_client.get("/ui/incidents").status_code == 200  # still signed in
    out = person.post("/ui/logout")
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert app_client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_an_action_without_a_session_is_refused_before_its_body_is_read(
    app_client: TestClient,
) -> None:
    answer = app_client.post(
        "/ui/logout", data={"csrf_token": "x", "idempotency_key": "k"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
    htmx = app_client.post("/ui/logout", data={"csrf_token": "x"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 204 and htmx.headers["HX-Redirect"].startswith("/ui/login")


def test_revoking_the_token_or_expiry_ends_the_session(
    app_client: TestClient, db: Database
) -> None:
    secret = token(db, "viewer", "val")
    sign_in_with(app_client, secret)
    with db.transaction() as session:
        row = session.scalar(select(UiSession).order_by(UiSession.id.desc()))
        assert row is not None
        auth_service.revoke_token(session, token_id=row.token_id)
    assert app_client.get("/ui/incidents", follow_redirects=False).status_code == 303
    sign_in_with(app_client, token(db, "viewer", "vera"))
    with db.transaction() as session:
        row = session.scalar(select(UiSession).order_by(UiSession.id.desc()))
        assert row is not None
        row.expires_at = utcnow()
    assert app_client.get("/ui/incidents", follow_redirects=False).status_code == 303


def test_a_form_sent_twice_acts_once(app_client: TestClient, db: Database) -> None:
    person = Browser(app_client, db, "commander", "cleo")
    first = person.post("/ui/logout", key="same-key")
    assert first.status_code == 303
    # Signed out now: a replay of the same form is answered without acting again.
    person.csrf = sign_in_with(app_client, token(db, "commander", "cleo"))
    again = person.post("/ui/logout", key="same-key")
    assert again.status_code == 303 and again.headers["location"] == "/ui/login"
    assert app_client.get("/ui/incidents").status_code == 200  # the replay did not sign out


def test_pages_show_errors_as_pages_not_json(app_client: TestClient, db: Database) -> None:
    person = Browser(app_client, db, "viewer", "vince")
    page = person.get("/ui/incidents?status=nonsense")
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert re.search(r"status", page.text)
    fragment = person.client.get("/ui/incidents?status=nonsense", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Retarget"] == "#flash"
    assert "<html" not in fragment.text


def test_pages_are_compressed_for_a_slow_link_and_the_api_is_not(
    app_client: TestClient, db: Database
) -> None:
    person = Browser(app_client, db, "viewer", "vesna")
    page = person.get("/ui/incidents", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert "Incidents" in page.text  # decoded by the client
    assert "server-timing" in page.headers
    api = app_client.get(
        "/api/v1/taxonomy",
        headers={
            "Accept-Encoding": "gzip",
            "Authorization": f"Bearer {token(db, 'viewer', 'vic')}",
        },
    )
    assert api.status_code == 200 and len(api.content) > 1024
    assert "content-encoding" not in api.headers
