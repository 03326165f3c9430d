"""An offline office: no network at all, and converge still took everything from the cache."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
VENV = "/opt/stack-service-double/venv"
PROXY = "http://proxy.office.example:3128"
# The service's wheelhouses on the host, named after its venv (/opt/stack-service-double/venv).
WHEELHOUSES = "/var/cache/ai_stack/wheelhouse/opt_stack-service-double_venv"


@pytest.mark.parametrize("target", ["pypi.org", "1.1.1.1"])
def test_the_host_cannot_reach_out(host, target):
    probe = f"import socket; socket.create_connection(('{target}', 443), timeout=5)"
    assert host.run(f'python3 -c "{probe}"').rc != 0
    assert "default" not in host.check_output("ip route show")


def test_artifact_came_from_the_cache(host):
    expected = hashlib.sha256((SCENARIO / "files" / "release-offline.bin").read_bytes()).hexdigest()
    assert host.check_output("sha256sum /opt/stack-service-double/release-offline.bin").split()[0] == expected


def test_package_came_from_the_controller_wheelhouse(host):
    # The host's Python has no ensurepip (no python3-venv): pip came from the wheelhouse too.
    assert host.run("python3 -c 'import ensurepip'").rc != 0
    assert host.run(f"{VENV}/bin/python -c 'import six; assert six.__version__ == \"1.16.0\"'").rc == 0
    wheelhouses = host.check_output(f"ls {WHEELHOUSES}").split()
    assert len(wheelhouses) == 1
    assert wheelhouses[0].startswith("cp3")
    assert host.file(f"{WHEELHOUSES}/{wheelhouses[0]}/requirements.txt").exists


def test_pip_and_uv_never_look_for_an_index(host):
    pip_conf = host.file("/etc/pip.conf").content_string
    assert "no-index = true" in pip_conf
    assert f"proxy = {PROXY}" in pip_conf
    uv_conf = host.file("/etc/uv/uv.toml").content_string
    assert "no-index = true" in uv_conf
    assert 'python-downloads = "never"' in uv_conf
    # pip gives up at once instead of retrying a network it does not have.
    out = host.run(f"{VENV}/bin/python -m pip install --disable-pip-version-check idna")
    assert out.rc != 0
    assert "Retrying" not in out.stdout + out.stderr


def test_ca_file_from_the_controller_is_trusted(host):
    pem = (SCENARIO / "files" / "office-firewall-ca.crt").read_text().strip()
    files = host.file("/usr/local/share/ca-certificates/ai_stack").listdir()
    assert len(files) == 1
    assert files[0].startswith("office-firewall-ca-")
    assert pem in host.file(BUNDLE).content_string


def test_apt_proxy_with_direct_hosts(host):
    conf = host.file("/etc/apt/apt.conf.d/80ai-stack-proxy").content_string
    assert f'Acquire::http::Proxy "{PROXY}";' in conf
    assert f'Acquire::https::Proxy "{PROXY}";' in conf
    for direct in ("localhost", "127.0.0.1", "mirror.office.example"):
        assert f'Acquire::https::Proxy::{direct} "DIRECT";' in conf
    # apt matches exact host names only: domains, networks and IPv6 addresses are left out.
    assert "::.office.example" not in conf
    assert "10.0.0.0/8" not in conf
    assert "::::1" not in conf
    assert host.run("apt-config dump Acquire::https::Proxy").stdout.count(PROXY) == 1


def test_login_environment_and_git_get_the_proxy(host):
    environment = host.file("/etc/environment").content_string
    assert f'https_proxy="{PROXY}"' in environment
    assert f'HTTPS_PROXY="{PROXY}"' in environment
    gitconfig = host.file("/etc/gitconfig").content_string
    assert f"sslCAInfo = {BUNDLE}" in gitconfig
    assert f"proxy = {PROXY}" in gitconfig


def test_service_unit_environment_is_offline_and_proxied(host):
    env = host.check_output("systemctl show -p Environment --value stack-service-double.service").split()
    assert "HF_HUB_OFFLINE=1" in env
    assert "TRANSFORMERS_OFFLINE=1" in env
    assert f"SSL_CERT_FILE={BUNDLE}" in env
    # The proxy is in the unit's root-only environment file (it may carry a password).
    assert not [v for v in env if "proxy" in v.lower()]
    service_env = host.file("/etc/ai_stack/env/stack-service-double.env").content_string
    assert f"https_proxy='{PROXY}'" in service_env
    no_proxy = re.search(r"^no_proxy='([^']*)'$", service_env, re.M)[1].split(",")
    hostname = host.check_output("hostname")
    for entry in ("localhost", "127.0.0.1", "::1", ".office.example", "10.0.0.0/8", hostname):
        assert entry in no_proxy


@pytest.mark.parametrize(
    ("missing", "message"),
    [("artifact", "not-cached.bin is missing"), ("wheelhouse", "pip download --only-binary=:all:")],
)
def test_offline_site_refuses_what_the_cache_lacks(host, missing, message):
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(SCENARIO / "missing_from_cache.yml"),
            "-e",
            f"missing={missing}",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
        check=False,
    )
    assert run.returncode != 0
    output = " ".join((run.stdout + run.stderr).split())
    assert message in output, output[-3000:]
    assert not host.file("/opt/stack-service-double/not-cached.bin").exists
    assert not host.file("/opt/stack-service-double/missing-venv").exists
