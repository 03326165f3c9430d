"""roles/nginx/files/nginx-config-test against a fake nginx that snapshots what it was asked to test.

The helper's real nginx -t runs in the nginx molecule scenario; here the fake shows which files the
helper put where, that the live trees are never touched, and what it refuses before nginx runs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

HELPER = Path(__file__).resolve().parents[3] / "roles" / "nginx" / "files" / "nginx-config-test"
HASH = "$6$0123456789abcdef$" + "a" * 86


class Host:
    """A fake host: /etc/nginx, the TLS directory and a recording nginx, all under tmp_path."""

    def __init__(self, root: Path) -> None:
        self.etc = root / "etc" / "nginx"
        self.tls = root / "etc" / "ssl" / "ai_stack"
        self.record = root / "record"
        self.bin = root / "bin"
        self.run_dir = root / "run"
        for directory in (self.etc / "conf.d", self.etc / "snippets", self.tls, self.record, self.bin, self.run_dir):
            directory.mkdir(parents=True)
        (self.etc / "nginx.conf").write_text(f"http {{ include {self.etc}/conf.d/*.conf; }}\n")
        (self.etc / "snippets" / "tls.conf").write_text(
            f"ssl_certificate {self.tls}/nginx.crt;\nssl_certificate_key {self.tls}/nginx.key;\n"
        )
        (self.etc / "conf.d" / "site.conf").write_text(f"server {{ include {self.etc}/snippets/tls.conf; }}\n")
        (self.tls / "nginx.crt").write_text("LIVE CERT\n")
        (self.tls / "nginx.key").write_text("LIVE KEY\n")
        # nginx -t -q -c FILE: keep a copy of FILE's directory (the helper removes it afterwards).
        nginx = self.bin / "nginx"
        nginx.write_text(
            "#!/bin/sh\n"
            "for conf; do :; done\n"
            f'n=$(ls "{self.record}" | wc -l)\n'
            f'cp -a "$(dirname "$conf")" "{self.record}/$n"\n'
            f'echo "$conf" > "{self.record}/$n.conf"\n'
            'exit "${FAKE_NGINX_RC:-0}"\n'
        )
        nginx.chmod(0o755)

    def run(self, *args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ,
            PATH=f"{self.bin}:/usr/bin:/bin",
            NGINX_CONFIG_TEST_ETC=str(self.etc),
            NGINX_CONFIG_TEST_TLS=str(self.tls),
            NGINX_CONFIG_TEST_RUN=str(self.run_dir),
            FAKE_NGINX_RC=str(rc),
        )
        return subprocess.run(
            ["/bin/sh", str(HELPER), *args], capture_output=True, text=True, env=env, check=False, timeout=30
        )

    def tested(self) -> list[tuple[Path, str]]:
        """(snapshot of the tested directory, the config file nginx got) per nginx run."""
        runs = sorted((p for p in self.record.iterdir() if p.is_dir()), key=lambda p: int(p.name))
        return [(p, (self.record / f"{p.name}.conf").read_text().strip()) for p in runs]


@pytest.fixture(name="host")
def host_fixture(tmp_path: Path) -> Host:
    return Host(tmp_path)


def _live(host: Host) -> dict[str, str]:
    return {str(p): p.read_text() for tree in (host.etc, host.tls) for p in sorted(tree.rglob("*")) if p.is_file()}


def test_candidate_is_tested_in_a_copy_pointed_at_itself(host: Host, tmp_path: Path) -> None:
    candidate = tmp_path / "candidate.conf"
    candidate.write_text(f"server {{ include {host.etc}/snippets/tls.conf; listen 443 ssl; }}\n")
    before = _live(host)
    done = host.run(str(candidate), f"{host.etc}/conf.d/site.conf")
    assert done.returncode == 0, done.stderr
    [(copy, conf)] = host.tested()
    work = Path(conf).parents[1]
    assert conf == f"{work}/nginx/nginx.conf"
    assert (
        copy / "conf.d" / "site.conf"
    ).read_text() == f"server {{ include {work}/nginx/snippets/tls.conf; listen 443 ssl; }}\n"
    assert (copy / "snippets" / "tls.conf").read_text() == (
        f"ssl_certificate {work}/tls/nginx.crt;\nssl_certificate_key {work}/tls/nginx.key;\n"
    )
    assert _live(host) == before
    assert list(host.run_dir.iterdir()) == []  # the copy is removed


def test_certificate_and_key_candidates_replace_both_live_files_in_the_copy(host: Host, tmp_path: Path) -> None:
    cert, key = tmp_path / "provided.crt", tmp_path / "provided.key"
    cert.write_text("NEW CERT\n")
    key.write_text("NEW KEY\n")
    live_cert, live_key = f"{host.tls}/nginx.crt", f"{host.tls}/nginx.key"
    before = _live(host)
    done = host.run("--tls", live_cert, live_key, str(cert), live_cert, str(key), live_key)
    assert done.returncode == 0, done.stderr
    (full, full_conf), (tls_only, tls_conf) = host.tested()
    work = Path(full_conf).parents[1]
    # The whole configuration, with both candidates in place of the live files...
    assert (full.parent / full.name).is_dir()
    assert Path(tls_conf) == work / "tls-only.conf"
    assert (tls_only / "tls" / "nginx.crt").read_text() == "NEW CERT\n"
    assert (tls_only / "tls" / "nginx.key").read_text() == "NEW KEY\n"
    # ...and a server of its own that loads exactly that pair, even if no site uses it yet.
    text = (tls_only / "tls-only.conf").read_text()
    assert f"ssl_certificate {work}/tls/nginx.crt;" in text
    assert f"ssl_certificate_key {work}/tls/nginx.key;" in text
    assert _live(host) == before


def test_refusal_by_nginx_fails_and_leaves_the_live_files(host: Host, tmp_path: Path) -> None:
    cert = tmp_path / "broken.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    before = _live(host)
    done = host.run("--tls", f"{host.tls}/nginx.crt", f"{host.tls}/nginx.key", str(cert), f"{host.tls}/nginx.crt", rc=1)
    assert done.returncode != 0
    assert _live(host) == before


def test_target_outside_the_two_trees_is_refused(host: Host, tmp_path: Path) -> None:
    candidate = tmp_path / "x.conf"
    candidate.write_text("")
    done = host.run(str(candidate), "/etc/passwd")
    assert done.returncode == 2
    assert "TARGET must be under" in done.stderr
    assert host.tested() == []


def test_odd_number_of_arguments_is_refused(host: Host, tmp_path: Path) -> None:
    assert host.run(str(tmp_path / "a")).returncode == 2


@pytest.mark.parametrize(
    "content",
    [
        f"#\n# Ansible managed\n#\nadmin:{HASH}\n",
        f"admin:{HASH}\nops:$apr1$abcdefgh$0123456789abcdefghijkl\nweb:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
        "# no users\n\n",
    ],
    ids=["role-output", "other-schemes", "comments-only"],
)
def test_htpasswd_in_the_format_nginx_reads_is_accepted(host: Host, tmp_path: Path, content: str) -> None:
    candidate = tmp_path / "candidate"
    candidate.write_text(content)
    done = host.run(str(candidate), f"{host.etc}/ai_stack.htpasswd")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("content", "bad_lines"),
    [
        ("admin:correct-horse-battery\n", "1"),  # a password that was never hashed
        (f"# header\nadmin {HASH}\n", "2"),
        (f"admin:{HASH}\n:{HASH}\nops:\n", "2 3"),
        (f"admin:{HASH} trailing\n", "1"),
    ],
    ids=["plain-password", "no-colon", "empty-name-and-hash", "trailing-garbage"],
)
def test_htpasswd_in_another_format_is_refused_before_nginx(
    host: Host, tmp_path: Path, content: str, bad_lines: str
) -> None:
    candidate = tmp_path / "candidate"
    candidate.write_text(content)
    done = host.run(str(candidate), f"{host.etc}/ai_stack.htpasswd")
    assert done.returncode == 2
    assert f"line(s) {bad_lines} are not 'name:hash'" in done.stderr
    assert host.tested() == []


def test_helper_lives_in_the_directory_common_creates() -> None:
    """nginx installs the helper into the directory that _common's helper_dir tasks create (no copy of that task)."""
    roles = HELPER.parents[2]
    common = yaml.safe_load((roles / "_common" / "vars" / "main.yml").read_text())
    nginx = yaml.safe_load((roles / "nginx" / "vars" / "main.yml").read_text())
    assert os.path.dirname(nginx["__nginx_config_test"]) == common["__common_helper_dir"]
    install = yaml.safe_load((roles / "nginx" / "tasks" / "install.yml").read_text())
    helper_dir = [t for t in install if t.get("ansible.builtin.include_role", {}).get("tasks_from") == "helper_dir"]
    assert helper_dir, "nginx no longer creates the helper directory through _common"
    assert not [t for t in install if t.get("ansible.builtin.file", {}).get("state") == "directory"]
