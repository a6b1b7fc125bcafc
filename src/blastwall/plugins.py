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
    from blastwall.containment.schemas import ActionRecord

__all__ = ["DEFAULT_PLUGINS", "ContainmentConnector", "containment_connectors", "plugin_manager"]

DEFAULT_PLUGINS = ("blastwall.detection.builtin", "blastwall.containment.connector")
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
