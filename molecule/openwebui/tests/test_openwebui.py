"""The converged host: the real Open WebUI from PyPI, installed slim by the role, running sandboxed on
loopback with its admin, talking to the Ollama test double, configured from the inventory only.

The tests that run ansible-playbook again put the host back the way they found it, so the shared
check-mode test that follows still sees a converged host."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import time

import pytest

VERSION = "0.12.4"
ROOT = "/opt/ai_stack/openwebui"
VENV = f"{ROOT}/venvs/{VERSION}"
DATA_DIR = "/var/OpenWebUI/data"
CACHE_DIR = "/var/cache/open-webui"
UNIT = "/etc/systemd/system/open-webui.service"
ENV_FILE = "/etc/ai_stack/env/openwebui.env"
SECRET_FILE = "/etc/ai_stack/openwebui/webui_secret_key"
API = "http://127.0.0.1:8080"
ADMIN_EMAIL = "admin@office.example"
ADMIN_PASSWORD = "Owui-Adm1n-S3cret"
PROXY_PASSWORD = "Owui-proxy-S3cret"
# Measured 1.7 (see the role README); ollama's CPU unit scores 1.4.
MAX_EXPOSURE = 2.0
# Everything an unprivileged user could read a secret from.
READABLE_TREES = "/etc /opt /var /usr/local /run /tmp"

# Runs inside the container (python3 is there; curl is not): one HTTP call, prints status and body.
_CALL = (
    "import json,sys,urllib.request as u,urllib.error as e;"
    "a=json.loads(sys.argv[1]);"
    "h={'Content-Type':'application/json'};"
    "a['token'] and h.update(Authorization='Bearer '+a['token']);"
    "d=None if a['body'] is None else json.dumps(a['body']).encode();"
    "r=u.Request(a['url'],data=d,method=a['method'],headers=h);"
    "o=u.build_opener(u.ProxyHandler({}))\n"
    "try:\n r=o.open(r,timeout=120);s=r.status;b=r.read()\n"
    "except e.HTTPError as x:\n s=x.code;b=x.read()\n"
    "print(json.dumps({'status':s,'body':b.decode()}))"
)


def api(host, path: str, body: dict | None = None, token: str | None = None, method: str | None = None):
    """(status, JSON body or text) of a call to Open WebUI's API from inside the host."""
    arg = {"url": API + path, "body": body, "token": token, "method": method or ("POST" if body is not None else "GET")}
    result = json.loads(host.check_output("python3 -c %s %s", _CALL, json.dumps(arg)))
    try:
        return result["status"], json.loads(result["body"])
    except ValueError:
        return result["status"], result["body"]


def sign_in(host) -> str:
    status, body = api(host, "/api/v1/auths/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert status == 200, body
    return body["token"]


def run_playbook(name: str, *args: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess[str]:
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], name)
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def _flat(text: str) -> str:
    """The output with line wrapping undone (the yaml callback wraps long messages)."""
    return " ".join(text.split())


def _environment(host) -> dict[str, str]:
    # systemd quotes the assignments whose values have special characters (SEARXNG_QUERY_URL's <query>).
    line = host.check_output("systemctl show open-webui -p Environment --value")
    return dict(item.split("=", 1) for item in shlex.split(line))


def _main_pid(host) -> int:
    return int(host.check_output("systemctl show open-webui -p MainPID --value"))


def test_service_active_enabled_and_answering(host):
    service = host.service("open-webui")
    assert service.is_running
    assert service.is_enabled
    for path in ("/health", "/ready"):
        status, body = api(host, path)
        assert status == 200, (path, body)
    assert api(host, "/api/version")[1]["version"] == VERSION


def test_listens_on_loopback_only(host):
    listeners = [line.split()[3] for line in host.check_output("ss -H -tln").splitlines()]
    assert [address for address in listeners if address.endswith(":8080")] == ["127.0.0.1:8080"], listeners
    # Nothing on this host listens beyond loopback (the doubles and Open WebUI all stay on 127.0.0.1).
    assert [address for address in listeners if not address.startswith(("127.", "[::1]"))] == [], listeners
    # The listening socket is the openwebui user's (the sandbox hides the server's fds even from root).
    owner = host.check_output("awk '$2 ~ /:1F90$/ && $4 == \"0A\" {print $8}' /proc/net/tcp")
    assert owner == str(host.user("openwebui").uid)


def test_service_user_has_no_shell_and_no_sudo(host):
    user = host.user("openwebui")
    assert user.exists
    assert user.shell in ("/usr/sbin/nologin", "/bin/false")
    assert user.uid < 1000
    assert user.home == DATA_DIR
    assert "sudo" not in user.groups
    assert host.run("runuser -u openwebui -- sudo -n true").rc != 0
    assert host.check_output(f"stat -c %U /proc/{_main_pid(host)}") == "openwebui"


def test_slim_venv_without_torch_or_cuda(host):
    assert host.file(f"{ROOT}/current").linked_to == VENV
    record = json.loads(host.file(f"{VENV}/.selfhosted.ai_stack.json").content_string)
    assert record["version"] == VERSION
    assert record["installer"] == "uv"
    assert record["torch"] == "none"
    names = host.check_output(
        f"{VENV}/bin/python -c %s",
        "import importlib.metadata as m; print(' '.join(sorted(d.metadata['Name'].lower() for d in m.distributions())))",  # noqa: E501
    ).split()
    assert "open-webui" in names
    unwanted = [n for n in names if n in ("torch", "triton") or n.startswith(("nvidia-", "cuda-"))]
    assert unwanted == []
    assert host.check_output(f"{VENV}/bin/python -c 'import open_webui; print(open_webui.__file__)'")
    # Root's, read-only to the service: the server cannot change its own code.
    venv = host.file(VENV)
    assert (venv.user, venv.group) == ("root", "root")
    assert host.run(f"runuser -u openwebui -- touch {VENV}/lib/probe").rc != 0
    size = host.check_output(f"du -sxm {VENV}").split()[0]
    bytecode = host.check_output(
        f"find {VENV} -name '*.pyc' -printf '%s\\n' | awk '{{s+=$1}} END {{print int(s/1048576)}}'"
    )
    print(f"venv {VENV}: {size} MiB ({bytecode} MiB of it bytecode compiled at install), {len(names)} distributions")
    assert int(size) < 2500


def test_data_lives_in_data_dir_not_in_the_venv(host):
    data = host.file(DATA_DIR)
    assert (data.user, data.group, data.mode) == ("openwebui", "openwebui", 0o750)
    for name in ("webui.db", "vector_db", "uploads", "cache"):
        assert host.file(f"{DATA_DIR}/{name}").exists, name
    assert host.file(f"{DATA_DIR}/webui.db").user == "openwebui"
    # Nothing written into the package (pip installs without DATA_DIR lose everything on reinstall).
    assert host.run(f"find {VENV} -name 'webui.db*' -o -name '.webui_secret_key'").stdout == ""
    assert host.run("find / -xdev -name .webui_secret_key").stdout == ""
    # STATIC_DIR is rewritten on every start: in the cache directory, not in the venv.
    assert host.file(f"{CACHE_DIR}/static/favicon.png").exists
    assert host.file(CACHE_DIR).user == "openwebui"


def test_unit_environment_is_the_whole_configuration(host):
    env = _environment(host)
    expected = {
        "ENV": "prod",
        "DATA_DIR": DATA_DIR,
        "STATIC_DIR": f"{CACHE_DIR}/static",
        "ENABLE_PERSISTENT_CONFIG": "false",
        "ENABLE_SIGNUP": "false",
        "DEFAULT_USER_ROLE": "pending",
        "WEBUI_URL": "https://ai.office.example",
        "CORS_ALLOW_ORIGIN": "https://ai.office.example",
        "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
        "ENABLE_OPENAI_API": "false",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "RAG_EMBEDDING_ENGINE": "ollama",
        "RAG_EMBEDDING_MODEL": "snowflake-arctic-embed2",
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "true",
        "ANONYMIZED_TELEMETRY": "false",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "UVICORN_WORKERS": "1",
        "ENABLE_WEB_SEARCH": "true",
        "WEB_SEARCH_ENGINE": "searxng",
        "SEARXNG_QUERY_URL": "http://127.0.0.1:8888/search?q=<query>",
    }
    assert {key: env.get(key) for key in expected} == expected
    # Off unless asked for; no secrets, no proxy in the unit.
    assert "ENABLE_IMAGE_GENERATION" not in env
    assert "OFFLINE_MODE" not in env
    assert not {"WEBUI_SECRET_KEY", "https_proxy", "HTTPS_PROXY", "http_proxy"} & set(env)
    header = host.file(UNIT).content_string.splitlines()[:3]
    assert header[0] == "#" and "Ansible managed" in header[1], header


def test_admin_signs_in_and_signup_stays_closed(host):
    token = sign_in(host)
    status, me = api(host, "/api/v1/auths/", token=token)
    assert status == 200 and me["role"] == "admin" and me["email"] == ADMIN_EMAIL
    status, config = api(host, "/api/v1/auths/admin/config", token=token)
    assert status == 200
    assert config["ENABLE_SIGNUP"] is False
    status, body = api(
        host, "/api/v1/auths/signup", {"name": "Eve", "email": "eve@example.org", "password": "Stranger-123"}
    )
    assert status == 403, body
    status, users = api(host, "/api/v1/users/", token=token)
    assert status == 200, users
    emails = [user["email"] for user in (users["users"] if isinstance(users, dict) else users)]
    assert emails == [ADMIN_EMAIL]


def test_chat_completion_reaches_the_ollama_double(host):
    token = sign_in(host)
    status, models = api(host, "/api/models", token=token)
    assert status == 200
    assert "tinyllama:latest" in [model["id"] for model in models["data"]]
    question = f"ping {time.time_ns()}"
    started = time.monotonic()
    status, answer = api(
        host,
        "/api/chat/completions",
        {"model": "tinyllama:latest", "messages": [{"role": "user", "content": question}], "stream": False},
        token=token,
    )
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"] == f"ollama-chat-double (tinyllama:latest): {question}"
    journal = host.check_output("journalctl -u ollama-double --no-pager -o cat")
    assert 'POST    "/api/chat"' in journal
    print(f"chat completion through Open WebUI: {time.monotonic() - started:.2f} s")


def test_secrets_only_in_root_only_files(host):
    secret = host.check_output(f"cat {SECRET_FILE}").strip()
    assert len(secret) >= 32
    for path in (SECRET_FILE, ENV_FILE):
        info = host.file(path)
        assert (info.user, info.group, info.mode) == ("root", "root", 0o600), path
    assert host.file(SECRET_FILE).mode == 0o600 and host.file("/etc/ai_stack/openwebui").mode == 0o700
    assert f"WEBUI_SECRET_KEY='{secret}'" in host.file(ENV_FILE).content_string
    # The server got it from the environment file.
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{_main_pid(host)}/environ").splitlines()
    assert f"WEBUI_SECRET_KEY={secret}" in environ
    show = host.run("runuser -u nobody -- systemctl show open-webui")
    assert show.rc == 0 and "ExecStart=" in show.stdout
    for value in (secret, PROXY_PASSWORD, ADMIN_PASSWORD):
        assert value not in show.stdout
        assert value not in host.file(UNIT).content_string
    readable = host.run(
        f"runuser -u nobody -- grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        f"-e {secret} -e {PROXY_PASSWORD} -e {ADMIN_PASSWORD} {READABLE_TREES}"
    )
    assert readable.stdout == "", readable.stdout


def test_uv_went_through_the_office_proxy(host):
    if "127.0.0.1:3128" not in host.file("/etc/ai_stack/env/office-proxy.env").content_string:
        pytest.skip("the controller's own proxy is the office proxy here")
    log = host.file("/var/log/forward-proxy/requests.log").content_string
    assert "CONNECT pypi.org:443" in log
    assert "CONNECT files.pythonhosted.org:443" in log


def test_sandbox_exposure_score(host):
    out = host.check_output("systemd-analyze security open-webui --no-pager")
    score = float(re.search(r"Overall exposure level for open-webui.service: ([0-9.]+)", out).group(1))
    print(f"systemd-analyze security open-webui: {score}")
    assert score <= MAX_EXPOSURE, out


def _start_durations(host) -> list[float]:
    """Seconds from "Starting" to "Started" of every start in the journal (the unit is active when ready)."""
    pattern = "(Starting|Started) (open-webui.service|Open WebUI)"
    lines = host.check_output(
        f"journalctl -u open-webui --no-pager -o short-monotonic | grep -E '{pattern}'"
    ).splitlines()
    stamps = [(float(re.search(r"\[\s*([0-9.]+)\]", line).group(1)), "Starting" in line) for line in lines]
    return [end - start for (start, starting), (end, ended) in itertools.pairwise(stamps) if starting and not ended]


def test_start_times_and_memory(host):
    """Report how long the first start took (it migrates the database) and the server's RSS."""
    durations = _start_durations(host)
    assert durations
    rss_kib = int(re.search(r"VmRSS:\s+(\d+)", host.file(f"/proc/{_main_pid(host)}/status").content_string).group(1))
    print(f"open-webui first start (database migrations) to /ready: {durations[0]:.0f} s")
    print(f"open-webui RSS: {rss_kib // 1024} MiB")
    assert rss_kib < 1024 * 1024


def test_changed_setting_reaches_the_running_server_and_sessions_survive(host):
    """ENABLE_PERSISTENT_CONFIG=false: a changed variable wins over the database after a re-run; the
    restart keeps the session (stable WEBUI_SECRET_KEY). Then back, with -vvv --diff and the environment
    file rewritten: no secret in the output."""
    token = sign_in(host)
    assert api(host, "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "pending"
    pid = _main_pid(host)

    started = time.monotonic()
    python = host.check_output(f"readlink -f {ROOT}/current/bin/python")
    changed = run_playbook(
        "openwebui_only.yml",
        extra_vars={"openwebui_python_interpreter": python, "openwebui_default_user_role": "user"},
    )
    assert changed.returncode == 0, changed.stdout[-5000:] + changed.stderr[-3000:]
    print(f"re-run with a changed setting (restart included): {time.monotonic() - started:.0f} s")
    assert _main_pid(host) != pid, "the server was not restarted"
    print(f"open-webui restart to /ready: {_start_durations(host)[-1]:.0f} s")
    status, config = api(host, "/api/v1/auths/admin/config", token=token)
    assert status == 200, "the session did not survive the restart"
    assert config["DEFAULT_USER_ROLE"] == "user"

    secret = host.check_output(f"cat {SECRET_FILE}").strip()
    host.check_output(f"rm {ENV_FILE}")
    back = run_playbook("openwebui_only.yml", "-vvv", "--diff", extra_vars={"openwebui_python_interpreter": python})
    assert back.returncode == 0, back.stdout[-5000:] + back.stderr[-3000:]
    assert host.file(ENV_FILE).contains("WEBUI_SECRET_KEY=")
    assert host.check_output(f"cat {SECRET_FILE}").strip() == secret, "the secret key changed"
    assert api(host, "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "pending"
    output = back.stdout + back.stderr
    for value in (secret, PROXY_PASSWORD, ADMIN_PASSWORD):
        assert value not in output


def test_fresh_instance_without_an_admin_is_refused(host):
    """Whoever signs up first on a fresh instance becomes its admin: without openwebui_admin_* the role
    stops before it changes anything."""
    python = host.check_output(f"readlink -f {ROOT}/current/bin/python")
    run = run_playbook(
        "openwebui_only.yml",
        extra_vars={
            "openwebui_python_interpreter": python,
            "openwebui_admin_email": "",
            "openwebui_admin_password": "",
            "openwebui_data_dir": "/var/OpenWebUI/fresh",
        },
    )
    assert run.returncode != 0
    assert "the first person to reach Open WebUI" in _flat(run.stdout + run.stderr)
    assert not host.file("/var/OpenWebUI/fresh").exists
    assert _environment(host)["DATA_DIR"] == DATA_DIR
