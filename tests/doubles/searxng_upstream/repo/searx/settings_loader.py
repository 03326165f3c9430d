# SPDX-License-Identifier: GPL-3.0-or-later
"""Settings of the SearXNG TEST DOUBLE (not SearXNG), loaded by upstream's rules.

- The defaults are ``searx/settings.yml``.
- The instance's file is ``$SEARXNG_SETTINGS_PATH`` (a file, or a folder holding settings.yml), or
  ``/etc/searxng/settings.yml``; a path in ``SEARXNG_SETTINGS_PATH`` that does not exist is an error.
- With ``use_default_settings: true`` (or a dict) the instance's file is merged over the defaults:
  dicts recursively, anything else replaced; ``engines`` entries update the default engine of the
  same name or are appended; ``use_default_settings.engines.keep_only``/``remove`` filter the
  defaults first. Without it the instance's file replaces the defaults entirely.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import yaml

DEFAULT_SETTINGS_FILE = Path(__file__).parent / "settings.yml"
ETC_FOLDER = Path("/etc/searxng")


class SearxSettingsException(Exception):
    """A settings file that cannot be read or parsed."""


def load_yaml(path: Path) -> dict[str, t.Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            return yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SearxSettingsException(f"{path}: {error}") from error


def get_user_cfg_folder() -> Path | None:
    """The folder of the instance's settings (and limiter.toml), or None."""
    settings_path = os.environ.get("SEARXNG_SETTINGS_PATH")
    if settings_path:
        path = Path(settings_path)
        if path.is_dir():
            return path
        if path.is_file():
            return path.parent
        raise OSError(1, f"{settings_path} not exists!", settings_path)
    return ETC_FOLDER if ETC_FOLDER.is_dir() else None


def user_settings_file() -> Path | None:
    folder = get_user_cfg_folder()
    if folder is None:
        return None
    settings_path = os.environ.get("SEARXNG_SETTINGS_PATH")
    name = Path(settings_path).name if settings_path and Path(settings_path).is_file() else "settings.yml"
    path = folder / name
    return path if path.exists() else None


def update_dict(base: dict[str, t.Any], update: dict[str, t.Any]) -> dict[str, t.Any]:
    for key, value in update.items():
        if isinstance(value, dict):
            base[key] = update_dict(base.get(key) if isinstance(base.get(key), dict) else {}, value)
        else:
            base[key] = value
    return base


def update_settings(defaults: dict[str, t.Any], user: dict[str, t.Any]) -> dict[str, t.Any]:
    for key, value in user.items():
        if key in ("use_default_settings", "engines"):
            continue
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            update_dict(defaults[key], value)
        else:
            defaults[key] = value
    use_default = user.get("use_default_settings")
    engine_rules = use_default.get("engines", {}) if isinstance(use_default, dict) else {}
    engines = list(defaults.get("engines", []))
    if "remove" in engine_rules:
        engines = [engine for engine in engines if engine.get("name") not in engine_rules["remove"]]
    if "keep_only" in engine_rules:
        engines = [engine for engine in engines if engine.get("name") in engine_rules["keep_only"]]
    by_name = {engine["name"]: engine for engine in engines}
    for engine in user.get("engines") or []:
        if engine["name"] in by_name:
            update_dict(by_name[engine["name"]], engine)
        else:
            engines.append(engine)
    defaults["engines"] = engines
    return defaults


def is_use_default_settings(user: dict[str, t.Any]) -> bool:
    value = user.get("use_default_settings")
    if value is True or isinstance(value, dict):
        return True
    if value in (False, None):
        return False
    raise ValueError("Invalid value for use_default_settings")


def load_settings() -> tuple[dict[str, t.Any], str]:
    """(settings, what was loaded), as upstream's ``settings_loader.load_settings``."""
    defaults = load_yaml(DEFAULT_SETTINGS_FILE)
    user_file = user_settings_file()
    if user_file is None:
        return defaults, f"load the default settings from {DEFAULT_SETTINGS_FILE}"
    user = load_yaml(user_file)
    if is_use_default_settings(user):
        message = f"merge the default settings ( {DEFAULT_SETTINGS_FILE} ) and the user settings ( {user_file} )"
        return update_settings(defaults, user), message
    return user, f"load the user settings from {user_file}"
