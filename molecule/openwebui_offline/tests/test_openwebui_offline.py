"""Open WebUI installed and running in an office without internet (see molecule.yml): from the
controller's wheelhouse only, exactly the role's lock for this host's interpreter, in offline mode."""

from __future__ import annotations

import glob
import json
import os
import re
import shlex

VERSION = "0.12.4"
VENV = f"/opt/ai_stack/openwebui/venvs/{VERSION}-pip"
HOST_WHEELHOUSES = "/var/cache/ai_stack/wheelhouse/openwebui"
CACHE = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], ".cache/molecule-artifacts/shared/wheelhouse/openwebui")

# Runs inside the container: one HTTP call over loopback, prints status and JSON body.
_CALL = (
    "import json,sys,urllib.request as u;"
    "a=json.loads(sys.argv[1]);"
    "d=None if a['body'] is None else json.dumps(a['body']).encode();"
    "r=u.Request(a['url'],data=d,headers={'Content-Type':'application/json'});"
    "o=u.build_opener(u.ProxyHandler({})).open(r,timeout=60);"
    "print(json.dumps({'status':o.status,'body':json.loads(o.read())}))"
)


def _normal(requirement: str) -> str:
    """``Name==version`` with the name normalized as PyPI does (pip freeze keeps the metadata's spelling)."""
    name, sep, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "-", name).lower() + sep + version


def api(host, path: str, body: dict | None = None) -> dict:
    call = json.dumps({"url": "http://127.0.0.1:8080" + path, "body": body})
    result = json.loads(host.check_output("python3 -c %s %s", _CALL, call))
    assert result["status"] == 200, result
    return result["body"]


def test_the_host_has_no_network(host):
    # Only the loopback interface is up, and there is no route anywhere.
    interfaces = host.check_output("ls /sys/class/net").split()
    states = {name: host.file(f"/sys/class/net/{name}/operstate").content_string.strip() for name in interfaces}
    assert "up" not in states.values(), states
    assert host.file("/proc/net/route").content_string.strip().count("\n") == 0


def test_open_webui_runs_and_its_admin_signs_in(host):
    assert host.service("open-webui").is_running
    assert api(host, "/api/version")["version"] == VERSION
    token = api(host, "/api/v1/auths/signin", {"email": "admin@branch.example", "password": "Offline-Adm1n-S3cret"})
    assert token["role"] == "admin"


def test_installed_exactly_the_lock_from_the_wheelhouse(host):
    """The venv holds the lock as this host's interpreter reads it (python_requirements_for), every
    package at its pin, no torch, and nothing else but pip; uv was never installed."""
    [wheelhouse] = host.check_output(f"ls -d {HOST_WHEELHOUSES}/cp311-*").split()
    # requirements.txt: pip, then the lock's lines for this host (the wheelhouse's own record).
    wanted = {_normal(line) for line in host.file(f"{wheelhouse}/requirements.txt").content_string.split()} - {"pip"}
    frozen = {_normal(line) for line in host.check_output(f"{VENV}/bin/python -m pip freeze --all").split()}
    names = {line.split("==")[0] for line in frozen}
    assert {line for line in frozen if not line.startswith("pip==")} == wanted, frozen ^ wanted
    assert f"open-webui=={VERSION}" in frozen
    assert not names & {"torch", "triton", "nvidia-cublas"}
    # 3.11.2 needs the lines the controller's own Python (a later 3.11) would have skipped.
    assert "async-timeout==5.0.1" in frozen and "soupsieve==2.10" in frozen
    assert not host.file("/opt/ai_stack/openwebui/tools").exists
    size_mib = int(host.check_output(f"du -sm {VENV}").split()[0])
    print(f"venv from the wheelhouse: {len(frozen)} packages, {size_mib} MiB")


def test_the_controller_downloaded_the_wheelhouse_once_and_slim() -> None:
    [wheelhouse] = glob.glob(os.path.join(CACHE, "cp311-*"))
    wheels = os.listdir(wheelhouse)
    assert not [name for name in wheels if name.startswith(("torch-", "nvidia_", "triton-"))]
    size_mib = sum(os.path.getsize(os.path.join(wheelhouse, name)) for name in wheels) // 2**20
    print(f"controller wheelhouse: {len(wheels)} files, {size_mib} MiB")


def test_the_unit_runs_in_offline_mode(host):
    line = host.check_output("systemctl show open-webui -p Environment --value")
    environment = dict(item.split("=", 1) for item in shlex.split(line))
    assert environment["OFFLINE_MODE"] == "true"
    assert environment["HF_HUB_OFFLINE"] == "1"
    assert environment["RAG_EMBEDDING_ENGINE"] == "ollama"
