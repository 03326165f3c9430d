"""Open WebUI on the stack host: the real Open WebUI from PyPI, installed slim by the role, running
sandboxed on loopback with its admin, configured from the inventory only; upgraded by the site playbook
from the 0.12.0 that prepare.yml installed and gave a user, chats and an upload; its backups, restore
and rollback. test_stack.py checks the service as people use it (browser, chat, search, sandbox).

The tests that run ansible-playbook again put the host back the way they found it (one of them
`--tags openwebui` runs of the site playbook, as an office upgrades Open WebUI), so the shared check-mode
test and test_stack.py still see a converged host."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import time

import playbook_runs
import pytest
from service_checks import assert_secrets_hidden_from_other_users

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
ADMIN_PASSWORD = "Stack-Adm1n-S3cret"
# The office proxy double's (tests/stack/group_vars/all.yml), where the controller has no proxy.
PROXY_PASSWORD = "Sxng-proxy-S3cret"
# prepare.yml installs this release with the role, adds the user, two chats and an upload, and
# counts the rows; converge upgrades to VERSION.
OLD_VERSION = "0.12.0"
OLD_VENV = f"{ROOT}/venvs/{OLD_VERSION}"
USER_EMAIL = "carol@office.example"
USER_PASSWORD = "Stack-Us3r-Carol"
ROWS_BEFORE_UPGRADE = "/root/openwebui-rows-before-upgrade.json"
ROW_TABLES = ("user", "auth", "chat", "file")
BACKUP_DIR = "/var/backups/open-webui"
BACKUP_SCRIPT = "/usr/local/libexec/ai_stack/openwebui_backup.py"
# The keys the roles generate once and keep (never regenerated), and the files that carry them or
# another secret (the proxy's and basic auth's passwords) into a service, which a run rewrites.
SECRET_KEY_FILES = (SECRET_FILE, "/etc/ai_stack/searxng/secret_key")
SECRET_BEARING_FILES = (
    ENV_FILE,
    "/etc/ai_stack/env/searxng.env",
    "/etc/ai_stack/env/office-proxy.env",
    "/etc/nginx/ai_stack.htpasswd",
)
# nginx's basic auth in front of SearXNG (tests/stack/group_vars/all.yml).
SEARCH_PASSWORD = "Stack-Search-S3cret"
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
    """Run a playbook of the collection by its name (``selfhosted.ai_stack.x``) with its plain output."""
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], name, *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def run_openwebui(*args: str, extra_vars: dict | None = None) -> subprocess.CompletedProcess[str]:
    """``selfhosted.ai_stack.site --tags openwebui``: how an office changes or upgrades Open WebUI alone."""
    return run_playbook("selfhosted.ai_stack.site", "--tags", "openwebui", *args, extra_vars=extra_vars)


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
    # The admin, and the user the admin added before the upgrade (prepare.yml); no stranger.
    assert sorted(emails) == sorted([ADMIN_EMAIL, USER_EMAIL])


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
    assert_secrets_hidden_from_other_users(host, "open-webui", (secret, PROXY_PASSWORD, ADMIN_PASSWORD), READABLE_TREES)


def test_uv_went_through_the_office_proxy(host):
    if "127.0.0.1:3128" not in host.file("/etc/ai_stack/env/office-proxy.env").content_string:
        pytest.skip("the controller's own proxy is the office proxy here")
    log = host.file("/var/log/forward-proxy/requests.log").content_string
    assert "CONNECT pypi.org:443" in log
    assert "CONNECT files.pythonhosted.org:443" in log


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


# The task files a `--tags openwebui` run may run outside Open WebUI's play (and python311's: it is Open
# WebUI's interpreter): the plays' tables of contents, the collection-wide settings, the reboot guard, GPU
# detection, tasks tagged always.
READ_ONLY_TASK_FILES = re.compile(
    r"playbooks/site\.yml|roles/[a-z_0-9]+/tasks/main\.yml"
    r"|roles/_common/tasks/(settings|reboot_guard)\.yml|roles/nvidia_cuda/tasks/detect\.yml"
)


def test_changed_setting_reaches_the_running_server_and_sessions_survive(host):
    """ENABLE_PERSISTENT_CONFIG=false: a changed variable wins over the database after a `--tags openwebui`
    re-run, which runs no task of another service's role and changes nothing outside Open WebUI; the
    restart keeps the session (stable WEBUI_SECRET_KEY). Then back with a whole site run at -vvv --diff
    that rewrites every file holding a secret: no secret of any service in its output."""
    token = sign_in(host)
    assert api(host, "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "pending"
    pid = _main_pid(host)

    started = time.monotonic()
    rc, report = playbook_runs.run_playbook(
        "selfhosted.ai_stack.site", extra_vars={"openwebui_default_user_role": "user"}, args=("--tags", "openwebui")
    )
    assert rc == 0, report["stats"]
    print(f"re-run with a changed setting (restart included): {time.monotonic() - started:.0f} s")
    ran = playbook_runs.task_files_that_ran(report)
    (openwebui_play,) = (name for name in ran if name.startswith("Open WebUI"))
    assert "roles/openwebui/tasks/install.yml" in ran[openwebui_play]
    others = {
        play: sorted(path for path in paths if not READ_ONLY_TASK_FILES.fullmatch(path))
        for play, paths in ran.items()
        if not play.startswith(("Open WebUI", "CPython 3.11"))
    }
    assert not any(others.values()), others
    assert playbook_runs.plays_that_changed(report) == {openwebui_play}
    assert _main_pid(host) != pid, "the server was not restarted"
    print(f"open-webui restart to /ready: {_start_durations(host)[-1]:.0f} s")
    status, config = api(host, "/api/v1/auths/admin/config", token=token)
    assert status == 200, "the session did not survive the restart"
    assert config["DEFAULT_USER_ROLE"] == "user"

    secrets = {path: host.check_output(f"cat {path}").strip() for path in SECRET_KEY_FILES}
    for path in SECRET_BEARING_FILES:
        host.check_output(f"rm -f {path}")
    started = time.monotonic()
    back = run_playbook("selfhosted.ai_stack.site", "-vvv", "--diff")
    assert back.returncode == 0, back.stdout[-5000:] + back.stderr[-3000:]
    print(f"the whole site at -vvv --diff, rewriting every file with a secret: {time.monotonic() - started:.0f} s")
    assert all(host.file(path).exists for path in SECRET_BEARING_FILES)
    assert host.file(ENV_FILE).contains("WEBUI_SECRET_KEY=")
    assert {path: host.check_output(f"cat {path}").strip() for path in SECRET_KEY_FILES} == secrets, "a key changed"
    assert api(host, "/api/v1/auths/admin/config", token=token)[1]["DEFAULT_USER_ROLE"] == "pending"
    output = back.stdout + back.stderr
    for value in (*secrets.values(), PROXY_PASSWORD, ADMIN_PASSWORD, SEARCH_PASSWORD):
        assert value not in output


def test_fresh_instance_without_an_admin_is_refused(host):
    """Whoever signs up first on a fresh instance becomes its admin: without openwebui_admin_* the role
    stops before it changes anything."""
    run = run_openwebui(
        extra_vars={
            "openwebui_admin_email": "",
            "openwebui_admin_password": "",
            "openwebui_data_dir": "/var/OpenWebUI/fresh",
        },
    )
    assert run.returncode != 0
    assert "the first person to reach Open WebUI" in _flat(run.stdout + run.stderr)
    assert not host.file("/var/OpenWebUI/fresh").exists
    assert _environment(host)["DATA_DIR"] == DATA_DIR


# Backups, restore, upgrade and rollback. prepare.yml installed OLD_VERSION with the role and gave it
# data; converge upgraded it. The tests below leave the host as converged: OLD_VERSION's venv kept,
# VERSION running on the same rows.

# Runs inside the container: argv[1] a SQLite URI, argv[2] SQL, prints the rows as JSON.
_QUERY = (
    "import json,sqlite3,sys;"
    "db=sqlite3.connect(sys.argv[1],uri=True);"
    "print(json.dumps(db.execute(sys.argv[2]).fetchall()))"
)


def _query(host, database: str, sql: str, live: bool = True):
    """Rows of ``sql`` on a database: the server's read-only as its user, a backup's immutable as root."""
    if live:
        uri = f"file:{database}?mode=ro"
        return json.loads(host.check_output("runuser -u openwebui -- python3 -c %s %s %s", _QUERY, uri, sql))
    return json.loads(host.check_output("python3 -c %s %s %s", _QUERY, f"file:{database}?mode=ro&immutable=1", sql))


def _rows(host, database: str = f"{DATA_DIR}/webui.db", live: bool = True) -> dict[str, int]:
    counts = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM \"{table}\"" for table in ROW_TABLES)
    return dict(_query(host, database, counts, live))


def _backups(host) -> list[dict]:
    out = host.check_output(
        f"runuser -u openwebui -- {ROOT}/current/bin/python {BACKUP_SCRIPT} list --backup-dir {BACKUP_DIR} --json"
    )
    return json.loads(out)


def _manifest(host, name: str) -> dict:
    return json.loads(host.file(f"{BACKUP_DIR}/{name}/backup.json").content_string)


def _sign_in_as(host, email: str, password: str) -> str:
    status, body = api(host, "/api/v1/auths/signin", {"email": email, "password": password})
    assert status == 200, body
    return body["token"]


def test_the_upgrade_kept_every_user_chat_and_upload(host):
    before = json.loads(host.file(ROWS_BEFORE_UPGRADE).content_string)
    assert before["user"] == 2 and before["chat"] == 2 and before["file"] == 1, before
    assert _rows(host) == before
    # Taken by the role with 0.12.0 stopped, just before the switch: every row, and 0.12.0's schema.
    upgrades = [entry for entry in _backups(host) if entry["kind"] == "upgrade"]
    assert upgrades, _backups(host)
    manifest = _manifest(host, upgrades[0]["name"])
    assert (manifest["version"], manifest["note"]) == (OLD_VERSION, f"{OLD_VERSION} to {VERSION}")
    assert manifest["integrity_check"] == "ok"
    saved = f"{BACKUP_DIR}/{upgrades[0]['name']}/webui.db"
    assert _rows(host, saved, live=False) == before
    revision = "SELECT version_num FROM alembic_version"
    assert _query(host, f"{DATA_DIR}/webui.db", revision) != _query(host, saved, revision, live=False), (
        "the upgrade ran no migration"
    )
    token = _sign_in_as(host, USER_EMAIL, USER_PASSWORD)
    status, chats = api(host, "/api/v1/chats/", token=token)
    assert status == 200, chats
    assert sorted(chat["title"] for chat in chats) == ["Before the upgrade", "Budget 2027"]
    status, files = api(host, "/api/v1/files/?content=false", token=token)
    assert status == 200, files
    assert [item["filename"] for item in files["items"]] == ["minutes.txt"]
    assert host.run(f"find {DATA_DIR}/uploads -name '*minutes.txt'").stdout.strip()
    # The venv a rollback needs is still there; the server runs the new one.
    assert host.file(f"{OLD_VENV}/.selfhosted.ai_stack.json").exists
    assert host.file(f"{ROOT}/current").linked_to == VENV


def test_backup_timer_enabled(host):
    assert host.check_output("systemctl is-enabled open-webui-backup.timer") == "enabled"
    assert host.check_output("systemctl is-active open-webui-backup.timer") == "active"
    assert "03:15:00" in host.check_output("systemctl show open-webui-backup.timer -p TimersCalendar --value")
    for unit in ("open-webui-backup.service", "open-webui-backup.timer"):
        header = host.file(f"/etc/systemd/system/{unit}").content_string.splitlines()[:3]
        assert header[0] == "#" and "Ansible managed" in header[1], (unit, header)
    backups = host.file(BACKUP_DIR)
    assert (backups.user, backups.group, backups.mode) == ("openwebui", "openwebui", 0o700)


def test_backup_service_makes_a_consistent_backup(host):
    started = time.monotonic()
    host.check_output("systemctl start open-webui-backup.service")
    print(f"open-webui-backup.service (online, server running): {time.monotonic() - started:.1f} s")
    assert host.check_output("systemctl show open-webui-backup.service -p Result --value") == "success"
    newest = [entry for entry in _backups(host) if entry["kind"] == "scheduled"][-1]
    path = f"{BACKUP_DIR}/{newest['name']}"
    for database in ("webui.db", "vector_db/chroma.sqlite3"):
        assert _query(host, f"{path}/{database}", "PRAGMA integrity_check", live=False) == [["ok"]], database
    assert _rows(host, f"{path}/webui.db", live=False) == _rows(host)
    manifest = _manifest(host, newest["name"])
    assert (manifest["kind"], manifest["version"], manifest["venv"]) == ("scheduled", VERSION, VERSION)
    assert manifest["rows"]["webui.db"]["chat"] == _rows(host)["chat"]
    assert host.run(f"find {path}/uploads -name '*minutes.txt'").stdout.strip()
    # Self-contained SQLite files, nothing of the server's cache.
    assert host.run(f"find {path} -name '*-wal' -o -name '*-shm' -o -name cache").stdout == ""
    size = host.check_output(f"du -sk {path}").split()[0]
    print(f"backup {newest['name']}: {size} KiB")


def test_backup_retention_keeps_the_newest(host):
    """openwebui_backup_keep (7) of each kind: the oldest scheduled ones go after a new one succeeded."""
    newest = [entry for entry in _backups(host) if entry["kind"] == "scheduled"][-1]["name"]
    fakes = [f"20000101T00000{n}Z-scheduled" for n in range(8)]
    for fake in fakes:
        host.check_output(f"cp -a {BACKUP_DIR}/{newest} {BACKUP_DIR}/{fake}")
    before = _backups(host)
    host.check_output("systemctl start open-webui-backup.service")
    after = _backups(host)
    scheduled = [entry["name"] for entry in before if entry["kind"] == "scheduled"]
    kept = [entry["name"] for entry in after if entry["kind"] == "scheduled"]
    new = kept[-1]
    assert new not in scheduled and newest in kept
    assert kept == sorted([*scheduled, new])[-7:]
    # The backups taken before switches are counted apart: untouched.
    assert [e for e in after if e["kind"] == "upgrade"] == [e for e in before if e["kind"] == "upgrade"]


def test_failing_backup_fails_loudly_and_keeps_the_earlier_ones(host):
    """A full disk: the unit fails, the earlier backups stay, no partial copy is left; and the role's own
    backup before a switch fails the play, switches nothing and leaves the running release running."""
    used = int(host.check_output(f"du -sk {BACKUP_DIR}").split()[0])
    newest = [entry for entry in _backups(host) if entry["kind"] == "scheduled"][-1]["name"]
    one = int(host.check_output(f"du -sk {BACKUP_DIR}/{newest}").split()[0])
    assert one >= 256, f"a backup of {one} KiB is too small to fill the disk with"
    before = host.check_output(f"find {BACKUP_DIR} -mindepth 1 | sort")
    # The backups as they are, on a file system with room for half of another one, over the directory.
    host.check_output(
        f"mkdir -p /run/owui-full && mount -t tmpfs -o size={used + one // 2}k,mode=0700 tmpfs /run/owui-full"
        f" && cp -a {BACKUP_DIR}/. /run/owui-full/ && chown openwebui:openwebui /run/owui-full"
        f" && mount --bind /run/owui-full {BACKUP_DIR}"
    )
    try:
        failed = host.run("systemctl start open-webui-backup.service")
        assert failed.rc != 0
        assert host.check_output("systemctl is-failed open-webui-backup.service") == "failed"
        journal = host.check_output("journalctl -u open-webui-backup --no-pager -o cat -n 5")
        assert "FAILED" in journal and "no space left on the device" in journal, journal
        assert host.check_output(f"find {BACKUP_DIR} -mindepth 1 | sort") == before

        # The role's backup before a switch, on the same full disk.
        pid = _main_pid(host)
        run = run_openwebui(extra_vars={"openwebui_version": OLD_VERSION})
        output = _flat(run.stdout + run.stderr)
        assert run.returncode != 0, output[-3000:]
        assert f"was NOT switched from {VERSION} to {OLD_VERSION}" in output, output[-3000:]
        assert "no space left on the device" in output
        assert host.check_output(f"find {BACKUP_DIR} -mindepth 1 | sort") == before
    finally:
        host.run(f"umount {BACKUP_DIR}; umount /run/owui-full; systemctl reset-failed open-webui-backup.service")
    assert host.file(f"{ROOT}/current").linked_to == VENV
    assert api(host, "/api/version")[1]["version"] == VERSION
    assert _main_pid(host) != pid, "the server was not stopped for the backup and started again"


def test_restore_playbook_brings_back_a_deleted_user(host):
    admin = sign_in(host)
    # A name that does not exist: refused before anything stops, with the list of those that exist.
    pid = _main_pid(host)
    names = [entry["name"] for entry in _backups(host)]
    wrong = run_playbook(
        "selfhosted.ai_stack.openwebui_restore",
        extra_vars={"ai_stack_hosts": "all", "openwebui_restore_backup": "20200101T000000Z-scheduled"},
    )
    output = _flat(wrong.stdout + wrong.stderr)
    assert wrong.returncode != 0
    assert "There is no backup called 20200101T000000Z-scheduled" in output, output[-3000:]
    assert all(name in output for name in names)
    assert _main_pid(host) == pid

    host.check_output("systemctl start open-webui-backup.service")
    latest = _backups(host)[-1]["name"]
    rows = _rows(host)
    users = api(host, "/api/v1/users/", token=admin)[1]
    [carol] = [user for user in (users["users"] if isinstance(users, dict) else users) if user["email"] == USER_EMAIL]
    assert api(host, f"/api/v1/users/{carol['id']}", token=admin, method="DELETE")[0] == 200
    assert _rows(host)["user"] == rows["user"] - 1 and _rows(host)["chat"] == rows["chat"] - 2

    started = time.monotonic()
    restored = run_playbook(
        "selfhosted.ai_stack.openwebui_restore",
        extra_vars={"ai_stack_hosts": "all", "openwebui_restore_backup": "latest"},
    )
    output = _flat(restored.stdout + restored.stderr)
    assert restored.returncode == 0, output[-5000:]
    print(f"restore playbook (stop, restore, start to /ready): {time.monotonic() - started:.0f} s")
    assert f"Restored {BACKUP_DIR}/{latest} into {DATA_DIR}" in output
    assert _rows(host) == rows
    _sign_in_as(host, USER_EMAIL, USER_PASSWORD)
    assert api(host, "/api/v1/auths/", token=admin)[0] == 200, "the admin's session did not survive the restore"
    # Nothing deleted: the data the restore replaced (without Carol) is in DATA_DIR/replaced/.
    [aside] = host.check_output(f"ls -d {DATA_DIR}/replaced/*-before-{latest}").split()
    # (with its -wal, which holds the deletion: read it as the server would, not as an immutable copy)
    assert _rows(host, f"{aside}/webui.db")["user"] == rows["user"] - 1


def test_failed_upgrade_rolls_back_with_every_row(host):
    """0.12.0 cannot start on the database 0.12.4 migrated (Alembic: unknown revision): the role rolls back."""
    rows = _rows(host)
    upgrades = [entry["name"] for entry in _backups(host) if entry["kind"] == "upgrade"]
    started = time.monotonic()
    run = run_openwebui(extra_vars={"openwebui_version": OLD_VERSION})
    output = _flat(run.stdout + run.stderr)
    print(f"failed switch and rollback: {time.monotonic() - started:.0f} s")
    assert run.returncode != 0, output[-5000:]
    assert f"ROLLED BACK from {OLD_VERSION} to {VERSION}" in output, output[-5000:]
    assert f"switching from {VERSION} to {OLD_VERSION} failed" in output
    backup = [entry["name"] for entry in _backups(host) if entry["kind"] == "upgrade" and entry["name"] not in upgrades]
    assert len(backup) == 1 and f"{BACKUP_DIR}/{backup[0]}" in output
    assert re.search(r"failed=1\b", run.stdout), run.stdout[-2000:]
    # The release that ran before runs again, healthy, on every row.
    assert host.file(f"{ROOT}/current").linked_to == VENV
    for path in ("/health", "/ready"):
        assert api(host, path)[0] == 200
    assert api(host, "/api/version")[1]["version"] == VERSION
    assert _rows(host) == rows
    _sign_in_as(host, USER_EMAIL, USER_PASSWORD)
    assert host.service("open-webui").is_running
