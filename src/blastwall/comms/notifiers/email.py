"""E-mail over SMTP (`smtplib`): STARTTLS or TLS from the start, AUTH when a username is
set. The receipt is the server's answer to the message's data (`250 ... queued as ...`)."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from blastwall.comms.notifiers.base import ChannelConfig, Message, Receipt, text_setting

__all__ = ["EmailNotifier", "message_id"]

SECURITY = ("starttls", "tls", "none")


def message_id(key: str) -> str:
    """The Message-ID of the message with this idempotency key: the same on every try, so
    that a mail client can drop a repeat."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@blastwall>"


def _recipients(settings: Mapping[str, Any]) -> list[str]:
    to = settings.get("to")
    if isinstance(to, str):
        return [a.strip() for a in to.split(",") if a.strip()]
    if isinstance(to, list):
        return [str(a).strip() for a in to if str(a).strip()]
    return []


def _context(settings: Mapping[str, Any]) -> ssl.SSLContext:
    ca_file = settings.get("ca_file")
    context = ssl.create_default_context(cafile=ca_file if isinstance(ca_file, str) else None)
    if settings.get("verify") is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class EmailNotifier:
    """Settings: `host`, `port` (587), `from`, `to` (one address, a comma-separated list or
    a list), `security` (`starttls`, the default; `tls` from the start; `none`), `username`
    and `password` (AUTH; the password is a secret), `ca_file` (a CA bundle to trust),
    `verify` (false: do not check the server's certificate), `timeout` (seconds)."""

    kind = "email"
    secret_keys = frozenset({"password"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        text_setting(settings, "host", problems)
        sender = text_setting(settings, "from", problems)
        if sender is not None and "@" not in sender:
            problems.append("'from' must be an e-mail address")
        recipients = _recipients(settings)
        if not recipients:
            problems.append("'to' is required: one address or more")
        elif any("@" not in a for a in recipients):
            problems.append("every address in 'to' must be an e-mail address")
        port = settings.get("port", 587)
        if not isinstance(port, int) or not 0 < port < 65536:
            problems.append("'port' must be a number from 1 to 65535")
        if settings.get("security", "starttls") not in SECURITY:
            problems.append(f"'security' must be one of {', '.join(SECURITY)}")
        if settings.get("password") and not settings.get("username"):
            problems.append("'password' goes with 'username'")
        return problems

    def compose(self, message: Message, channel: ChannelConfig) -> EmailMessage:
        settings = channel.settings
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = str(settings["from"])
        email["To"] = ", ".join(_recipients(settings))
        email["Date"] = format_datetime(message.created_at)
        email["Message-ID"] = message_id(message.key) if message.key else make_msgid()
        email["X-Blastwall-Key"] = message.key
        email["X-Blastwall-Event"] = message.event
        if message.incident_id is not None:
            email["X-Blastwall-Incident"] = str(message.incident_id)
        facts = "".join(f"{label}: {value}\n" for label, value in message.facts)
        email.set_content(f"{message.text}\n\n{facts}".rstrip() + "\n")
        return email

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        settings = channel.settings
        security = settings.get("security", "starttls")
        host = str(settings["host"])
        port = int(settings.get("port", 587))
        timeout = float(settings.get("timeout", 10.0))
        email = self.compose(message, channel)
        try:
            smtp: smtplib.SMTP
            if security == "tls":
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_context(settings))
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                smtp.ehlo()
                if security == "starttls":
                    smtp.starttls(context=_context(settings))
                    smtp.ehlo()
                if settings.get("username"):
                    smtp.login(str(settings["username"]), str(settings.get("password", "")))
                return self._transfer(smtp, email, str(settings["from"]), _recipients(settings))
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            return Receipt(
                ok=False,
                status=f"SMTP {code}" if code else "no answer",
                code=code if isinstance(code, int) else None,
                detail=f"{type(exc).__name__}: {exc}"[:500],
            )

    @staticmethod
    def _transfer(
        smtp: smtplib.SMTP, email: EmailMessage, sender: str, recipients: list[str]
    ) -> Receipt:
        """MAIL, RCPT and DATA one by one, to keep the server's answer to DATA."""
        code, reply = smtp.mail(sender)
        if code != 250:
            smtp.rset()
            return Receipt(ok=False, status=f"SMTP {code}", code=code, detail=reply.decode()[:500])
        refused: list[str] = []
        for address in recipients:
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                refused.append(f"{address}: {code} {reply.decode()}")
        if len(refused) == len(recipients):
            smtp.rset()
            return Receipt(ok=False, status="SMTP refused", detail="; ".join(refused)[:500])
        code, reply = smtp.data(email.as_bytes())
        detail = reply.decode(errors="replace")
        if refused:
            detail += "; refused: " + "; ".join(refused)
        return Receipt(ok=code == 250, status=f"SMTP {code}", code=code, detail=detail[:500])
