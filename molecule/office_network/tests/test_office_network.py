"""A branch office behind a TLS-inspecting proxy: extra CAs trusted, pip/uv/git/apt configured,
Python packages installed from PyPI through the CA, one upstream download per artifact."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest

PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
VENV = "/root/verify-venv"
# The second host only repeats what the first proves over the network; the download-heavy checks
# run on the first one (CI has two cores).
FIRST_HOST = "ai-stack-office-network-1"


def _controller_extra_cas() -> list[str]:
    """The same certificates the scenario hands to the hosts (see molecule.yml)."""
    bundle = PEM.findall(Path(BUNDLE).read_text())
    mozilla_files = Path("/usr/share/ca-certificates/mozilla").glob("*.crt")
    mozilla = set(PEM.findall("\n".join(p.read_text() for p in mozilla_files)))
    return [cert for cert in bundle if cert not in mozilla]


# The controller's proxy if it has one, else the proxy test double on each host (see molecule.yml).
CONTROLLER_PROXY = next(
    (os.environ[n] for n in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY") if os.environ.get(n)), ""
)
PROXY = CONTROLLER_PROXY or "http://127.0.0.1:3128"
PROXY_LOG = "/var/log/forward-proxy/requests.log"


def _proxy_log(host) -> list[str]:
    return host.file(PROXY_LOG).content_string.splitlines() if host.file(PROXY_LOG).exists else []


def _through_the_double(host, command: str) -> list[str]:
    """Run command; return the requests the proxy double saw meanwhile (none with a controller proxy)."""
    before = len(_proxy_log(host))
    out = host.run(command)
    assert out.rc == 0, out.stdout + out.stderr
    return _proxy_log(host)[before:]


def test_extra_cas_are_in_the_hosts_trust_store(host):
    extra = _controller_extra_cas()
    installed = host.file("/usr/local/share/ca-certificates/ai_stack")
    assert installed.is_directory
    assert len(installed.listdir()) == len(extra)
    bundle = host.file(BUNDLE).content_string
    for cert in extra:
        assert cert in bundle


def _first_host_only(host) -> None:
    if host.backend.get_hostname() != FIRST_HOST:
        pytest.skip("downloads on the first host only")


def test_pip_installs_from_the_index_with_no_flags(host):
    _first_host_only(host)
    # Only /etc/pip.conf (CA bundle, index, proxy) makes this work behind the CI proxy.
    host.check_output(f"rm -rf {VENV} && python3 -m venv {VENV}")
    pip = f"{VENV}/bin/python -m pip install --no-cache-dir --disable-pip-version-check"
    seen = _through_the_double(host, f"{pip} idna")
    assert host.run(f"{VENV}/bin/python -c 'import idna'").rc == 0
    if not CONTROLLER_PROXY:
        assert "CONNECT pypi.org:443" in seen


def test_uv_installs_from_the_index_with_no_flags(host):
    _first_host_only(host)
    # uv itself comes from PyPI through pip; then /etc/uv/uv.toml (native-tls) and the login
    # environment's proxy (/etc/environment) are all uv gets.
    host.check_output(f"test -x {VENV}/bin/uv || {VENV}/bin/python -m pip install --no-cache-dir -q uv")
    seen = _through_the_double(
        host, f"set -a; . /etc/environment; set +a; {VENV}/bin/uv pip install --no-cache --python {VENV}/bin/python six"
    )
    assert host.run(f"{VENV}/bin/python -c 'import six'").rc == 0
    if not CONTROLLER_PROXY:
        assert "CONNECT pypi.org:443" in seen


def test_service_role_installed_its_package_from_the_index(host):
    check = "import six; assert six.__version__ == '1.16.0'"
    assert host.run(f'/opt/stack-service-double/venv/bin/python -c "{check}"').rc == 0


def test_pip_and_uv_configuration(host):
    pip_conf = host.file("/etc/pip.conf")
    assert pip_conf.content_string.startswith("#\n# Ansible managed")
    assert f"cert = {BUNDLE}" in pip_conf.content_string
    assert "no-index" not in pip_conf.content_string
    assert f"proxy = {PROXY}" in pip_conf.content_string
    uv_conf = host.file("/etc/uv/uv.toml").content_string
    assert "native-tls = true" in uv_conf
    assert "no-index" not in uv_conf


def test_git_uses_the_system_trust_store_and_the_proxy(host):
    gitconfig = host.file("/etc/gitconfig").content_string
    assert f"[http]\nsslCAInfo = {BUNDLE}\nproxy = {PROXY}\n" in gitconfig


def test_apt_goes_through_the_proxy(host):
    conf = host.file("/etc/apt/apt.conf.d/80ai-stack-proxy").content_string
    assert f'Acquire::http::Proxy "{PROXY}";' in conf
    assert 'Acquire::http::Proxy::localhost "DIRECT";' in conf
    assert 'Acquire::http::Proxy::127.0.0.1 "DIRECT";' in conf


def test_apt_uses_the_office_mirror(host):
    mirror = (STATE / "apt-mirror").read_text().strip()
    if not mirror:
        pytest.skip("the image keeps its apt sources in deb822 form; prepare did not set a mirror")
    sources = host.file("/etc/apt/sources.list").content_string
    assert f"deb {mirror} " in sources
    assert "mirror.invalid" not in sources
    _first_host_only(host)
    # Reachable, through the proxy.
    seen = _through_the_double(host, "apt-get update -o Acquire::Retries=1")
    if not CONTROLLER_PROXY:
        assert any(line.startswith(f"GET {mirror.rstrip('/')}/") for line in seen), seen


def test_service_unit_gets_the_ca_and_proxy_environment(host):
    env = host.check_output("systemctl show -p Environment --value stack-service-double.service")
    if _controller_extra_cas():
        assert f"SSL_CERT_FILE={BUNDLE}" in env
        assert f"REQUESTS_CA_BUNDLE={BUNDLE}" in env
    assert f"https_proxy={PROXY}" in env
    assert f"HTTPS_PROXY={PROXY}" in env
    no_proxy = next(v for v in env.split() if v.startswith("no_proxy=")).removeprefix("no_proxy=").split(",")
    for entry in ("localhost", "127.0.0.1", "::1", host.check_output("hostname")):
        assert entry in no_proxy
    assert "HF_HUB_OFFLINE" not in env


def test_both_hosts_have_each_artifact_with_its_checksum(host):
    for name in ("release-a.bin", "model-b.bin"):
        expected = hashlib.sha256((SCENARIO / "files" / "upstream" / name).read_bytes()).hexdigest()
        assert host.check_output(f"sha256sum /opt/stack-service-double/{name}").split()[0] == expected


def test_upstream_saw_one_download_per_artifact():
    # Two hosts, converge and idempotence (and the check-mode run): still one GET per artifact.
    port = (STATE / "upstream_counter.port").read_text().strip()
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(f"http://127.0.0.1:{port}/_counts", timeout=10) as reply:
        counts = json.load(reply)
    assert counts == {"/files/release-a.bin": 1, "/files/model-b.bin": 1}
