"""The incident page's Communications section through a TestClient: drafting, editing,
the audience's preview with its redaction, approval by a second person, publishing, the
cadence's countdown, and who may do what."""

from __future__ import annotations

import re
from html import unescape

from fastapi.testclient import TestClient

from blastwall.db import Database
from tests.conftest import Clients
from tests.support.incidents import open_refund_incident
from tests.support.restricted import restricted_incident
from tests.support.web import Browser

EMAIL = "jane.doe@example.com"
UPDATE = re.compile(r'id="update-(\d+)"')


def person(app_client: TestClient, db: Database, role: str, name: str) -> Browser:
    """A signed-in person with a cookie jar of their own."""
    return Browser(TestClient(app_client.app), db, role, name)


def _incident_with_a_fact(clients: Clients, admin: dict[str, str]) -> int:
    incident = int(open_refund_incident(clients.client, admin)["id"])
    fact = {"kind": "fact", "text": f"Receipts went to {EMAIL} from refund-agent"}
    answer = clients.client.post(f"/api/v1/incidents/{incident}/timeline", json=fact, headers=admin)
    assert answer.status_code == 201, answer.text
    return incident


def test_draft_edit_preview_approve_and_publish_to_customers(
    app_client: TestClient,
    db: Database,
    clients: Clients,
    admin: dict[str, str],
    inventory: list[str],
) -> None:
    incident = _incident_with_a_fact(clients, admin)
    cora = person(app_client, db, "commander", "cora")
    carol = person(app_client, db, "commander", "carol")
    url = f"/ui/incidents/{incident}/comms"

    page = cora.get(url)
    assert page.status_code == 200, page.text
    assert '<h2 id="comms-title">Communications</h2>' in page.text
    assert "No updates to customers yet." in page.text
    fragment = cora.get(url, headers={"HX-Request": "true"}).text
    assert fragment.startswith('<h2 id="comms-title">Communications</h2>')
    drafted = cora.post(f"{url}/drafts", audience="customers")
    assert drafted.status_code == 303, drafted.text
    assert drafted.headers["location"].startswith(f"{url}#update-")
    update = int(drafted.headers["location"].rsplit("-", 1)[1])
    page = cora.get(url)
    assert f'id="update-{update}"' in page.text
    assert EMAIL in page.text  # prefilled from the timeline's fact

    preview = unescape(cora.get(f"{url}?preview={update}").text)
    customers, responders = preview.split("What customers will see")[1].split("What responders see")
    assert EMAIL not in customers and "[EMAIL]" in customers and "[INTERNAL]" in customers
    assert "personal data" in customers and "internal names" in customers
    assert EMAIL in responders and "refund-agent" in responders
    assert "problem(s) block publishing" in preview and "what_happened[1]" in preview

    edited = cora.post(
        f"{url}/updates/{update}/edit",
        title="Refunds issued without a request",
        what_happened="Some refunds were issued that customers did not ask for",
        what_we_are_testing="",
        what_we_are_doing="We stopped automatic refunds\nWe are contacting the customers",
        what_we_dont_know="How many customers are affected",
        next_update_at="",
        phase="identified",
        impact="major",
        component_status="partial_outage",
    )
    assert edited.status_code == 303, edited.text
    missing = cora.post(f"{url}/updates/{update}/publish")
    assert missing.status_code == 422 and "next_update_at" in missing.text
    cora.post(
        f"{url}/updates/{update}/edit",
        title="Refunds issued without a request",
        what_happened="Some refunds were issued that customers did not ask for",
        next_update_at="2099-01-01T10:30",
        phase="identified",
        impact="major",
        component_status="partial_outage",
    )
    preview = unescape(cora.get(f"{url}?preview={update}").text)
    assert "Nothing blocks publishing." in preview
    assert "Next update: 2099-01-01 10:30 UTC" in preview

    submitted = cora.post(f"{url}/updates/{update}/publish")
    assert submitted.status_code == 303, submitted.text
    page = cora.get(url).text
    assert "awaiting approval" in page and "You wrote or submitted this update" in page
    own = cora.post(f"{url}/updates/{update}/approve")
    assert own.status_code == 403
    assert "needs a second person&#39;s approval" in own.text
    assert "its author and whoever submitted it cannot approve it" in own.text

    approved = carol.post(f"{url}/updates/{update}/approve")
    assert approved.status_code == 303, approved.text
    page = unescape(carol.get(url).text)
    article = page.split(f'id="update-{update}"')[1].split("</article>")[0]
    assert "published" in article and "approved by carol" in article
    assert "Some refunds were issued that customers did not ask for" in article
    assert "<textarea" not in article and "/edit" not in article  # final
    late = cora.post(f"{url}/updates/{update}/edit", title="Changed")
    assert late.status_code == 409 and "published and cannot change" in late.text
    # The customers' cadence now counts to the time the update promised.
    row = page.split('id="cadence-customers"')[1].split("</tr>")[0]
    assert "2099-01-01 10:30:00 UTC" in row and "due" in row


def test_the_cadence_shows_the_time_left_and_refreshes(
    app_client: TestClient,
    db: Database,
    clients: Clients,
    admin: dict[str, str],
    inventory: list[str],
) -> None:
    incident = int(open_refund_incident(clients.client, admin)["id"])  # SEV2
    rita = person(app_client, db, "responder", "rita")
    page = rita.get(f"/ui/incidents/{incident}/comms").text
    row = page.split('id="cadence-responders"')[1].split("</tr>")[0]
    assert re.search(r"due</span> in (59 min|1 h 00 min)", row), row
    assert "first update" in row
    fragment = rita.get(f"/ui/incidents/{incident}/comms/cadence", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="comms-cadence"')
    assert 'hx-trigger="every 30s"' in fragment.text and "<html" not in fragment.text
    assert "cadence-customers" in fragment.text and "cadence-regulators" not in fragment.text
    snoozed = rita.post(
        f"/ui/incidents/{incident}/comms/snooze",
        audience="executives",
        until="2099-01-01T09:00",
        reason="The board meets tomorrow",
    )
    assert snoozed.status_code == 303, snoozed.text
    assert snoozed.headers["location"] == f"/ui/incidents/{incident}/comms#comms-cadence"
    page = rita.get(f"/ui/incidents/{incident}/comms").text
    row = page.split('id="cadence-executives"')[1].split("</tr>")[0]
    assert "reminders snoozed until 2099-01-01 09:00:00 UTC" in row
    past = rita.post(
        f"/ui/incidents/{incident}/comms/snooze",
        audience="executives",
        until="2000-01-01T09:00",
        reason="late",
    )
    assert past.status_code == 422 and "in the future" in past.text
    garbled = rita.post(
        f"/ui/incidents/{incident}/comms/snooze",
        audience="executives",
        until="next tuesday",
        reason="late",
    )
    assert garbled.status_code == 422
    assert "The end of the snooze is not a time" in garbled.text
    assert "<code>until</code>" in garbled.text
    # A responder may draft to responders, but not publish to customers.
    page = rita.get(f"/ui/incidents/{incident}/comms").text
    assert "New draft to customers" in page
    rita.post(f"/ui/incidents/{incident}/comms/drafts", audience="customers")
    page = rita.get(f"/ui/incidents/{incident}/comms").text
    customers = page.split('id="audience-customers"')[1].split("</section>")[0]
    assert "Submit update" not in customers


def test_a_viewer_sees_no_forms_and_cannot_post(
    app_client: TestClient,
    db: Database,
    clients: Clients,
    admin: dict[str, str],
    inventory: list[str],
) -> None:
    incident = _incident_with_a_fact(clients, admin)
    cora = person(app_client, db, "commander", "cora")
    drafted = cora.post(f"/ui/incidents/{incident}/comms/drafts", audience="responders")
    update = int(drafted.headers["location"].rsplit("-", 1)[1])
    vic = person(app_client, db, "viewer", "vic")
    page = vic.get(f"/ui/incidents/{incident}/comms")
    assert page.status_code == 200
    main = page.text.split('<main id="main">')[1]
    assert 'method="post"' not in main
    assert "Receipts went to" in main  # the draft is readable
    refused = vic.post(f"/ui/incidents/{incident}/comms/drafts", audience="responders")
    assert refused.status_code == 403
    assert vic.post(f"/ui/incidents/{incident}/comms/updates/{update}/publish").status_code == 403


def test_a_restricted_incident_is_not_found_for_a_non_participant(
    app_client: TestClient,
    db: Database,
    clients: Clients,
    admin: dict[str, str],
    inventory: list[str],
) -> None:
    incident = restricted_incident(clients, admin)
    outsider = person(app_client, db, "commander", "otto")
    assert outsider.get(f"/ui/incidents/{incident}/comms").status_code == 404
    assert outsider.get(f"/ui/incidents/{incident}/comms/cadence").status_code == 404
    answer = outsider.post(f"/ui/incidents/{incident}/comms/drafts", audience="responders")
    assert answer.status_code == 404
    insider = person(app_client, db, "admin", "alice")
    page = insider.get(f"/ui/incidents/{incident}/comms").text
    assert "nothing of it goes to this public audience" in page
    assert "New draft to customers" not in page and "New draft to responders" in page
