"""Checks every service scenario makes the same way: loopback only, an unprivileged system user, no
secret where another user can read it.

``molecule/conftest.py`` puts this directory on sys.path.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable


def assert_listens_on_loopback_only(host, port: int, user: str) -> None:
    """``port`` is bound to 127.0.0.1 alone, nothing on the host listens beyond loopback, and the
    listening socket belongs to ``user`` (read from /proc/net/tcp: the sandbox hides the server's
    file descriptors even from root)."""
    listeners = [line.split()[3] for line in host.check_output("ss -H -tln").splitlines()]
    assert [address for address in listeners if address.endswith(f":{port}")] == [f"127.0.0.1:{port}"], listeners
    assert [address for address in listeners if not address.startswith(("127.", "[::1]"))] == [], listeners
    owner = host.check_output(f"awk '$2 ~ /:{port:04X}$/ && $4 == \"0A\" {{print $8}}' /proc/net/tcp")
    assert owner == str(host.user(user).uid)


def assert_system_user_without_sudo(host, name: str):
    """``name`` is a system user with no login shell, not in sudo, and sudo refuses it. Returns it."""
    user = host.user(name)
    assert user.exists
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")
    assert user.uid < 1000
    assert "sudo" not in user.groups
    assert host.run(f"runuser -u {name} -- sudo -n true").rc != 0
    return user


def assert_secrets_hidden_from_other_users(host, unit: str, secrets: Iterable[str], trees: str) -> None:
    """None of ``secrets`` is in ``systemctl show <unit>`` as ``nobody`` sees it, in the unit file, or in
    any file under ``trees`` (space-separated) that ``nobody`` can read."""
    secrets = list(secrets)
    show = host.run(f"runuser -u nobody -- systemctl show {unit}")
    assert show.rc == 0 and "ExecStart=" in show.stdout
    unit_file = host.file(f"/etc/systemd/system/{unit}.service").content_string
    for value in secrets:
        assert value not in show.stdout
        assert value not in unit_file
    patterns = " ".join(f"-e {shlex.quote(value)}" for value in secrets)
    readable = host.run(
        f"runuser -u nobody -- grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev {patterns} {trees}"
    )
    assert readable.stdout == "", readable.stdout
