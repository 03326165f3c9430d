# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that keep credentials out of world-readable files and output.

Documentation: url_redact.yml, url_strip_credentials.yml, url_has_credentials.yml and
systemd_environment_file.yml next to this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible.errors import AnsibleFilterError

# Environment variable names systemd and POSIX shells both accept.
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REDACTED = "********"


def _split(value: Any, name: str):
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{name} expects a URL string, got {type(value).__name__}")
    return urlsplit(value)


def _netloc_without_userinfo(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def url_has_credentials(value: Any) -> bool:
    """True when the URL carries a user name or password (``scheme://user:pass@host``)."""
    if value in (None, ""):
        return False
    return "@" in _split(value, "url_has_credentials").netloc


def url_strip_credentials(value: Any) -> str:
    """The URL without its ``user:password@`` part; other strings pass through unchanged."""
    if value in (None, ""):
        return ""
    parts = _split(value, "url_strip_credentials")
    if "@" not in parts.netloc:
        return value
    return urlunsplit(parts._replace(netloc=_netloc_without_userinfo(parts.netloc)))


def url_credentials(value: Any) -> dict[str, str]:
    """Split a URL into ``url`` (without credentials), ``username`` and ``password`` (decoded).

    For files that keep credentials apart from the URL, e.g. apt's auth.conf.d ``machine`` lines.
    """
    if value in (None, ""):
        return {"url": "", "username": "", "password": ""}
    parts = _split(value, "url_credentials")
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    user, _sep, password = userinfo.partition(":")
    return {"url": url_strip_credentials(value), "username": unquote(user), "password": unquote(password)}


def url_redact(value: Any) -> str:
    """The URL with its password (or a lone user name) replaced by asterisks, for messages.

    Works on anything, also on malformed input (which is what error messages show): every
    ``//userinfo@`` is masked, so a bad value can be named without printing its secret.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return re.sub(r"(//)([^/@]*)@", lambda m: m.group(1) + _mask_userinfo(m.group(2)) + "@", text)


def _mask_userinfo(userinfo: str) -> str:
    user, sep, _password = userinfo.partition(":")
    return f"{user}:{REDACTED}" if sep else REDACTED


def _quote(value: str) -> str:
    # Single quotes mean the same to systemd's EnvironmentFile= parser and to a POSIX shell:
    # nothing inside is expanded. A single quote itself is closed, escaped and reopened.
    return "'" + value.replace("'", "'\\''") + "'"


def systemd_environment_file(value: Any, header: str = "") -> str:
    """Render a dict as an environment file that systemd (EnvironmentFile=) and sh (.) read alike.

    Values are single-quoted, so ``$``, backslashes, quotes and ``%`` arrive literally; booleans
    become 1/0. Keys are sorted, so the file only changes when a value does.
    """
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"systemd_environment_file expects a dict, got {type(value).__name__}")
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for key in sorted(value):
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise AnsibleFilterError(f"systemd_environment_file: {key!r} is not an environment variable name")
        item = value[key]
        if isinstance(item, bool):
            item = "1" if item else "0"
        elif item is None:
            item = ""
        elif not isinstance(item, (str, int, float)):
            raise AnsibleFilterError(f"systemd_environment_file: the value of {key} must be a string or number")
        text = str(item)
        if "\n" in text or "\0" in text:
            raise AnsibleFilterError(f"systemd_environment_file: the value of {key} contains a newline or NUL")
        lines.append(f"{key}={_quote(text)}")
    return "\n".join(lines) + "\n"


class FilterModule:
    """Credential-handling filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "url_has_credentials": url_has_credentials,
            "url_strip_credentials": url_strip_credentials,
            "url_credentials": url_credentials,
            "url_redact": url_redact,
            "systemd_environment_file": systemd_environment_file,
        }
