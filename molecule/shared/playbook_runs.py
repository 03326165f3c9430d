"""Run a scenario's playbook again from a testinfra test, and read its results as JSON.

Verify steps use it for what only a second run can show: failures a user must see,
check-mode predictions, upgrades. ``molecule/conftest.py`` puts this directory on sys.path.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import typing as t

import pytest


def run_playbook(
    name: str = "converge.yml",
    extra_vars: dict[str, t.Any] | None = None,
    check: bool = False,
    diff: bool = False,
    args: tuple[str, ...] = (),
) -> tuple[int, dict[str, t.Any]]:
    """Run ``name`` from the scenario directory (or a playbook of the collection, by its name:
    ``selfhosted.ai_stack.site``) against the scenario's inventory, with ``args`` (``--tags x``)."""
    playbook = name if name.startswith("selfhosted.") else os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], name)
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *args]
    if extra_vars:
        cmd += ["--extra-vars", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    # No other callback (a scenario's profile_tasks would print its table after the JSON); an empty
    # list is refused, and naming the stdout callback itself adds nothing.
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        return run.returncode, json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from ansible-playbook (rc {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")


@functools.cache
def converged_check_diff() -> tuple[int, dict[str, t.Any]]:
    """``converge.yml --check --diff`` on the converged hosts, run once per verify: the shared
    check-mode test asserts it changes nothing, and a scenario's own tests may read its results
    (facts, messages) instead of paying for another run of the whole playbook. Call it before
    anything changes the hosts."""
    return run_playbook(check=True, diff=True)


def task_results(report: dict[str, t.Any], name: str, host: str) -> list[dict[str, t.Any]]:
    """``host``'s results of the tasks called ``name`` (role tasks are prefixed with the role)."""
    return [
        task["hosts"][host]
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"].split(" : ")[-1] == name and host in task["hosts"]
    ]


def task_files_that_ran(report: dict[str, t.Any]) -> dict[str, set[str]]:
    """For each play of ``report``, the task files (``roles/x/tasks/y.yml``, ``playbooks/site.yml``) of the
    tasks that ran on some host (not skipped everywhere): what a run limited with ``--tags`` touched."""
    ran: dict[str, set[str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if not all(result.get("skipped") for result in task["hosts"].values()):
                path = task["task"]["path"].rpartition(":")[0].split("/ai_stack/")[-1]
                ran.setdefault(play["play"]["name"], set()).add(path)
    return ran


def plays_that_changed(report: dict[str, t.Any]) -> set[str]:
    """The names of the plays of ``report`` in which some task changed some host."""
    return {
        play["play"]["name"]
        for play in report["plays"]
        for task in play["tasks"]
        if any(result.get("changed") for result in task["hosts"].values())
    }
