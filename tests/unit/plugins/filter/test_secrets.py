# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""Credential filters: what they mask, strip and quote."""

from __future__ import annotations

import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.secrets import (
    FilterModule,
    systemd_environment_file,
    url_credentials,
    url_has_credentials,
    url_redact,
    url_strip_credentials,
)

URLS = [
    # (url, has credentials, stripped, redacted)
    ("http://proxy:3128", False, "http://proxy:3128", "http://proxy:3128"),
    ("http://office:pw@proxy:3128", True, "http://proxy:3128", "http://office:********@proxy:3128"),
    ("https://office@proxy:3128/", True, "https://proxy:3128/", "https://********@proxy:3128/"),
    ("http://u:p%40ss@10.0.0.1:8080", True, "http://10.0.0.1:8080", "http://u:********@10.0.0.1:8080"),
    ("", False, "", ""),
]


@pytest.mark.parametrize(("url", "has", "stripped", "redacted"), URLS)
def test_urls(url: str, has: bool, stripped: str, redacted: str) -> None:
    assert url_has_credentials(url) is has
    assert url_strip_credentials(url) == stripped
    assert url_redact(url) == redacted
    # Idempotency row: applying a filter to its own output changes nothing.
    assert url_strip_credentials(stripped) == stripped
    assert url_redact(redacted) == redacted


def test_credentials_are_split_and_decoded() -> None:
    assert url_credentials("http://off%20ice:p%40ss:w@proxy:3128/") == {
        "url": "http://proxy:3128/",
        "username": "off ice",
        "password": "p@ss:w",
    }
    assert url_credentials("http://proxy:3128") == {"url": "http://proxy:3128", "username": "", "password": ""}
    assert url_credentials("") == {"url": "", "username": "", "password": ""}


def test_redact_masks_malformed_values_and_text() -> None:
    # What a failure message echoes: a bad value, or a list of them.
    bad = '["http://office:S3cret pw@proxy", "ftp://a:b@c"]'
    shown = url_redact(bad)
    assert "S3cret" not in shown and ":b@" not in shown
    assert "office:********@proxy" in shown


def test_redact_never_fails() -> None:
    assert url_redact(None) == ""
    assert url_redact(3128) == "3128"


def test_url_filters_reject_non_strings() -> None:
    with pytest.raises(AnsibleFilterError, match="expects a URL string"):
        url_strip_credentials(["http://a:b@c"])


ODD = "p'a\"s$s\\w%rd `x` $(id)"


def test_environment_file_quotes_for_sh(tmp_path) -> None:
    text = systemd_environment_file({"B": ODD, "A": True, "C": 3, "D": None}, header="Ansible managed\nsecond")
    assert text.splitlines()[:2] == ["# Ansible managed", "# second"]
    # Sorted keys: the file changes only when a value does.
    assert [line.split("=")[0] for line in text.splitlines()[2:]] == ["A", "B", "C", "D"]
    env = tmp_path / "x.env"
    env.write_text(text)
    out = subprocess.run(
        ["sh", "-c", f'. "{env}"; printf "%s|%s|%s|%s" "$A" "$B" "$C" "$D"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"1|{ODD}|3|"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"1BAD": "x"}, "not an environment variable name"),
        ({"A": "two\nlines"}, "newline"),
        ({"A": ["x"]}, "string or number"),
        ("A=b", "expects a dict"),
    ],
)
def test_environment_file_rejects(value, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        systemd_environment_file(value)


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "url_has_credentials",
        "url_strip_credentials",
        "url_credentials",
        "url_redact",
        "systemd_environment_file",
    }
