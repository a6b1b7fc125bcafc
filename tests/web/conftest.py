"""The web interface's tests. TestClient tests use the shared `app_client`; browser tests
share, per pytest-xdist worker, one real server (`site`) and one chromium (`browser`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.browser import chromium
from tests.support.containment_live import Installation


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """`blastwall serve` on a data dir of its own, with the example inventory applied."""
    chromium()  # skip before starting a server that no browser would use
    with Installation(tmp_path_factory.mktemp("site")) as site:
        site.env["BLASTWALL_DETECTION_WORKERS"] = "0"
        site.cli("inventory", "apply", str(ROOT / "examples" / "inventory"))
        site.start()
        yield site


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    path = chromium()
    # A ceiling for a loaded machine (the suite runs beside other work), not an
    # expectation: every wait ends as soon as its condition holds.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """A function making pages, each in a browser context (a person) of its own."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context()
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
