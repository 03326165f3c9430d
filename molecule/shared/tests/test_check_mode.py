"""A ``--check --diff`` run of the scenario's converge playbook on the converged host
must report 0 changed tasks: check mode is honest and nothing drifts."""

from __future__ import annotations

import os
import re
import subprocess

RECAP = re.compile(r"^(?P<host>\S+)\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=0\s+failed=0", re.M)


def _converge_in_check_mode() -> subprocess.CompletedProcess[str]:
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    playbook = os.path.join(scenario, "converge.yml")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook, "--check", "--diff"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_check_mode_reports_no_changes() -> None:
    run = _converge_in_check_mode()
    recaps = {m["host"]: int(m["changed"]) for m in RECAP.finditer(run.stdout)}
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert recaps, "no play recap found:\n" + run.stdout[-4000:]
    assert all(changed == 0 for changed in recaps.values()), run.stdout[-6000:]
