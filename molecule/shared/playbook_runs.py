"""Run a scenario's playbook again from a testinfra test, and read its results as JSON.

Verify steps use it for what only a second run can show: failures a user must see,
check-mode predictions, upgrades. ``molecule/conftest.py`` puts this directory on sys.path.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t

import pytest


def run_playbook(
    name: str = "converge.yml", extra_vars: dict[str, t.Any] | None = None, check: bool = False
) -> tuple[int, dict[str, t.Any]]:
    """Run ``name`` from the scenario directory against the scenario's inventory."""
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], name)
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        return run.returncode, json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from ansible-playbook (rc {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")


def task_results(report: dict[str, t.Any], name: str, host: str) -> list[dict[str, t.Any]]:
    """``host``'s results of the tasks called ``name`` (role tasks are prefixed with the role)."""
    return [
        task["hosts"][host]
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].split(" : ")[-1] == name and host in task["hosts"]
    ]
