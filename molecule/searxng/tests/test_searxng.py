"""The converged hosts: SearXNG installed by the role the upstream way from the TEST DOUBLE of its
repository (tests/doubles/searxng_upstream; or the real one, see molecule.yml), sandboxed on
loopback, searching through the office proxy double.

ai-stack-searxng cloned and installed through the office proxy, limiter off (the defaults);
ai-stack-searxng-offline got a git bundle and a wheelhouse from the controller and runs the limiter
with its key-value server. The tests that run ansible-playbook again put the host back the way they
found it, so the shared check-mode test that follows still sees converged hosts."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from service_checks import (
    assert_listens_on_loopback_only,
    assert_secrets_hidden_from_other_users,
    assert_system_user_without_sudo,
)

ONLINE = "ai-stack-searxng"
OFFLINE = "ai-stack-searxng-offline"
SRC = "/usr/local/searxng/searxng-src"
VENV = "/usr/local/searxng/searx-pyenv"
MARKER = f"{VENV}/.selfhosted.ai_stack.json"
SETTINGS = "/etc/searxng/settings.yml"
LIMITER_TOML = "/etc/searxng/limiter.toml"
UNIT = "/etc/systemd/system/searxng.service"
ENV_FILE = "/etc/ai_stack/env/searxng.env"
SECRET_FILE = "/etc/ai_stack/searxng/secret_key"
PUBLIC_REPOSITORY = "https://github.com/searxng/searxng"
PROXY_PASSWORD = "Sxng-proxy-S3cret"
PROXY_LOG = "/var/log/forward-proxy/requests.log"
UPSTREAM_LOG = "/var/log/searxng-upstream-double/requests.log"
MAX_EXPOSURE = 2.0
# Everything an unprivileged user could read a secret from.
READABLE_TREES = "/etc /opt /var /usr/local /run /tmp"
UPSTREAM_DIR = (
    Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    / ".cache/searxng-upstream"
    / ("real" if os.environ.get("SEARXNG_REAL_UPSTREAM") else "double")
)
PINNED = (UPSTREAM_DIR / "commit").read_text().strip()
TIP = (UPSTREAM_DIR / "tip").read_text().strip()

# Runs inside the container (its python3; no curl there): one GET on loopback, prints status,
# Content-Type and body as JSON. http.client, not urllib: urllib always sends "Connection: close",
# which upstream's bot detection takes for a bot when the limiter is on.
_CALL = (
    "import gzip,http.client as c,json,sys;"
    "a=json.loads(sys.argv[1]);"
    "k=c.HTTPConnection('127.0.0.1',8888,timeout=60);"
    "k.request('GET',a['path'],headers=a['headers']);"
    "r=k.getresponse();b=r.read();"
    "b=gzip.decompress(b) if r.getheader('Content-Encoding')=='gzip' else b;"
    "print(json.dumps({'status':r.status,'type':r.getheader('Content-Type',''),'body':b.decode()}))"
)
# What a browser sends, which upstream's bot detection wants to see when the limiter is on.
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.5",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
}


def get(host, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, Content-Type, body) of a GET to SearXNG from inside the host."""
    arg = {"path": path, "headers": {**BROWSER, **(headers or {})}}
    result = json.loads(host.check_output("python3 -c %s %s", _CALL, json.dumps(arg)))
    return result["status"], result["type"], result["body"]


def get_json(host, path: str, headers: dict[str, str] | None = None):
    status, _type, body = get(host, path, headers)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


def name(host) -> str:
    return host.backend.get_hostname()


def proxy_double_in_use(host) -> bool:
    return "127.0.0.1:3128" in host.file("/etc/ai_stack/env/office-proxy.env").content_string


def is_double(host) -> bool:
    return get_json(host, "/config").get("test_double") is True


def main_pid(host) -> int:
    return int(host.check_output("systemctl show searxng -p MainPID --value"))


def unique(word: str) -> str:
    return f"{word}{time.time_ns()}"


def run_role(
    host, *args: str, extra_vars: dict | None = None, playbook: str = "searxng_only.yml"
) -> subprocess.CompletedProcess[str]:
    """searxng_only.yml (or another playbook of the scenario) on this host alone, on the interpreter
    its venv was built on."""
    interpreter = json.loads(host.file(MARKER).content_string)["interpreter"]
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], playbook)
    command = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        playbook,
        "--limit",
        name(host),
        "-e",
        json.dumps({"searxng_python_interpreter": interpreter, **(extra_vars or {})}),
        *args,
    ]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def _flat(text: str) -> str:
    """The output with line wrapping undone (the yaml callback wraps long messages)."""
    return " ".join(text.split())


def _recap_changed(output: str, host) -> int:
    match = re.search(rf"^{re.escape(name(host))}\s*:\s*ok=\d+\s+changed=(\d+)", output, re.M)
    assert match, output[-3000:]
    return int(match.group(1))


def test_service_active_enabled_and_healthy(host):
    service = host.service("searxng")
    assert service.is_running
    assert service.is_enabled
    status, content_type, body = get(host, "/healthz")
    assert (status, body) == (200, "OK")
    assert content_type.startswith("text/plain")


def test_json_search_answers_and_a_format_not_listed_is_forbidden(host):
    term = unique("jsonprobe")
    status, content_type, body = get(host, f"/search?q={term}&format=json")
    assert status == 200, body[:500]
    assert content_type.startswith("application/json")
    answer = json.loads(body)
    assert [r["engine"] for r in answer["results"] if term in r["title"]] == ["office index"], answer
    # Not in search.formats (upstream's csv): 403, Open WebUI's failure mode without json.
    assert get(host, f"/search?q={term}&format=csv")[0] == 403
    # No query: nothing is searched, json is allowed (what the role probes).
    assert get(host, "/search?format=json")[0] == 400


def test_searches_go_out_through_the_office_proxy_with_its_password(host):
    if not proxy_double_in_use(host):
        pytest.skip("the controller's own proxy is the office proxy here")
    term = unique("proxyprobe")
    get_json(host, f"/search?q={term}&format=json")
    requests = [line for line in host.file(PROXY_LOG).content_string.splitlines() if term in line]
    # Authenticated (a refused request would be logged as "407 GET ...") and through the proxy only.
    assert requests == [f"GET http://engine.searxng-double.test:8890/search?q={term}"], requests
    assert f"GET /search?q={term}" in host.file(UPSTREAM_LOG).content_string


def test_source_and_packages_came_the_configured_way(host):
    if not proxy_double_in_use(host):
        pytest.skip("the controller's own proxy is the office proxy here")
    log = host.file(PROXY_LOG).content_string
    wheelhouses = host.run("find /var/cache/ai_stack/wheelhouse/searxng -name 'granian-*.whl'").stdout
    if name(host) == ONLINE:
        # git clone over HTTP and pip from PyPI, both through the office proxy.
        assert "GET http://git.searxng-double.test:8890/git/searxng.git/info/refs?service=git-upload-pack" in log
        assert "CONNECT files.pythonhosted.org:443" in log
        assert wheelhouses == ""
    else:
        # The bundle and the wheelhouse from the controller: neither git nor pip went out.
        assert "git.searxng-double.test" not in log
        assert "pythonhosted.org" not in log and "pypi.org" not in log
        assert host.file("/var/cache/ai_stack/searxng/searxng.bundle").exists
        assert wheelhouses.strip()


def test_runs_the_pinned_commit_from_its_checkout(host):
    expected = PINNED if name(host) == ONLINE else TIP
    git = f"git -C {SRC}"
    assert host.check_output(f"{git} rev-parse HEAD") == expected
    if name(host) == ONLINE and is_double(host):
        # The double's branch has a newer commit: the role checked out the pin, not the tip.
        assert expected != TIP
    assert host.check_output(f"{git} rev-parse --abbrev-ref HEAD") == "master"
    assert host.check_output(f"{git} remote get-url origin") == PUBLIC_REPOSITORY
    assert host.check_output(f"{git} status --porcelain --untracked-files=no") == ""
    config = get_json(host, "/config")
    print(f"{name(host)}: SearXNG reports version {config['version']} from {config['brand']['GIT_URL']}")
    assert re.search(rf"\+{expected[:7]}", config["version"]), config["version"]
    assert config["brand"]["GIT_URL"] == PUBLIC_REPOSITORY
    assert config["brand"]["GIT_BRANCH"] == "master"
    # (/proc/<pid>/cwd needs CAP_SYS_PTRACE, which the container's root lacks; the version above
    # proves the working directory.)
    assert host.check_output("systemctl show searxng -p WorkingDirectory --value") == SRC
    # Editable: the venv imports the package from the checkout.
    imported = host.check_output(f"{VENV}/bin/python -c 'import searx; print(searx.__file__)'")
    assert imported == f"{SRC}/searx/__init__.py"
    # Root's, read-only to the service: it cannot change its own code.
    for path in (SRC, VENV):
        assert (host.file(path).user, host.file(path).group) == ("root", "root")
        assert host.run(f"runuser -u searxng -- touch {path}/probe").rc != 0
    record = json.loads(host.file(MARKER).content_string)
    assert record["commit"] == expected


def test_listens_on_loopback_only(host):
    assert_listens_on_loopback_only(host, 8888, "searxng")


def test_service_user_has_no_shell_and_no_sudo(host):
    assert_system_user_without_sudo(host, "searxng")
    assert host.check_output(f"stat -c %U /proc/{main_pid(host)}") == "searxng"


def test_secret_key_generated_on_the_host_and_kept_root_only(host):
    secret = host.check_output(f"cat {SECRET_FILE}").strip()
    assert len(secret) >= 32
    assert secret != "ultrasecretkey"
    assert (host.file(SECRET_FILE).user, host.file(SECRET_FILE).mode) == ("root", 0o600)
    assert host.file("/etc/ai_stack/searxng").mode == 0o700
    env_file = host.file(ENV_FILE)
    assert (env_file.user, env_file.group, env_file.mode) == ("root", "root", 0o600)
    assert f"SEARXNG_SECRET='{secret}'" in env_file.content_string
    # Handed over by systemd from the environment file. (granian retitles its processes with
    # setproctitle, which overwrites /proc/<pid>/environ.) Without it SearXNG would have exited at
    # start: settings.yml has no secret_key, so upstream's placeholder would apply.
    assert host.check_output("systemctl show searxng -p EnvironmentFiles --value").startswith(ENV_FILE)
    assert host.service("searxng").is_running
    # The office proxy's password is in settings.yml (outgoing.proxies), which is then a secret file.
    settings = host.file(SETTINGS)
    assert (settings.user, settings.group, settings.mode) == ("root", "searxng", 0o640)
    assert PROXY_PASSWORD in settings.content_string
    assert secret not in settings.content_string
    assert_secrets_hidden_from_other_users(host, "searxng", (secret, PROXY_PASSWORD), READABLE_TREES)


def _settings(host) -> dict:
    # The venv has PyYAML; the host's python3 has not.
    script = "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    return json.loads(host.check_output(f"{VENV}/bin/python -c %s {SETTINGS}", script))


def test_settings_are_the_role_s_merged_with_the_override(host):
    settings = _settings(host)
    # The role's own settings...
    assert settings["server"]["bind_address"] == "127.0.0.1"
    assert settings["server"]["port"] == 8888
    assert settings["server"]["public_instance"] is False
    assert settings["search"]["formats"] == ["html", "json"]
    assert "secret_key" not in settings["server"]
    assert settings["outgoing"]["proxies"] == {"all://": f"http://office:{PROXY_PASSWORD}@127.0.0.1:3128"}
    # ...with searxng_settings merged in (a dict replacing use_default_settings: true, new keys, a list).
    assert settings["use_default_settings"] == {"engines": {"keep_only": ["wikipedia"]}}
    assert settings["general"] == {"instance_name": "Office search"}
    assert [engine["name"] for engine in settings["engines"]] == ["office index"]
    # ...and SearXNG merged that over its own defaults.
    config = get_json(host, "/config")
    assert config["instance_name"] == "Office search"
    assert [engine["name"] for engine in config["engines"]] == ["wikipedia", "office index"]
    header = host.file(SETTINGS).content_string.splitlines()[:3]
    assert header[0] == "#" and "Ansible managed" in header[1], header


def test_limiter_and_its_key_value_server(host):
    settings = _settings(host)
    toml = host.file(LIMITER_TOML).content_string
    assert 'trusted_proxies = ["127.0.0.0/8", "::1"]' in toml
    assert 'pass_ip = ["127.0.0.1", "::1"]' in toml
    config = get_json(host, "/config")
    if name(host) == ONLINE:
        assert settings["server"]["limiter"] is False and settings["valkey"]["url"] is False
        assert config["limiter"]["enabled"] is False
        assert not host.package("redis-server").is_installed
        return
    assert settings["server"]["limiter"] is True
    assert settings["valkey"]["url"] == "valkey://127.0.0.1:6379/0"
    assert host.service("redis-server").is_running and host.service("redis-server").is_enabled
    assert "redis-server.service" in host.check_output("systemctl show searxng -p After --value")
    # Upstream's limiter.is_installed(): on, and connected to its key-value server.
    assert config["limiter"]["enabled"] is True
    # A browser behind nginx (a trusted proxy on loopback) is counted under its forwarded address.
    host.check_output("redis-cli FLUSHDB")
    term = unique("limiterprobe")
    get_json(host, f"/search?q={term}&format=json", {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"})
    keys = host.check_output("redis-cli --scan --pattern 'SearXNG_*'").split()
    print(f"{name(host)}: keys SearXNG wrote to redis-server: {len(keys)}")
    assert keys


def test_sandbox_exposure_score(host):
    out = host.check_output("systemd-analyze security searxng --no-pager")
    score = float(re.search(r"Overall exposure level for searxng.service: ([0-9.]+)", out).group(1))
    print(f"{name(host)}: systemd-analyze security searxng: {score}")
    assert score <= MAX_EXPOSURE, out
    for path in (UNIT, LIMITER_TOML):
        header = host.file(path).content_string.splitlines()[:3]
        assert header[0] == "#" and "Ansible managed" in header[1], (path, header)


def test_sizes_and_memory(host):
    """Report the checkout, the venv and the service's memory (the README's measurements)."""
    source = host.check_output(f"du -sxm {SRC}").split()[0]
    venv = host.check_output(f"du -sxm {VENV}").split()[0]
    memory = int(host.check_output("systemctl show searxng -p MemoryCurrent --value"))
    print(f"{name(host)}: checkout {source} MiB, venv {venv} MiB, searxng.service memory {memory // 1048576} MiB")
    assert int(venv) < 500


def test_the_search_url_reaches_a_run_limited_to_openwebui(host):
    if name(host) != ONLINE:
        pytest.skip("one host is enough")
    run = run_role(host, "--tags", "openwebui", playbook="query_url.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "openwebui_searxng_query_url=http://127.0.0.1:8888/search?q=<query>" in run.stdout, run.stdout[-3000:]
    assert _recap_changed(run.stdout, host) == 0


BAD_INPUT = [
    pytest.param(
        {"searxng_bind_port": 99999}, "searxng_bind_port must be a port number from 1 to 65535 (got 99999)", id="port"
    ),
    pytest.param(
        {"searxng_secret_key": "ultrasecretkey"},
        'searxng_secret_key is "ultrasecretkey", the placeholder of upstream, with which SearXNG refuses to start',
        id="placeholder-secret",
    ),
    pytest.param({"searxng_formats": ["html"]}, "search.formats must list json", id="no-json"),
]


@pytest.mark.parametrize(("extra_vars", "message"), BAD_INPUT)
def test_bad_input_fails_in_preflight_and_changes_nothing(host, extra_vars, message):
    if name(host) != ONLINE:
        pytest.skip("preflight is the same on every host")
    before = host.check_output(f"sha256sum {SETTINGS} {UNIT} {ENV_FILE}")
    run = run_role(host, extra_vars=extra_vars)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert message in _flat(output), _flat(output)[-3000:]
    assert _recap_changed(run.stdout, host) == 0
    assert host.check_output(f"sha256sum {SETTINGS} {UNIT} {ENV_FILE}") == before


def test_lost_environment_file_comes_back_with_the_same_secret_and_nothing_secret_is_printed(host):
    """The secret key is generated once: a re-run that rewrites the environment file (with -vvv and
    --diff) keeps it, restarts SearXNG with it, and prints neither it nor the proxy password."""
    if name(host) != ONLINE:
        pytest.skip("one host is enough for a full extra run")
    secret = host.check_output(f"cat {SECRET_FILE}").strip()
    pid = main_pid(host)
    host.check_output(f"rm {ENV_FILE}")
    run = run_role(host, "-vvv", "--diff")
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]
    assert host.check_output(f"cat {SECRET_FILE}").strip() == secret, "the secret key changed"
    assert f"SEARXNG_SECRET='{secret}'" in host.file(ENV_FILE).content_string
    assert main_pid(host) != pid, "SearXNG was not restarted with the rewritten environment file"
    assert get(host, "/healthz")[0] == 200
    output = run.stdout + run.stderr
    for value in (secret, PROXY_PASSWORD, shlex.quote(PROXY_PASSWORD)):
        assert value not in output
