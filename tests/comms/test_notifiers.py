"""Each built-in notifier against a real receiver: an SMTP server with STARTTLS and AUTH,
local HTTP receivers that check the Standard Webhooks signature and each payload's shape,
and apprise with its own plugins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blastwall.comms.notifiers.base import ChannelConfig, Message
from blastwall.comms.notifiers.email import message_id
from blastwall.comms.notifiers.web import PAGERDUTY_URL, sign
from blastwall.plugins import Notifier, notifiers
from tests.support.notify import (
    WEBHOOK_SECRET,
    Receiver,
    SmtpServer,
    smtp_server,
    verify_standard_webhook,
)

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MESSAGE = Message(
    key="incident:7:opened:2026-12-07T12:00:00+00:00:oncall",
    event="opened",
    subject="[SEV1] Incident 7 opened: refunds agent leaks",
    text="Opened as SEV1 (data_leak) by alice.",
    created_at=AT,
    incident_id=7,
    severity="SEV1",
    facts=(("Incident", "7"), ("Severity", "SEV1"), ("Systems", "refund-agent")),
    data={"change": "opened", "systems": ["refund-agent"]},
    dedup_key="blastwall-incident-7",
)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    yield from smtp_server(tmp_path_factory.mktemp("smtp"))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(autouse=True)
def _fresh(receiver: Receiver) -> None:
    receiver.reset()


def kind(name: str) -> Notifier:
    return notifiers()[name]


def test_every_builtin_kind_is_a_plugin() -> None:
    assert sorted(notifiers()) == [
        "apprise",
        "email",
        "pagerduty",
        "slack",
        "status_webhook",
        "teams",
        "webhook",
    ]


def test_email_over_starttls_with_auth(smtp: SmtpServer) -> None:
    before = len(smtp.mailbox.messages)
    receipt = kind("email").send(MESSAGE, ChannelConfig("mail", "email", smtp.settings()))
    assert receipt.ok and receipt.code == 250 and "queued as" in receipt.detail
    mail = smtp.mailbox.wait_for(before + 1)[-1]
    sender, recipients, _ = smtp.mailbox.messages[-1]
    assert (sender, recipients) == ("blastwall@example.org", ["oncall@example.org"])
    assert mail["Subject"] == MESSAGE.subject
    assert mail["Message-ID"] == message_id(MESSAGE.key)
    assert mail["X-Blastwall-Key"] == MESSAGE.key
    assert mail["X-Blastwall-Incident"] == "7"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"Opened as SEV1" in body and b"Systems: refund-agent" in body


def test_email_refused_credentials_are_the_receipt(smtp: SmtpServer) -> None:
    config = ChannelConfig("mail", "email", smtp.settings(password="wrong"))
    receipt = kind("email").send(MESSAGE, config)
    assert not receipt.ok and receipt.code == 535 and receipt.status == "SMTP 535"


def test_email_checks_the_servers_certificate(smtp: SmtpServer) -> None:
    settings = smtp.settings()
    del settings["ca_file"]
    receipt = kind("email").send(MESSAGE, ChannelConfig("mail", "email", settings))
    assert not receipt.ok and "CERTIFICATE_VERIFY_FAILED" in receipt.detail


def test_webhook_is_signed_per_standard_webhooks(receiver: Receiver) -> None:
    config = ChannelConfig("hook", "webhook", {"url": receiver.url(), "secret": WEBHOOK_SECRET})
    receipt = kind("webhook").send(MESSAGE, config)
    assert receipt.ok and receipt.status == "HTTP 200"
    (request,) = receiver.wait_for(1)
    assert verify_standard_webhook(request)
    assert not verify_standard_webhook(request, secret="whsec_" + "QUFB" * 8)
    assert request.headers["webhook-id"] == MESSAGE.key
    body = request.json()
    assert body["type"] == "incident.opened"
    assert body["data"]["incident_id"] == 7 and body["data"]["systems"] == ["refund-agent"]


def test_the_signature_matches_the_specifications_example() -> None:
    # The example of the Standard Webhooks specification (and of its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_slack_payload(receiver: Receiver) -> None:
    kind("slack").send(MESSAGE, ChannelConfig("s", "slack", {"url": receiver.url("/slack")}))
    body = receiver.wait_for(1)[0].json()
    assert body["text"].startswith(MESSAGE.subject)
    header, section, fields = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": MESSAGE.subject}}
    assert section["text"] == {"type": "mrkdwn", "text": MESSAGE.text}
    assert {"type": "mrkdwn", "text": "*Severity*\nSEV1"} in fields["fields"]


def test_teams_payload_is_an_adaptive_card(receiver: Receiver) -> None:
    kind("teams").send(MESSAGE, ChannelConfig("t", "teams", {"url": receiver.url("/teams")}))
    body = receiver.wait_for(1)[0].json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == MESSAGE.subject
    assert {"title": "Severity", "value": "SEV1"} in card["body"][2]["facts"]


def test_pagerduty_events_v2(receiver: Receiver) -> None:
    settings = {"routing_key": "R0UT1NG", "url": receiver.url("/v2/enqueue")}
    notifier = kind("pagerduty")
    assert notifier.send(MESSAGE, ChannelConfig("pd", "pagerduty", settings)).ok
    resolved = Message(**{**MESSAGE.__dict__, "key": "incident:7:resolved", "action": "resolve"})
    notifier.send(resolved, ChannelConfig("pd", "pagerduty", settings))
    trigger, resolve = (r.json() for r in receiver.wait_for(2))
    assert trigger["routing_key"] == "R0UT1NG" and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "blastwall-incident-7"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "blastwall"
    assert trigger["payload"]["summary"] == MESSAGE.subject
    assert resolve["event_action"] == "resolve" and "payload" not in resolve
    assert not notifier.check({"routing_key": "R"}) and PAGERDUTY_URL.startswith("https://")


def test_apprise_json_plugin(receiver: Receiver) -> None:
    url = f"json://127.0.0.1:{receiver.port}/apprise"
    assert kind("apprise").send(MESSAGE, ChannelConfig("a", "apprise", {"url": url})).ok
    body = receiver.wait_for(1)[0].json()
    assert body["title"] == MESSAGE.subject and MESSAGE.text in body["message"]


def test_apprise_mail_plugin(smtp: SmtpServer) -> None:
    before = len(smtp.mailbox.messages)
    url = (
        f"mailtos://blastwall:s3cret-pass@localhost:{smtp.port}?smtp=127.0.0.1"
        "&from=alerts@example.org&to=ops@example.org&mode=starttls&verify=no"
    )
    assert kind("apprise").send(MESSAGE, ChannelConfig("a", "apprise", {"url": url})).ok
    assert smtp.mailbox.wait_for(before + 1)[-1]["Subject"] == MESSAGE.subject


def test_apprise_failure_is_a_receipt(receiver: Receiver) -> None:
    receiver.answer = lambda request: 500
    url = f"json://127.0.0.1:{receiver.port}/down"
    receipt = kind("apprise").send(MESSAGE, ChannelConfig("a", "apprise", {"url": url}))
    assert not receipt.ok and receipt.status == "failed"


def test_unreachable_receiver_is_a_receipt(tmp_path: Path) -> None:
    config = ChannelConfig("s", "slack", {"url": "http://127.0.0.1:9/nothing", "timeout": 2})
    receipt = kind("slack").send(MESSAGE, config)
    assert not receipt.ok and receipt.status == "no answer"


@pytest.mark.parametrize(
    ("name", "given", "problem"),
    [
        ("email", {"host": "h", "from": "a@b", "to": []}, "'to' is required"),
        ("email", {"host": "h", "from": "a@b", "to": "c@d", "security": "x"}, "'security'"),
        ("webhook", {"url": "http://h", "secret": "plain"}, "whsec_"),
        ("webhook", {"url": "ftp://h", "secret": WEBHOOK_SECRET}, "http:// or https://"),
        ("slack", {}, "'url' is required"),
        ("pagerduty", {}, "'routing_key' is required"),
        ("apprise", {"url": "nosuchscheme://x"}, "not an apprise URL"),
    ],
)
def test_settings_are_checked(name: str, given: dict[str, object], problem: str) -> None:
    assert any(problem in p for p in kind(name).check(given))
