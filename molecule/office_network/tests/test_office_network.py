"""A branch office behind a TLS-inspecting proxy: extra CAs trusted, pip/uv/git/apt configured,
Python packages installed from PyPI through the CA, one upstream download per artifact."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
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
# The double wants a password; every world-readable file gets the proxy without it.
PROXY_PASSWORD = "Office-proxy-S3cret"
PROXY = CONTROLLER_PROXY or f"http://office:{PROXY_PASSWORD}@127.0.0.1:3128"
PUBLIC_PROXY = CONTROLLER_PROXY or "http://127.0.0.1:3128"
PROXY_LOG = "/var/log/forward-proxy/requests.log"
# Runs a command with the office proxy from the root-only file.
OFFICE_PROXY = "/usr/local/libexec/ai_stack/office-proxy"
OFFICE_PROXY_ENV = "/etc/ai_stack/env/office-proxy.env"
SERVICE_ENV = "/etc/ai_stack/env/stack-service-double.env"
APT_AUTH = "/etc/apt/auth.conf.d/80ai-stack-proxy.conf"


def _needs_the_double() -> None:
    if CONTROLLER_PROXY:
        pytest.skip("the controller's own proxy is the office proxy here, and it has no password")


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


def test_pip_installs_from_the_index_through_office_proxy(host):
    _first_host_only(host)
    # Only /etc/pip.conf (CA bundle, index) and office-proxy (the proxy with its password) make
    # this work behind the CI proxy.
    host.check_output(f"rm -rf {VENV} && python3 -m venv {VENV}")
    pip = f"{OFFICE_PROXY} {VENV}/bin/python -m pip install --no-cache-dir --disable-pip-version-check"
    seen = _through_the_double(host, f"{pip} idna")
    assert host.run(f"{VENV}/bin/python -c 'import idna'").rc == 0
    if not CONTROLLER_PROXY:
        assert "CONNECT pypi.org:443" in seen


def test_uv_installs_from_the_index_with_no_flags(host):
    _first_host_only(host)
    # uv itself comes from PyPI through pip; then /etc/uv/uv.toml (native-tls) and the proxy from
    # office-proxy are all uv gets.
    host.check_output(f"test -x {VENV}/bin/uv || {OFFICE_PROXY} {VENV}/bin/python -m pip install --no-cache-dir -q uv")
    seen = _through_the_double(
        host, f"{OFFICE_PROXY} {VENV}/bin/uv pip install --no-cache --python {VENV}/bin/python six"
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
    if CONTROLLER_PROXY:
        assert f"proxy = {PROXY}" in pip_conf.content_string
    else:
        # World-readable: a proxy with a password stays out (pip gets it from office-proxy).
        assert "proxy =" not in pip_conf.content_string
        assert "office-proxy" in pip_conf.content_string
    uv_conf = host.file("/etc/uv/uv.toml").content_string
    assert "native-tls = true" in uv_conf
    assert "no-index" not in uv_conf


def test_git_uses_the_system_trust_store_and_the_proxy(host):
    gitconfig = host.file("/etc/gitconfig").content_string
    if CONTROLLER_PROXY:
        assert f"[http]\nsslCAInfo = {BUNDLE}\nproxy = {PROXY}\n" in gitconfig
    else:
        assert f"[http]\nsslCAInfo = {BUNDLE}\n" in gitconfig
        # git takes the proxy from the environment, as office-proxy sets it (test_office_proxy_...).
        assert "proxy" not in gitconfig


def test_apt_goes_through_the_proxy(host):
    conf = host.file("/etc/apt/apt.conf.d/80ai-stack-proxy").content_string
    assert f'Acquire::http::Proxy "{PUBLIC_PROXY}";' in conf
    assert 'Acquire::http::Proxy::localhost "DIRECT";' in conf
    assert 'Acquire::http::Proxy::127.0.0.1 "DIRECT";' in conf


def test_apt_uses_the_office_mirror(host):
    mirror = (STATE / "apt-mirror").read_text().strip()
    assert mirror, "prepare found no mirror in the image's apt sources"
    deb822 = host.file("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists:  # Debian 13, like Ubuntu 24.04's ubuntu.sources
        sources = deb822.content_string
        assert f"URIs: {mirror}" in sources
    else:
        sources = host.file("/etc/apt/sources.list").content_string
        assert f"deb {mirror} " in sources
    assert "mirror.invalid" not in sources
    _first_host_only(host)
    # Reachable, through the proxy.
    seen = _through_the_double(host, "apt-get update -o Acquire::Retries=1")
    if not CONTROLLER_PROXY:
        assert any(line.startswith(f"GET {mirror.rstrip('/')}/") for line in seen), seen


def test_apt_gets_the_proxy_password_from_a_root_only_file(host):
    _needs_the_double()
    auth = host.file(APT_AUTH)
    assert (auth.user, auth.group, auth.mode) == ("root", "root", 0o600)
    assert f"machine http://127.0.0.1:3128 login office password {PROXY_PASSWORD}" in auth.content_string


def test_service_unit_gets_the_ca_and_proxy_environment(host):
    env = host.check_output("systemctl show -p Environment --value stack-service-double.service")
    if _controller_extra_cas():
        assert f"SSL_CERT_FILE={BUNDLE}" in env
        assert f"REQUESTS_CA_BUNDLE={BUNDLE}" in env
    assert "HF_HUB_OFFLINE" not in env
    # The proxy is in the unit's root-only environment file, never in the unit itself.
    assert "proxy" not in env.lower()
    assert host.check_output("systemctl show -p EnvironmentFiles --value stack-service-double").startswith(SERVICE_ENV)
    service_env = host.file(SERVICE_ENV)
    assert (service_env.user, service_env.group, service_env.mode) == ("root", "root", 0o600)
    content = service_env.content_string
    assert f"https_proxy='{PROXY}'" in content and f"HTTPS_PROXY='{PROXY}'" in content
    no_proxy = re.search(r"^no_proxy='([^']*)'$", content, re.M)[1].split(",")
    for entry in ("localhost", "127.0.0.1", "::1", host.check_output("hostname")):
        assert entry in no_proxy


def test_office_proxy_environment_is_root_only(host):
    env = host.file(OFFICE_PROXY_ENV)
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert f"https_proxy='{PROXY}'" in env.content_string
    # A tool run through it reaches out through the proxy, password and all (urllib, like git and
    # pip, takes http_proxy from the environment).
    if not CONTROLLER_PROXY:
        fetch = "import urllib.request; urllib.request.urlopen('http://deb.debian.org/debian/', timeout=30).read()"
        seen = _through_the_double(host, f'{OFFICE_PROXY} python3 -c "{fetch}"')
        assert "GET http://deb.debian.org/debian/" in seen, seen
    # Anyone else is told, rather than silently running without the proxy.
    denied = host.run(f"runuser -u nobody -- {OFFICE_PROXY} true")
    assert denied.rc == 1 and "root only" in denied.stderr


def test_proxy_password_in_no_file_an_unprivileged_user_can_read(host):
    _needs_the_double()
    # Everything under these trees that `nobody` can read, systemctl show of the units included.
    found = host.run(
        "runuser -u nobody -- grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        f"{PROXY_PASSWORD} /etc /usr /var /opt /run /root /srv"
    )
    assert found.stdout == "", found.stdout
    show = host.run("runuser -u nobody -- systemctl show stack-service-double.service")
    assert show.rc == 0 and "EnvironmentFiles=" in show.stdout
    assert PROXY_PASSWORD not in show.stdout
    # ...while root's copies are where the tools read them.
    assert PROXY_PASSWORD in host.file(OFFICE_PROXY_ENV).content_string


def _converge(*args: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "converge.yml"), *args]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def test_proxy_password_never_in_verbose_diff_output(host):
    _needs_the_double()
    _first_host_only(host)
    # Remove every file that holds the password, so this run writes each of them again.
    host.check_output(f"rm -f {APT_AUTH} {OFFICE_PROXY_ENV} {SERVICE_ENV}")
    run = _converge("-vvv", "--diff", "--limit", FIRST_HOST)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for task in (
        "Give apt the proxy credentials",
        "Write the office proxy environment",
        "Write the service's environment file",
    ):
        assert re.search(rf"TASK \[.*{re.escape(task)}.*\n(.*\n)*?changed: \[{FIRST_HOST}\]", run.stdout), task
    leaks = [line for line in (run.stdout + run.stderr).splitlines() if PROXY_PASSWORD in line]
    assert not leaks, [line.replace(PROXY_PASSWORD, "<PASSWORD>")[:300] for line in leaks]
    assert host.file(APT_AUTH).mode == 0o600


# Modification times of the files a run would change first.
MANAGED_FILES = "ls -l --time-style=+%s.%N /etc/apt/apt.conf.d /etc/ai_stack/env /etc/environment /etc/pip.conf"


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        # A malformed proxy: named in the message, its password masked.
        ({"ai_stack_https_proxy": f"http://office:{PROXY_PASSWORD}@bad host:3128"}, "office:********@bad host"),
        # A password where every local user could read it.
        ({"office_network_login_environment": True}, "office_network_login_environment is true"),
        ({"ai_stack_pip_index_url": f"https://office:{PROXY_PASSWORD}@pypi.example/simple/"}, "/root/.netrc"),
    ],
)
def test_bad_proxy_settings_fail_before_any_change_without_the_password(host, extra_vars, message):
    _needs_the_double()
    _first_host_only(host)
    before = host.check_output(MANAGED_FILES)
    run = _converge("--limit", FIRST_HOST, extra_vars=extra_vars)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    assert PROXY_PASSWORD not in output
    assert host.check_output(MANAGED_FILES) == before


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
