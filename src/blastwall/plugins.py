"""The plugin manager: the built-in plugins, then those installed under the `blastwall`
entry-point group.

A plugin's failure to load is an error that names the plugin, never a silent gap: a
detector that is thought to watch and does not is worse than a startup that fails.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pluggy

from blastwall import hookspecs
from blastwall.errors import PluginError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from blastwall.comms.notifiers.base import ChannelConfig, Message, Receipt
    from blastwall.containment.schemas import ActionRecord

__all__ = [
    "DEFAULT_PLUGINS",
    "ContainmentConnector",
    "Notifier",
    "containment_connectors",
    "notifiers",
    "plugin_manager",
]

DEFAULT_PLUGINS = (
    "blastwall.detection.builtin",
    "blastwall.containment.connector",
    "blastwall.comms.notifiers.builtin",
)
ENTRY_POINT_GROUP = "blastwall"


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, built on first use."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    try:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # an installed plugin that does not import
        raise PluginError(
            f"A Blastwall plugin (entry-point group '{ENTRY_POINT_GROUP}') failed to load: "
            f"{exc!r}. Fix or uninstall it."
        ) from exc
    return manager


@runtime_checkable
class ContainmentConnector(Protocol):
    """Carries containment actions out on the systems it reaches (a feature-flag service, a
    gateway, an API key store). Each call runs inside the action's transaction: an exception
    rolls the whole action back and is reported, naming the connector. The line it answers
    is written to the incident timeline."""

    name: str

    def supports(self, control: str) -> bool:
        """Whether this connector acts on the control (`suspend`, `revoke_tool`, ...)."""
        ...

    def apply(self, action: ActionRecord) -> str:
        """Put the control in force; answer one line saying what was done."""
        ...

    def revert(self, action: ActionRecord, *, reason: str) -> str:
        """Lift the control (reverted or expired); answer one line saying what was done."""
        ...


def containment_connectors() -> list[ContainmentConnector]:
    """Every connector the plugins provide, checked against the contract."""
    found: list[ContainmentConnector] = []
    for batch in plugin_manager().hook.blastwall_containment_connectors():
        for connector in batch:
            if not isinstance(connector, ContainmentConnector):
                raise PluginError(
                    f"A Blastwall plugin returned {connector!r} as a containment connector; it "
                    "needs `name`, `supports`, `apply` and `revert` (see blastwall.plugins)."
                )
            found.append(connector)
    return found


@runtime_checkable
class Notifier(Protocol):
    """Delivers messages to one kind of channel (e-mail, a webhook, a chat, a pager). A
    channel's configuration is a row (`blastwall notify channel add`); `send` gets it with
    its secrets. `send` answers a receipt for every outcome it can name (a refusal, a
    timeout) and raises only on its own faults, which the outbox records as a failed try."""

    kind: str
    secret_keys: frozenset[str]
    """Settings of the channel that are secrets: kept out of list answers and the audit."""

    def check(self, settings: Mapping[str, Any]) -> list[str]:
        """What is wrong with a channel's settings, one line each (empty: nothing)."""
        ...

    def send(self, message: Message, channel: ChannelConfig) -> Receipt:
        """Deliver `message` on `channel`; answer the receipt of this one try."""
        ...


def notifiers() -> dict[str, Notifier]:
    """Every notifier the plugins provide, by kind, checked against the contract; a plugin
    installed later replaces a built-in notifier of the same kind."""
    found: dict[str, Notifier] = {}
    for batch in plugin_manager().hook.blastwall_notifiers():  # the latest plugin first
        for notifier in batch:
            if not isinstance(notifier, Notifier):
                raise PluginError(
                    f"A Blastwall plugin returned {notifier!r} as a notifier; it needs `kind`, "
                    "`secret_keys`, `check` and `send` (see blastwall.plugins)."
                )
            found.setdefault(notifier.kind, notifier)
    return found
