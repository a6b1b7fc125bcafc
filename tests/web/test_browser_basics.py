"""The interface in a real browser: signing in and out, the incidents page, shortcuts."""

from __future__ import annotations

from typing import Any

from tests.support.browser import accessibility, sign_in
from tests.support.containment_live import Installation


def test_sign_in_look_around_and_sign_out(site: Installation, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{site.url}/")
    page.wait_for_url("**/ui/login**")
    accessibility(page)
    sign_in(page, site.url, site.token("browser-admin", "admin"))
    assert page.get_by_role("heading", name="Incidents", exact=True).is_visible()
    accessibility(page)
    page.keyboard.press("?")
    assert page.get_by_role("dialog", name="Keyboard shortcuts").is_visible()
    accessibility(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(f"{site.url}/ui/incidents")
    page.wait_for_url("**/ui/login?next=**")
