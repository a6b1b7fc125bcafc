"""The plugin manager: the built-in plugins, then those installed under the `blastwall`
entry-point group.

A plugin's failure to load is an error that names the plugin, never a silent gap: a
detector that is thought to watch and does not is worse than a startup that fails.
"""

from __future__ import annotations

import functools
import importlib

import pluggy

from blastwall import hookspecs
from blastwall.errors import PluginError

__all__ = ["DEFAULT_PLUGINS", "plugin_manager"]

DEFAULT_PLUGINS = ("blastwall.detection.builtin",)
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
