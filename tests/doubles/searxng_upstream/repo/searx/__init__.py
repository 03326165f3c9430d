# SPDX-License-Identifier: GPL-3.0-or-later
"""SearXNG TEST DOUBLE (not SearXNG): the package, its settings and ``get_setting``, as upstream's.

Importing it loads the settings, as upstream's ``searx/__init__.py`` does; it imports msgspec and
PyYAML at the top, which is why upstream's (and this) ``setup.py`` only runs where they are installed.
"""

from __future__ import annotations

import logging
import os
import typing as t

import msgspec  # noqa: F401  # upstream imports it here; setup.py depends on it through this import

from searx import settings_loader

logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s: %(message)s")
logger = logging.getLogger("searx")

_UNSET = object()

# Settings upstream lets the environment override (searx/settings_defaults.py, environ_name).
ENVIRONMENT_OVERRIDES = {
    "SEARXNG_SECRET": ("server", "secret_key", str),
    "SEARXNG_DEBUG": ("general", "debug", lambda value: value.lower() in ("1", "true")),
    "SEARXNG_LIMITER": ("server", "limiter", lambda value: value.lower() in ("1", "true")),
}


def _load() -> tuple[dict[str, t.Any], str]:
    loaded, message = settings_loader.load_settings()
    for variable, (section, key, convert) in ENVIRONMENT_OVERRIDES.items():
        if variable in os.environ:
            loaded.setdefault(section, {})[key] = convert(os.environ[variable])
    return loaded, message


settings, settings_load_message = _load()
sxng_debug: bool = bool(settings.get("general", {}).get("debug"))
logger.info(settings_load_message)


def get_setting(name: str, default: t.Any = _UNSET) -> t.Any:
    """The setting ``name`` in dotted form (``server.secret_key``), as upstream's ``get_setting``."""
    value: t.Any = settings
    for key in name.split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif default is _UNSET:
            raise KeyError(name)
        else:
            return default
    return value
