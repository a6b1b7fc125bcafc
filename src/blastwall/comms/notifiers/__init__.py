"""The built-in notifiers, one per kind of channel, and the message and receipt they share.

    email      SMTP, with STARTTLS (or TLS from the start) and AUTH    `email.EmailNotifier`
    webhook    any HTTP receiver, signed per Standard Webhooks        `web.WebhookNotifier`
    slack      a Slack incoming webhook                               `web.SlackNotifier`
    teams      a Microsoft Teams workflow webhook (Adaptive Card)     `web.TeamsNotifier`
    pagerduty  PagerDuty Events API v2                                `web.PagerDutyNotifier`
    apprise    anything an apprise URL reaches                        `ecosystem.AppriseNotifier`

They are plugins (`builtin`, in `blastwall.plugins.DEFAULT_PLUGINS`): an installed plugin
may add kinds, or replace one of these with its own of the same kind.
"""

from blastwall.comms.notifiers.base import ChannelConfig, Message, Receipt

__all__ = ["ChannelConfig", "Message", "Receipt"]
