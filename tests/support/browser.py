"""Browser tests: Playwright driving Debian's chromium against a real `blastwall serve`,
with axe-core's accessibility checks. Skipped, saying why, where chromium or Playwright is
missing (`.ci/run` installs both)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).parent / "axe" / "axe.min.js"
BLOCKING = ("serious", "critical")
"""axe-core's impacts that fail a page."""


def chromium() -> str:
    """The chromium executable, or skip the test."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("browser tests need Playwright (pip install playwright): skipped")
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("browser tests need chromium (apt-get install chromium): skipped")


def sign_in(page: Any, url: str, token: str) -> None:
    """Sign in at the interface of the server at `url` with a personal token."""
    page.goto(f"{url}/ui/login")
    page.get_by_label("Personal token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/ui/incidents**")


def accessibility(page: Any) -> None:
    """Run axe-core (WCAG 2.x A and AA rules) on the page as it is; fail on any serious or
    critical violation, naming each rule and the elements it found."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # evaluated, not a <script>: the page's CSP stands
    result = page.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
    report = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in blocking
    ]
    assert not blocking, f"{page.url}:\n" + "\n".join(report)
