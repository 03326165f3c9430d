"""Bad input: every case of tests/bad_input/cases.yml is refused before anything changes.

Each case is one ansible-playbook run (bad_input.yml applies the case's role with its bad variables,
or a playbook of the scenario) against the converged nginx host. The run must fail with a message that
names the variable, the bad value and what is allowed, show no secret of the case, and report
changed=0; the host's files under /etc, /opt, /usr/local and /var/lib and its systemd units must be
the same after all cases as before them. The cases only read the host, so they run four at a time,
and the facts are gathered once, into a fact cache the cases read instead of gathering their own.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time
import typing as t
from pathlib import Path

import pytest
import yaml
from playbook_runs import run_playbook

HOST = "ai-stack-nginx"
CASES = Path(__file__).resolve().parents[3] / "tests" / "bad_input" / "cases.yml"
WORKERS = 4

# What a failed run may not have touched: mode, owner, group and size of every path, and the
# sha256 of every regular file. Left out, as they change without anyone changing the host:
FINGERPRINT = r"""
set -eu
roots="/etc /opt /usr/local /var/lib"
# /var/lib/apt/lists: apt's index cache; /var/lib/systemd/timers: the stamps timers write when they
# fire; /var/lib/systemd/random-seed: refreshed by systemd. (The journal lives in /var/log and /run.)
prune="-path /var/lib/apt/lists -o -path /var/lib/systemd/timers -o -path /var/lib/systemd/random-seed"
find $roots -xdev \( $prune \) -prune -o -printf '%M %u %g %s %p\n' | LC_ALL=C sort
find $roots -xdev \( $prune \) -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
echo '--- unit files'
systemctl list-unit-files --no-legend --no-pager | LC_ALL=C sort
echo '--- active units'
systemctl list-units --state=active --no-legend --no-pager --plain | awk '{print $1}' | LC_ALL=C sort
"""


def load_cases() -> list[dict[str, t.Any]]:
    cases = yaml.safe_load(CASES.read_text())
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases


def as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def failed_tasks(report: dict[str, t.Any]) -> list[str]:
    return [
        task["task"]["name"].split(" - ")[0]  # an argument spec task's name goes on with the role's description
        for play in report["plays"]
        for task in play["tasks"]
        if any(result.get("failed") for result in task["hosts"].values())
    ]


def failure_text(report: dict[str, t.Any]) -> str:
    """The messages of every failed result (loop items too), one per line."""
    messages = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                for entry in [result, *result.get("results", [])]:
                    if isinstance(entry, dict) and entry.get("failed"):
                        messages.append(str(entry.get("msg", "")))
                        messages.extend(str(error) for error in entry.get("argument_errors", []))
    return "\n".join(messages)


def run_case(case: dict[str, t.Any]) -> dict[str, t.Any]:
    started = time.monotonic()
    if "playbook" in case:
        name, extra_vars = case["playbook"], dict(case.get("vars", {}))
    else:
        name, extra_vars = "bad_input.yml", {**case.get("vars", {}), "bad_input_role": case["role"]}
    args = ("--tags", ",".join(case["tags"])) if "tags" in case else ()
    rc, report = run_playbook(name, extra_vars=extra_vars, args=args)
    return {"rc": rc, "report": report, "seconds": time.monotonic() - started}


def problems_of(case: dict[str, t.Any], outcome: dict[str, t.Any]) -> list[str]:
    """What is wrong with one case's run; empty when it was refused as it should be."""
    report, problems = outcome["report"], []
    stats = report.get("stats", {}).get(HOST)
    message = failure_text(report)
    if outcome["rc"] == 0:
        problems.append("the run succeeded")
    if not stats or not stats.get("failures"):
        problems.append(f"{HOST} did not fail (recap {stats})")
    elif stats.get("changed") != 0:
        problems.append(f"the recap shows changed={stats.get('changed')}")
    for kind in ("variable", "value", "allowed"):
        problems += [f"the message lacks the {kind} {s!r}" for s in as_list(case.get(kind)) if s not in message]
    dump = repr(report)
    problems += [f"the output shows the secret {s!r}" for s in as_list(case.get("hidden")) if s in dump]
    if problems:
        problems.append(f"message: {message[:1500]}")
    return problems


def fingerprint(host) -> str:
    return host.check_output(FINGERPRINT)


@pytest.fixture(name="fact_cache")
def fact_cache_fixture(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Facts gathered once (min and hardware, what the roles read), for every case to read: a playbook
    run with ANSIBLE_GATHERING=smart takes cached facts instead of gathering them again."""
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN", "ansible.builtin.jsonfile")
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(tmp_path / "facts"))
    monkeypatch.setenv("ANSIBLE_GATHERING", "smart")
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    cmd = ["ansible", HOST, "-i", inventory, "-m", "ansible.builtin.gather_facts", "-a", "gather_subset=min,hardware"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]


@pytest.mark.usefixtures("fact_cache")
def test_every_bad_input_is_refused_before_anything_changes(host) -> None:
    cases = load_cases()
    assert len(cases) >= 25, len(cases)
    started = time.monotonic()
    before = fingerprint(host)
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = dict(zip((case["id"] for case in cases), pool.map(run_case, cases), strict=True))
    after = fingerprint(host)
    elapsed = time.monotonic() - started

    slowest = sorted(outcomes.items(), key=lambda item: -item[1]["seconds"])[:3]
    slowest_text = ", ".join(f"{name} {outcome['seconds']:.1f} s" for name, outcome in slowest)
    print(f"bad input: {len(cases)} cases in {elapsed:.1f} s with {WORKERS} workers (slowest: {slowest_text})")
    for name, outcome in outcomes.items():
        where = "; ".join(failed_tasks(outcome["report"])) or "no failed task"
        print(f"  {name:<48} {outcome['seconds']:5.1f} s  {where}")
    failed = {case["id"]: problems_of(case, outcomes[case["id"]]) for case in cases}
    report = [f"{name}: " + "; ".join(problems) for name, problems in failed.items() if problems]
    if before != after:
        changed = sorted(set(before.splitlines()) ^ set(after.splitlines()))
        report.append("the bad-input runs changed the host (- before, + after):")
        report += [("- " if line in before.splitlines() else "+ ") + line for line in changed[:50]]
    assert not report, "\n".join(report)
