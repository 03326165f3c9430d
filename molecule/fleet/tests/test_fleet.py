"""The fleet rollout (playbooks/rollout.yml) and the fleet report (playbooks/fleet_report.yml) on three
hosts in two offices: office_north (fleet-1, the canary, and fleet-2) and office_south (fleet-3).

Three runs, in this order, each from the state the one before left (they share the converged hosts to
keep the scenario short): a full rollout of a new nginx setting with fleet-2's Ollama down (the canary
passes first, fleet-2 fails its gate, fleet-3 in the other office is never touched), the report of
that fleet (the failure, and the Ollama drift between the offices), and an nginx-only run by tag that
puts every host back where converge left it (so the shared check-mode test finds the converged state,
whichever runs first).
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra
from playbook_runs import run_playbook, task_results

# The tests drive the whole fleet from the controller; they run once, not once per host.
testinfra_hosts = ["ansible://ai-stack-fleet-1"]

HOSTS = ["ai-stack-fleet-1", "ai-stack-fleet-2", "ai-stack-fleet-3"]
ROLLOUT = "Rollout | the stack, batch by batch, each host behind its health gates"
SITE_CONF = "/etc/nginx/conf.d/ai_stack.conf"


def on(name: str) -> t.Any:
    return testinfra.get_host(f"docker://{name}")


def body_size(name: str) -> str:
    match = re.search(r"client_max_body_size (\S+);", on(name).file(SITE_CONF).content_string)
    assert match, f"no client_max_body_size in {SITE_CONF} on {name}"
    return match[1]


def batches(report: dict[str, t.Any]) -> list[list[str]]:
    """The hosts of each batch of the rollout play, in the order the batches ran."""
    return [
        sorted({host for task in play["tasks"] for host in task["hosts"]})
        for play in report["plays"]
        if play["play"]["name"] == ROLLOUT
    ]


def changed_tasks(report: dict[str, t.Any], host: str) -> list[str]:
    return [
        task["task"]["name"]
        for play in report["plays"]
        for task in play["tasks"]
        if task["hosts"].get(host, {}).get("changed")
    ]


@pytest.fixture(name="double_stopped_on_fleet_2")
def double_stopped_on_fleet_2_fixture() -> Iterator[None]:
    """The failure to inject: fleet-2's Ollama (the test double) is down."""
    fleet_2 = on("ai-stack-fleet-2")
    assert fleet_2.run("systemctl stop ollama-double").rc == 0
    try:
        yield
    finally:
        assert fleet_2.run("systemctl start ollama-double").rc == 0
        fleet_2.run("for i in $(seq 50); do curl -sf http://127.0.0.1:11434/api/version && break; sleep 0.2; done")


@pytest.mark.usefixtures("double_stopped_on_fleet_2")
def test_canary_first_and_a_failed_gate_stops_the_rollout_with_the_rest_untouched() -> None:
    rc, report = run_playbook(extra_vars={"nginx_client_max_body_size": "32M"})
    assert rc != 0
    # The canary alone first, with every role and its gates passed before fleet-2 started; fleet-2 got the
    # change and failed its gate; fleet-3 (the other office) never started and keeps its configuration.
    assert batches(report) == [["ai-stack-fleet-1"], ["ai-stack-fleet-2"]]
    canary = next(play for play in report["plays"] if play["play"]["name"] == ROLLOUT)["tasks"]
    names = [task["task"]["name"] for task in canary]
    assert names.index("Preflight (changes nothing)") < names.index("Reverse proxy in front of the stack")
    (gate,) = [e["hosts"]["ai-stack-fleet-1"] for e in canary if e["task"]["name"].endswith(" : Note the failed gates")]
    assert gate["ansible_facts"]["health_gate_failed"] == []
    assert "Note that the host passed its gates" in names
    assert report["stats"]["ai-stack-fleet-1"]["failures"] == 0
    assert report["stats"]["ai-stack-fleet-2"]["failures"] == 1
    # fleet-3 at most ran the (read-only, run_once) ordering play, never a batch, and changed nothing.
    assert report["stats"].get("ai-stack-fleet-3", {}).get("changed", 0) == 0
    assert [body_size(host) for host in HOSTS] == ["32M", "32M", "100M"]
    # The failure and the recap name the host and the gate.
    (fail,) = task_results(report, "Fail the host on a failed gate", "ai-stack-fleet-2")
    assert fail["failed"]
    assert fail["msg"].startswith("GATE FAILED: ai-stack-fleet-2 ollama /api/version: "), fail["msg"]
    assert "Connection refused" in fail["msg"]
    stop_task = "Say where the rollout stopped and which hosts it left untouched"
    (stopped,) = task_results(report, stop_task, "ai-stack-fleet-2")
    assert " ".join(stopped["msg"].split()) == (
        "ROLLOUT STOPPED at ai-stack-fleet-2: GATE FAILED ollama /api/version. "
        "Not started, left on their previous version: ai-stack-fleet-3."
    )
    # Ansible runs no later play once max_fail_percentage stopped one.
    assert not task_results(report, "Say how the rollout went", "ai-stack-fleet-1")


@pytest.mark.usefixtures("double_stopped_on_fleet_2")
def test_fleet_report(tmp_path: Path) -> None:
    rc, report = run_playbook("report.yml", extra_vars={"ai_stack_fleet_report_dir": str(tmp_path)})
    # Report mode: a failed gate is reported, not a failed host; nothing changes on the hosts.
    assert rc == 0, report["stats"]
    assert all(report["stats"][host]["changed"] == 0 for host in HOSTS)
    markdown = (tmp_path / "fleet-report.md").read_text()
    page = (tmp_path / "fleet-report.html").read_text()
    print(markdown)
    nginx = on("ai-stack-fleet-1").run("nginx -v").stderr.strip().split("/", 1)[1]
    assert "3 hosts; failing health gates: ai-stack-fleet-2; reboot pending: none; drifting services: 1." in markdown
    assert (
        "- **DRIFT** Ollama differs between offices: 0.32.6 on ai-stack-fleet-3 (office_south); "
        "0.32.7 on ai-stack-fleet-1 (office_north)" in markdown
    )
    assert markdown.index("## office_north") < markdown.index("## office_south")
    rows = {line.split(" | ")[0].strip("|* ❌"): line for line in markdown.splitlines() if line.startswith("| ")}
    assert f"| 0.32.7 | — | — | — | {nginx} |" in rows["ai-stack-fleet-1"]
    assert "tinyllama:latest" in rows["ai-stack-fleet-1"]
    assert "ok (4 gates)" in rows["ai-stack-fleet-1"]
    assert "FAILED ollama /api/version: " in rows["ai-stack-fleet-2"]
    assert f"| 0.32.6 | — | — | — | {nginx} |" in rows["ai-stack-fleet-3"]
    # The page: self-contained, one table per office, the failure and the drift marked.
    assert not re.search(r"<(script|link|img)\b|https?://", page)
    assert re.findall(r'<table class="office" data-office="([^"]+)"', page) == ["office_north", "office_south"]
    assert '<tr class="failed" data-host="ai-stack-fleet-2">' in page
    assert '<tr class="ok" data-host="ai-stack-fleet-1">' in page
    assert '<td class="drift">0.32.6</td>' in page
    assert '<div class="callout" id="drift">' in page


def test_a_tag_changes_only_that_service_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_RUN_TAGS", "nginx")
    # The inventory's nginx settings again: fleet-1 and fleet-2 change back, fleet-3 already has them.
    rc, report = run_playbook()
    assert rc == 0, report["stats"]
    assert batches(report) == [[host] for host in HOSTS]
    assert [body_size(host) for host in HOSTS] == ["100M"] * 3
    for host in HOSTS[:2]:
        changed = changed_tasks(report, host)
        # Only nginx's tasks (and its handler) changed anything; preflight did not even run.
        assert changed, f"nothing changed on {host}"
        assert all(name.startswith("selfhosted.ai_stack.nginx : ") for name in changed), changed
    assert changed_tasks(report, "ai-stack-fleet-3") == []
    for host in HOSTS:
        assert not task_results(report, "Refuse a host that cannot take the stack", host)
        # The gates still ran after each host.
        (failed,) = task_results(report, "Note the failed gates", host)
        assert failed["ansible_facts"]["health_gate_failed"] == []
    (summary,) = task_results(report, "Say how the rollout went", "ai-stack-fleet-1")
    assert " ".join(summary["msg"].split()).startswith(
        "ROLLOUT COMPLETE: 3 host(s) passed their gates, in this order: "
        "ai-stack-fleet-1, ai-stack-fleet-2, ai-stack-fleet-3."
    )
