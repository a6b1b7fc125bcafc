"""The incident page: its header, timeline (newest entries, earlier ones, verdicts, the live
stream's polls), tasks, and who may do what there."""

from __future__ import annotations

import re
from typing import Any

from anyio.from_thread import start_blocking_portal
from fastapi.testclient import TestClient

from blastwall.auth.roles import Principal, Role
from blastwall.db import Database
from blastwall.incidents import timeline as timeline_service
from blastwall.incidents.schemas import EntryCreate, EntryKind
from blastwall.web.deps import COOKIE
from blastwall.web.pages.timeline_stream import Event, entry_events, poll
from tests.conftest import Clients
from tests.support.incidents import open_refund_incident
from tests.support.restricted import restricted_incident
from tests.support.web import Browser, token

H = dict[str, str]
ENTRY = re.compile(r'<li id="entry-(\d+)" class="([a-z_]+)"')


def person(app_client: TestClient, db: Database, role: str, name: str) -> Browser:
    """A signed-in person with a cookie jar of their own."""
    return Browser(TestClient(app_client.app), db, role, name)


def entries(html: str) -> list[tuple[int, str]]:
    """(id, class) of each timeline entry in `html`."""
    return [(int(i), kind) for i, kind in ENTRY.findall(html)]


def entry_html(html: str, entry_id: int) -> str:
    found = re.search(rf'<li id="entry-{entry_id}".*?</li>', html, re.S)
    assert found, html
    return found.group(0)


def test_the_header_shows_severity_and_why_milestones_systems_and_roles(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin, severity_reason="money leaves")
    url = f"/ui/incidents/{opened['id']}"
    cora = person(app_client, db, "commander", "cora")
    assigned = cora.post(f"{url}/roles", role="incident_commander", assignee="cora")
    assert assigned.status_code == 303 and assigned.headers["location"] == url
    token(db, "responder", "sam")
    token(db, "responder", "sue")
    assert cora.post(f"{url}/roles", role="scribe", assignee="sam").status_code == 303
    handed = cora.post(f"{url}/roles", role="scribe", assignee="sue")
    assert handed.status_code == 303, handed.text
    page = cora.get(url).text
    assert "SEV2" in page and 'id="severity-reason">money leaves<' in page
    assert '<a href="/ui/systems/refund-agent">refund-agent</a>' in page
    assert "Detected" in page and "Acknowledged" in page
    roles = re.search(r'<section id="roles".*?</section>', page, re.S)
    assert roles
    assert "cora" in roles.group(0) and "sue" in roles.group(0) and "sam" not in roles.group(0)
    assert "scribe reassigned from sam to sue" in page  # on the timeline too
    assert f'action="{url}/roles"' in page
    # A commander may decide: decline and merge are offered from triage.
    status = re.search(r'<select id="status-next".*?</select>', page, re.S)
    assert status and "declined" in status.group(0) and "merged" in status.group(0)
    for name in ("triage", "containment", "affected", "evidence", "comms", "obligations"):
        assert f'hx-get="{url}/{name}" hx-trigger="load"' in page
    assert page.index('id="timeline"') < page.index('id="triage"') < page.index('id="obligations"')


def test_a_responder_moves_the_status_and_the_milestone_is_stamped(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    rita = person(app_client, db, "responder", "rita")
    page = rita.get(url).text
    status = re.search(r'<select id="status-next".*?</select>', page, re.S)
    assert status and "investigating" in status.group(0)
    assert "declined" not in status.group(0)  # a commander's decision
    assert f'action="{url}/roles"' not in page  # assigning roles is a commander's
    moved = rita.post(f"{url}/status", status="investigating", reason="looking")
    assert moved.status_code == 303
    page = rita.get(url).text
    assert '<span class="badge">investigating</span>' in page
    acknowledged = re.search(r"<th scope=\"row\">Acknowledged</th><td>([^<]+)</td>", page)
    assert acknowledged and acknowledged.group(1).endswith("UTC")
    refused = rita.post(f"{url}/status", status="closed")
    assert refused.status_code == 409  # not allowed from investigating


def test_a_responder_adds_a_hypothesis_and_a_commander_refutes_it(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    rita = person(app_client, db, "responder", "rita")
    added = rita.post(f"{url}/timeline", kind="hypothesis", text="The new prompt template")
    assert added.status_code == 303 and added.headers["location"] == url
    rita.post(f"{url}/timeline", kind="fact", text="Refunds started at 09:14")
    page = rita.get(url).text
    hypothesis = next(i for i, kind in entries(page) if kind == "hypothesis")
    assert [kind for _, kind in entries(page)][-2:] == ["hypothesis", "fact"]
    assert "state-open" in entry_html(page, hypothesis)
    assert 'id="entry-body"' in page and 'id="entry-kind"' in page

    cora = person(app_client, db, "commander", "cora")
    judged = cora.post(
        f"{url}/timeline/{hypothesis}/verdict", verdict="refuted", text="template unchanged"
    )
    assert judged.status_code == 303
    page = cora.get(url).text
    shown = entry_html(page, hypothesis)
    assert 'class="badge state-refuted">refuted<' in shown
    assert 'value="confirmed"' in shown and 'value="refuted"' not in shown
    verdict = entries(page)[-1]
    assert verdict[1] == "verdict"
    assert f'href="#entry-{hypothesis}">hypothesis #{hypothesis}</a>' in page
    assert "template unchanged" in entry_html(page, verdict[0])


def test_a_viewer_sees_no_forms_and_a_viewers_post_is_refused(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    hypothesis = clients.client.post(
        f"/api/v1/incidents/{opened['id']}/timeline",
        json={"kind": "hypothesis", "text": "a guess"},
        headers=admin,
    ).json()["id"]
    vince = person(app_client, db, "viewer", "vince")
    page = vince.get(url)
    assert page.status_code == 200 and "a guess" in page.text
    forms = re.findall(r'<form method="post" action="([^"]+)"', page.text)
    assert forms == ["/ui/logout"]
    main = page.text.split('<main id="main">')[1].split("</main>")[0]
    assert "Refute" not in main and "<button" not in main and "<textarea" not in main
    for path, fields in (
        ("timeline", {"kind": "note", "text": "hello"}),
        (f"timeline/{hypothesis}/verdict", {"verdict": "refuted"}),
        ("status", {"status": "investigating"}),
        ("roles", {"role": "scribe", "assignee": "vince"}),
        ("tasks", {"title": "look"}),
    ):
        refused = vince.post(f"{url}/{path}", **fields)
        assert refused.status_code == 403, (path, refused.text)
    assert "hello" not in vince.get(url).text


def test_a_restricted_incident_is_not_found_by_a_non_participant(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    number = restricted_incident(clients, admin)
    url = f"/ui/incidents/{number}"
    rita = person(app_client, db, "responder", "rita")
    for path in ("", "/timeline", "/timeline/stream?after=0"):
        answer = rita.get(url + path)
        assert answer.status_code == 404, path
        assert "Insider" not in answer.text
    assert rita.post(f"{url}/timeline", kind="note", text="x").status_code == 404
    assert person(app_client, db, "admin", "ada").get(url).status_code == 200


def test_a_busy_incident_shows_its_newest_200_entries_and_earlier_ones_on_demand(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    scribe = Principal(name="scribe", role=Role.responder)
    with db.transaction() as session:
        for n in range(449):
            entry = EntryCreate(kind=EntryKind.note, text=f"note {n}")
            timeline_service.add_entry(session, incident_id=opened["id"], entry=entry, actor=scribe)
    rita = person(app_client, db, "responder", "rita")
    page = rita.get(url).text
    shown = entries(page)
    assert len(shown) == 200
    assert [i for i, _ in shown] == sorted(i for i, _ in shown)
    assert "note 448" in page and "note 248" not in page
    assert f'sse-connect="{url}/timeline/stream?after={shown[-1][0]}"' in page
    link = re.search(r'<li id="earlier".*?hx-get="([^"]+)"', page, re.S)
    assert link
    more = rita.get(link.group(1), headers={"HX-Request": "true"}).text
    assert "<html" not in more
    older = entries(more)
    assert len(older) == 200 and older[-1][0] < shown[0][0]
    assert "note 248" in more and "note 48" not in more
    link = re.search(r'<li id="earlier".*?href="([^"]+)"', more, re.S)
    assert link
    rest = rita.get(link.group(1).replace("&amp;", "&"))  # without JavaScript: a page
    assert "<html" in rest.text and 'id="earlier"' not in rest.text
    everything = clients.client.get(
        f"/api/v1/incidents/{opened['id']}/timeline?limit=500", headers=admin
    ).json()["items"]
    assert [i for i, _ in entries(rest.text)] == [e["id"] for e in everything[:-400]]


def test_form_problems_are_422_naming_the_field(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    cora = person(app_client, db, "commander", "cora")
    for path, fields, field in (
        ("timeline", {"kind": "note", "text": ""}, "text"),
        ("timeline", {"kind": "rumour", "text": "x"}, "kind"),
        ("tasks", {"title": "", "kind": "task"}, "title"),
        ("tasks", {"title": "t", "due": "someday"}, "due"),
        ("status", {"status": "gone"}, "status"),
        ("status", {"reason": "no status chosen"}, "status"),
        ("roles", {"role": "scribe", "assignee": " "}, "assignee"),
        ("status", {"status": "merged", "merged_into": "two"}, "merged_into"),
    ):
        answer = cora.post(f"{url}/{path}", **fields)
        assert answer.status_code == 422, (path, answer.text)
        assert f"<code>{field}</code>" in answer.text, answer.text
    htmx = cora.client.post(
        f"{url}/timeline",
        data={"csrf_token": cora.csrf, "idempotency_key": "k-empty", "kind": "fact", "text": ""},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert htmx.status_code == 422 and htmx.headers["HX-Retarget"] == "#flash"


def test_tasks_are_added_and_change_state(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    url = f"/ui/incidents/{opened['id']}"
    rita = person(app_client, db, "responder", "rita")
    added = rita.post(
        f"{url}/tasks", title="Rotate the key", kind="action_item", owner="otto", due="2030-01-02"
    )
    assert added.status_code == 303
    page = rita.get(url).text
    task = re.search(r'<tr id="task-(\d+)">(.*?)</tr>', page, re.S)
    assert task and "Rotate the key" in task.group(2) and "due 2030-01-02" in task.group(2)
    assert "state-open" in task.group(2)
    done = rita.post(f"{url}/tasks/{task.group(1)}", state="done")
    assert done.status_code == 303
    page = rita.get(url).text
    row = re.search(rf'<tr id="task-{task.group(1)}">(.*?)</tr>', page, re.S)
    assert row and 'class="badge state-done">done<' in row.group(1)


def test_the_stream_sends_new_entries_and_the_hypotheses_verdicts_judge(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    rita = person(app_client, db, "responder", "rita")
    cookie = rita.client.cookies.get(COOKIE)
    before = entries(rita.get(f"/ui/incidents/{opened['id']}").text)[-1][0]
    api = f"/api/v1/incidents/{opened['id']}/timeline"
    quiet = poll(db, cookie=cookie, incident_id=opened["id"], after=before)
    assert quiet == Event(before, "")
    guess = clients.client.post(
        api, json={"kind": "hypothesis", "text": "line one\nline two"}, headers=admin
    ).json()["id"]
    event = poll(db, cookie=cookie, incident_id=opened["id"], after=before)
    assert event.last == guess and entries(event.html) == [(guess, "hypothesis")]
    encoded = event.encode().decode()
    assert encoded.startswith(f"id: {guess}\nevent: entry\ndata: ")
    assert "\ndata: line two</p>\n" in encoded and encoded.endswith("\n\n")
    separators = Event(7, "a\u2028b\r\nc").encode()  # only SSE's line ends split a line
    assert separators == "id: 7\nevent: entry\ndata: a\u2028b\ndata: c\n\n".encode()
    assert f'name="csrf_token" value="{rita.csrf}"' in event.html  # its forms work
    verdict = clients.client.post(
        f"{api}/{guess}/verdict", json={"verdict": "confirmed"}, headers=admin
    ).json()["id"]
    event = poll(db, cookie=cookie, incident_id=opened["id"], after=guess)
    assert entries(event.html) == [(verdict, "verdict"), (guess, "hypothesis")]
    assert 'hx-swap-oob="true"' in entry_html(event.html, guess)
    assert "state-confirmed" in entry_html(event.html, guess)
    both = poll(db, cookie=cookie, incident_id=opened["id"], after=before)
    assert entries(both.html) == [(guess, "hypothesis"), (verdict, "verdict")]
    assert "hx-swap-oob" not in both.html and "state-confirmed" in both.html


def test_the_stream_stops_when_the_browser_goes_away(
    clients: Clients, admin: H, inventory: list[str], app_client: TestClient, db: Database
) -> None:
    opened = open_refund_incident(clients.client, admin)
    rita = person(app_client, db, "responder", "rita")
    clients.client.post(
        f"/api/v1/incidents/{opened['id']}/timeline",
        json={"kind": "fact", "text": "seen live"},
        headers=admin,
    )

    class Leaving:
        """A request whose browser leaves after two polls."""

        polls = 0

        async def is_disconnected(self) -> bool:
            self.polls += 1
            return self.polls > 2

    async def collect() -> list[bytes]:
        stream = entry_events(
            Leaving(),  # type: ignore[arg-type]
            db=db,
            cookie=rita.client.cookies.get(COOKIE),
            incident_id=opened["id"],
            after=0,
        )
        return [chunk async for chunk in stream]

    with start_blocking_portal() as portal:  # its own thread: Playwright may hold a loop here
        sent: list[Any] = portal.call(collect)
    assert sent[0] == b"retry: 1000\n\n"
    assert len(sent) == 2 and b"seen live" in sent[1]
