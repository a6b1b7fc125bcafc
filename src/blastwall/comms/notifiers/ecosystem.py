"""The rest of the ecosystem through apprise: any apprise URL (`json://`, `mailtos://`,
`discord://`, `ntfy://`, ...) is a channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from blastwall.comms.notifiers.base import ChannelConfig, Message, Receipt, text_setting

__all__ = ["AppriseNotifier"]


class AppriseNotifier:
    """Settings: `url` (an apprise URL; a secret, since most carry a token). The receipt
    says whether apprise's plugin reported the message sent, with what it logged."""

    kind = "apprise"
    secret_keys = frozenset({"url"})

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        import apprise  # here: importing it loads its plugins, which the CLI rarely needs

        problems: list[str] = []
        url = text_setting(settings, "url", problems)
        if url is not None and apprise.Apprise.instantiate(url) is None:
            problems.append("'url' is not an apprise URL that any installed apprise plugin takes")
        return problems

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        import apprise

        target = apprise.Apprise()
        if not target.add(str(channel.settings["url"])):
            return Receipt(ok=False, status="refused", detail="apprise does not take this URL")
        facts = "".join(f"\n{label}: {value}" for label, value in message.facts)
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            sent = target.notify(title=message.subject, body=message.text + facts)
            logged = captured.getvalue() if hasattr(captured, "getvalue") else ""
        if sent:
            return Receipt(ok=True, status="sent")
        return Receipt(ok=False, status="failed", detail=str(logged)[-500:])
