"""Driving the web interface with a TestClient: signing in as a role, sending its forms."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient

from blastwall.auth import service as auth_service
from blastwall.auth.roles import Role
from blastwall.db import Database

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')


def token(db: Database, role: str, name: str) -> str:
    with db.transaction() as session:
        _, secret = auth_service.create_token(
            session, name=name, role=Role(role), created_by="test", add=True
        )
    return secret


def sign_in_with(client: TestClient, secret: str) -> str:
    """Sign `client` in with a token; answer the session's CSRF token."""
    form = client.get("/ui/login")
    found = LOGIN_CSRF.search(form.text)
    assert found, form.text
    done = client.post(
        "/ui/login",
        data={"token": secret, "login_csrf": found.group(1), "next": "/ui/incidents"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    page = client.get("/ui/incidents")
    assert page.status_code == 200, page.text
    csrf = CSRF.search(page.text)
    assert csrf, page.text
    return csrf.group(1)


class Browser:
    """A signed-in person at the interface, through a TestClient (its cookie jar is theirs:
    use one TestClient per person)."""

    def __init__(self, client: TestClient, db: Database, role: str, name: str) -> None:
        self.client = client
        self.csrf = sign_in_with(client, token(db, role, name))

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, key: str | None = None, **fields: object) -> Any:
        """Send a form as the interface does (CSRF token, a new idempotency key unless
        `key`); redirects are not followed."""
        data = {"csrf_token": self.csrf, "idempotency_key": key or uuid.uuid4().hex}
        data.update({k: str(v) for k, v in fields.items()})
        return self.client.post(url, data=data, follow_redirects=False)
