"""The office_network apt mirror rewrite against the distributions' stock apt sources.

roles/office_network/tasks/apt.yml points the distribution's archive and its security archive at
the office mirrors with ansible.builtin.replace, one regexp at a time from
``__office_network_apt_primary_patterns`` and ``__office_network_apt_security_patterns``
(roles/office_network/vars/main.yml). This test loads the patterns and the tasks' ``replace``
strings from the role itself and applies them the way the replace module does (``re.MULTILINE``,
``re.subn`` over the whole file), file by file and pattern by pattern in the tasks' loop order.

Fixtures (tests/unit/fixtures/apt/):
- ubuntu-noble.sources: /etc/apt/sources.list.d/ubuntu.sources of an Ubuntu 24.04 server, deb822,
  with upstream's comment header (which itself mentions "URIs:" and "Suites:").
- debian-bookworm.list: /etc/apt/sources.list as the Debian 12 installer writes it (one-line, with
  deb-src entries and a disabled cdrom entry).
- debian-trixie.sources: /etc/apt/sources.list.d/debian.sources of the official Debian 13 image.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "office_network"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apt"
MIRROR = "http://mirror.office.example/debian/"
SECURITY_MIRROR = "http://security-mirror.office.example/debian-security/"


def _role_vars() -> dict:
    return yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def _replace_task(patterns_var: str) -> dict:
    """The ansible.builtin.replace task of tasks/apt.yml that loops over ``patterns_var``."""
    tasks = yaml.safe_load((ROLE / "tasks" / "apt.yml").read_text())
    found = [t for t in tasks if "ansible.builtin.replace" in t and patterns_var in str(t.get("loop", ""))]
    assert len(found) == 1, f"expected one replace task over {patterns_var} in tasks/apt.yml"
    return found[0]


def _rewrite(text: str, mirror: str = "", security_mirror: str = "") -> str:
    """What the two replace tasks leave in one file (a task runs only when its mirror is set)."""
    role_vars = _role_vars()
    settings = {"ai_stack_apt_mirror_url": mirror, "ai_stack_apt_security_mirror_url": security_mirror}
    for patterns_var, setting in (
        ("__office_network_apt_primary_patterns", "ai_stack_apt_mirror_url"),
        ("__office_network_apt_security_patterns", "ai_stack_apt_security_mirror_url"),
    ):
        if not settings[setting]:
            continue
        task = _replace_task(patterns_var)
        replace = jinja2.Template(task["ansible.builtin.replace"]["replace"]).render(settings)
        for pattern in role_vars[patterns_var]:
            # ansible.builtin.replace: re.compile(regexp, re.MULTILINE), then re.subn(mre, replace, contents, 0).
            text = re.subn(re.compile(pattern, re.MULTILINE), replace, text, count=0)[0]
    return text


def _deb822_uris(text: str) -> list[tuple[str, str]]:
    """(URIs, Suites) of each deb822 stanza."""
    stanzas = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(URIs|Suites):[ \t]*(.*)$", stanza, re.M))
        if "URIs" in fields:
            stanzas.append((fields["URIs"], fields["Suites"]))
    return stanzas


def _one_line_uris(text: str) -> list[tuple[str, str, str]]:
    """(type, URI, suite) of each active one-line entry."""
    return re.findall(r"^(deb|deb-src)[ \t]+(?:\[[^\]\n]*\][ \t]+)?(\S+)[ \t]+(\S+)", text, re.M)


def _unchanged_lines(before: str, after: str, changed: re.Pattern[str]) -> None:
    """Every line but the rewritten entries is byte for byte the same (comments included)."""
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    for line_before, line_after in zip(old, new, strict=True):
        if not changed.match(line_before):
            assert line_after == line_before


@pytest.fixture(name="noble")
def noble_fixture() -> str:
    return (FIXTURES / "ubuntu-noble.sources").read_text()


def test_noble_primary_and_security_stanzas_get_their_mirrors(noble: str) -> None:
    after = _rewrite(noble, MIRROR, SECURITY_MIRROR)
    assert _deb822_uris(after) == [
        (MIRROR, "noble noble-updates noble-backports"),
        (SECURITY_MIRROR, "noble-security"),
    ]
    _unchanged_lines(noble, after, re.compile(r"^URIs:"))
    # The header's own "## URIs:" and "## Suites:" lines are comments, not fields.
    assert "## URIs: A URL to the repository (you may add multiple URLs)" in after


def test_noble_primary_mirror_only_leaves_the_security_archive(noble: str) -> None:
    after = _rewrite(noble, MIRROR)
    assert _deb822_uris(after) == [
        (MIRROR, "noble noble-updates noble-backports"),
        ("http://security.ubuntu.com/ubuntu/", "noble-security"),
    ]


def test_noble_security_mirror_only_leaves_the_archive(noble: str) -> None:
    after = _rewrite(noble, security_mirror=SECURITY_MIRROR)
    assert _deb822_uris(after) == [
        ("http://archive.ubuntu.com/ubuntu/", "noble noble-updates noble-backports"),
        (SECURITY_MIRROR, "noble-security"),
    ]


def test_trixie_debian_sources_get_their_mirrors() -> None:
    before = (FIXTURES / "debian-trixie.sources").read_text()
    after = _rewrite(before, MIRROR, SECURITY_MIRROR)
    assert _deb822_uris(after) == [(MIRROR, "trixie trixie-updates"), (SECURITY_MIRROR, "trixie-security")]
    # The snapshot comments between Types and URIs stay.
    _unchanged_lines(before, after, re.compile(r"^URIs:"))


@pytest.mark.parametrize(
    ("mirror", "security_mirror", "expected"),
    [
        (MIRROR, "", [(MIRROR, "trixie trixie-updates"), ("http://deb.debian.org/debian-security", "trixie-security")]),
        (
            "",
            SECURITY_MIRROR,
            [("http://deb.debian.org/debian", "trixie trixie-updates"), (SECURITY_MIRROR, "trixie-security")],
        ),
    ],
    ids=["primary-only", "security-only"],
)
def test_trixie_one_mirror_leaves_the_other_archive(mirror: str, security_mirror: str, expected: list) -> None:
    before = (FIXTURES / "debian-trixie.sources").read_text()
    assert _deb822_uris(_rewrite(before, mirror, security_mirror)) == expected


BOOKWORM_SUITES = [
    "bookworm",
    "bookworm",
    "bookworm-security",
    "bookworm-security",
    "bookworm-updates",
    "bookworm-updates",
]


def test_bookworm_one_line_sources_get_their_mirrors() -> None:
    before = (FIXTURES / "debian-bookworm.list").read_text()
    after = _rewrite(before, MIRROR, SECURITY_MIRROR)
    assert _one_line_uris(after) == [
        ("deb", MIRROR, "bookworm"),
        ("deb-src", MIRROR, "bookworm"),
        ("deb", SECURITY_MIRROR, "bookworm-security"),
        ("deb-src", SECURITY_MIRROR, "bookworm-security"),
        ("deb", MIRROR, "bookworm-updates"),
        ("deb-src", MIRROR, "bookworm-updates"),
    ]
    # The disabled cdrom entry and the comments stay as they were.
    _unchanged_lines(before, after, re.compile(r"^deb(-src)?\s"))
    assert after.startswith("#deb cdrom:[Debian GNU/Linux 12.5.0")


@pytest.mark.parametrize(
    ("mirror", "security_mirror", "expected"),
    [
        (
            MIRROR,
            "",
            [
                MIRROR,
                MIRROR,
                "http://security.debian.org/debian-security",
                "http://security.debian.org/debian-security",
                MIRROR,
                MIRROR,
            ],
        ),
        (
            "",
            SECURITY_MIRROR,
            ["http://deb.debian.org/debian/"] * 2 + [SECURITY_MIRROR] * 2 + ["http://deb.debian.org/debian/"] * 2,
        ),
    ],
    ids=["primary-only", "security-only"],
)
def test_bookworm_one_mirror_leaves_the_other_archive(mirror: str, security_mirror: str, expected: list) -> None:
    after = _rewrite((FIXTURES / "debian-bookworm.list").read_text(), mirror, security_mirror)
    assert [(uri, suite) for _kind, uri, suite in _one_line_uris(after)] == list(
        zip(expected, BOOKWORM_SUITES, strict=True)
    )


@pytest.mark.parametrize("name", ["ubuntu-noble.sources", "debian-trixie.sources", "debian-bookworm.list"])
def test_rewrite_is_idempotent(name: str) -> None:
    once = _rewrite((FIXTURES / name).read_text(), MIRROR, SECURITY_MIRROR)
    assert _rewrite(once, MIRROR, SECURITY_MIRROR) == once


@pytest.mark.parametrize("name", ["ubuntu-noble.sources", "debian-trixie.sources", "debian-bookworm.list"])
def test_rewrite_moves_an_office_from_one_mirror_to_another(name: str) -> None:
    first = _rewrite((FIXTURES / name).read_text(), MIRROR, SECURITY_MIRROR)
    moved = _rewrite(first, "http://new.office.example/debian/", "http://new.office.example/security/")
    assert MIRROR not in moved
    assert SECURITY_MIRROR not in moved


# Entries with [options] and stanzas with Suites before URIs: both once rewrote the wrong field.
def test_one_line_entries_with_signed_by_and_ubuntus_security_host() -> None:
    key = "[signed-by=/usr/share/keyrings/ubuntu-archive-keyring.gpg]"
    before = (
        f"deb {key} http://archive.ubuntu.com/ubuntu/ jammy main\n"
        f"deb {key} http://security.ubuntu.com/ubuntu/ jammy-security main\n"
    )
    assert _rewrite(before, MIRROR, SECURITY_MIRROR) == (
        f"deb {key} {MIRROR} jammy main\ndeb {key} {SECURITY_MIRROR} jammy-security main\n"
    )


def test_one_line_entries_with_several_options() -> None:
    options = "[arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    before = (
        f"deb {options} http://deb.debian.org/debian bookworm main\n"
        f"deb {options} http://deb.debian.org/debian-security bookworm-security main\n"
    )
    assert _rewrite(before, MIRROR, SECURITY_MIRROR) == (
        f"deb {options} {MIRROR} bookworm main\ndeb {options} {SECURITY_MIRROR} bookworm-security main\n"
    )


def test_deb822_stanza_with_suites_before_uris() -> None:
    before = (
        "Types: deb\nSuites: trixie\nURIs: http://deb.debian.org/debian\nComponents: main\n\n"
        "Types: deb\nSuites: trixie-security\nURIs: http://deb.debian.org/debian-security\nComponents: main\n"
    )
    assert _deb822_uris(_rewrite(before, MIRROR, SECURITY_MIRROR)) == [
        (MIRROR, "trixie"),
        (SECURITY_MIRROR, "trixie-security"),
    ]
