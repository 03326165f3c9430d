"""tests/scripts/fresh_host_check.py, the gate run-scenarios.sh puts on every scenario's dry run on
the fresh host (molecule's check action), against molecule 26 logs as run-scenarios.sh saves them
(colours, the command border, two hosts)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fresh_host_check.py"
_spec = importlib.util.spec_from_file_location("fresh_host_check", SCRIPT)
assert _spec and _spec.loader
gate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate)

C = "\x1b[36mINFO    \x1b[0m \x1b[32mnginx\x1b[0m \u279c \x1b[33m{action}\x1b[0m: \x1b[36m{state}\x1b[0m"


def _recap(host: str, changed: int, failed: int = 0) -> str:
    return (
        f"  \x1b[2m\u2502\x1b[0m \x1b[0;33m{host}\x1b[0m             : \x1b[0;32mok=23  \x1b[0m "
        f"\x1b[0;33mchanged={changed}   \x1b[0m unreachable=0    failed={failed}    skipped=11   rescued=0    ignored=0"
    )


def _log(check_result: str | None, recaps: list[str], with_check: bool = True) -> str:
    lines = [C.format(action="prepare", state="Executed: Successful")]
    if with_check:
        lines += [
            C.format(action="check", state="Executing"),
            "  \x1b[2m\u2502 ansible-playbook --check\x1b[0m",
            "  \x1b[2m\u2502\x1b[0m PLAY RECAP *********************************************************************",
            *recaps,
        ]
        if check_result:
            lines.append(C.format(action="check", state=f"Executed: {check_result}"))
    lines += [
        C.format(action="converge", state="Executing"),
        "  \x1b[2m\u2502\x1b[0m PLAY RECAP *********************************************************************",
        _recap("ai-stack-nginx", 11),
        C.format(action="converge", state="Executed: Successful"),
    ]
    return "\n".join(lines) + "\n"


def test_successful_dry_run_that_predicts_changes_on_every_host_passes() -> None:
    assert gate.problems(_log("Successful", [_recap("py311-builder", 2), _recap("py311-installer", 3)])) == []


def test_dry_run_that_predicts_nothing_fails() -> None:
    found = gate.problems(_log("Successful", [_recap("py311-builder", 2), _recap("py311-installer", 0)]))
    assert found == ["py311-installer: the dry run on a fresh host predicted no changes (changed=0)"]


def test_the_controller_may_predict_nothing() -> None:
    # site.yml ends with a play on localhost that only reports; the hosts must still predict changes.
    assert gate.problems(_log("Successful", [_recap("ai-stack-stack", 90), _recap("localhost", 0)])) == []
    found = gate.problems(_log("Successful", [_recap("ai-stack-stack", 0), _recap("localhost", 0)]))
    assert found == ["ai-stack-stack: the dry run on a fresh host predicted no changes (changed=0)"]


def test_failed_dry_run_fails() -> None:
    found = gate.problems(_log("Failed", [_recap("ai-stack-nginx", 4, failed=1)]))
    assert "the dry run on the fresh host failed (converge --check must succeed on a fresh host)" in found
    assert "ai-stack-nginx: failed=1 unreachable=0 in the dry run" in found


def test_scenario_without_the_check_action_fails() -> None:
    # The converge recap (changed=11) must not count as the dry run's.
    assert gate.problems(_log(None, [], with_check=False)) == [
        "the scenario never ran molecule's check action (is it in the test_sequence after prepare?)"
    ]


def test_dry_run_that_never_finished_fails() -> None:
    found = gate.problems(_log(None, [_recap("ai-stack-nginx", 4)]))
    assert found[0].startswith("the dry run on the fresh host failed")


@pytest.mark.parametrize(("result", "rc"), [("Successful", 0), ("Failed", 1)])
def test_command_line(tmp_path: Path, result: str, rc: int) -> None:
    log = tmp_path / "nginx-debian12.log"
    log.write_text(_log(result, [_recap("ai-stack-nginx", 4)]))
    done = subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True, check=False)
    assert done.returncode == rc, done.stderr
