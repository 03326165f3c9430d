"""Helpers for the ollama scenario: run the converge playbook again with extra variables."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass

import pytest

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M
)


@dataclass
class PlaybookRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def changed(self) -> int:
        return sum(int(m["changed"]) for m in RECAP.finditer(self.stdout))

    @property
    def output(self) -> str:
        # ansible-core 2.19 prints task errors to stderr.
        return self.stdout + self.stderr

    def tail(self) -> str:
        return self.stdout[-6000:] + self.stderr[-3000:]


def run_converge(*args: str, extra_vars: dict | None = None) -> PlaybookRun:
    """ansible-playbook converge.yml against the scenario's inventory, like molecule does."""
    return run_playbook("converge.yml", *args, extra_vars=extra_vars)


def run_playbook(playbook: str, *args: str, extra_vars: dict | None = None) -> PlaybookRun:
    """ansible-playbook <scenario>/<playbook> against the scenario's inventory."""
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    command = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], os.path.join(scenario, playbook)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    done = subprocess.run([*command, *args], capture_output=True, text=True, env=env, check=False)
    return PlaybookRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture(name="converge")
def converge_fixture():
    return run_converge


@pytest.fixture(name="playbook")
def playbook_fixture():
    return run_playbook


def _api(host, path: str, body: dict | None = None, method: str | None = None) -> dict:
    """Call the Ollama API from inside the container (python3 is there; curl is not)."""
    script = (
        "import json,sys,urllib.request as u;"
        "a=json.loads(sys.argv[1]);"
        "d=None if a['body'] is None else json.dumps(a['body']).encode();"
        "r=u.Request('http://127.0.0.1:11434'+a['path'],data=d,method=a['method']);"
        "print(u.urlopen(r,timeout=30).read().decode())"
    )
    arg = json.dumps({"path": path, "body": body, "method": method or ("POST" if body is not None else "GET")})
    return json.loads(host.check_output("python3 -c %s %s", script, arg))


@pytest.fixture(name="ollama_api")
def ollama_api_fixture(host):
    def call(path: str, body: dict | None = None, method: str | None = None) -> dict:
        return _api(host, path, body, method)

    return call
