"""A ``--check --diff`` run of the scenario's converge playbook on the converged host
must report 0 changed tasks: check mode is honest and nothing drifts."""

from __future__ import annotations

from playbook_runs import converged_check_diff


def test_check_mode_reports_no_changes() -> None:
    rc, report = converged_check_diff()
    assert report["stats"], "no hosts in the recap"
    changed = {
        f"{host}: {task['task']['name']}": result.get("diff")
        for play in report["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("changed")
    }
    assert rc == 0, report["stats"]
    assert all(stats["changed"] == 0 and stats["failures"] == 0 for stats in report["stats"].values()), changed
