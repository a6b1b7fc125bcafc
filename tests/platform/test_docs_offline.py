"""The API's documentation pages work offline: every script, stylesheet and icon that /docs
and /redoc reference is served by the app itself, and with its licence beside it."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ROOT

STATIC = ROOT / "src" / "blastwall" / "static"


class _Assets(HTMLParser):
    """The URLs of a page's scripts and linked resources (stylesheets, icons)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag == "script" else found.get("href") if tag == "link" else None
        if url:
            self.urls.append(url)


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon-32x32.png"}),
    ],
)
def test_docs_pages_load_nothing_from_outside(
    app_client: TestClient, page: str, expected: set[str]
) -> None:
    answer = app_client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(answer.text)
    assert {url.rsplit("/", 1)[-1] for url in parser.urls} == expected
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from outside"
        asset = app_client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    assert "fonts.googleapis.com" not in answer.text
    assert "validatorUrl" in answer.text or page == "/redoc"


def test_docs_pages_read_the_schema_the_app_serves(app_client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        assert "/openapi.json" in app_client.get(page).text
    assert app_client.get("/openapi.json").json()["info"]["title"] == "Blastwall"
    assert app_client.get("/docs/oauth2-redirect").status_code == 200


def test_each_vendored_asset_has_its_licence_and_source_beside_it() -> None:
    """The licence of each package beside its files, and the README's digests (which name
    the source and version of each file) match the files shipped."""
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text()
    assert "MIT License" in (STATIC / "redoc" / "LICENSE").read_text()
    readme = (STATIC / "README.md").read_text()
    digests = {
        name: digest
        for digest, name in (
            line.split("  ", 1) for line in readme.splitlines() if re.match(r"[0-9a-f]{64}  ", line)
        )
    }
    shipped = {
        str(path.relative_to(STATIC)): path
        for path in STATIC.rglob("*")
        if path.suffix in (".js", ".css", ".png")
    }
    assert set(digests) == set(shipped)
    for name, path in shipped.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digests[name], name
        if path.suffix == ".js":  # the notices of the third-party code in the bundle
            assert path.with_name(f"{path.name}.LICENSE.txt").is_file(), name
