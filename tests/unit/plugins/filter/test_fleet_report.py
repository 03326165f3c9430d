# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""The fleet filters: which office a host is in, the rollout order, drift and the two report renderings."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.fleet_report import (
    FilterModule,
    fleet_drift,
    fleet_offices,
    fleet_report_html,
    fleet_report_markdown,
    fleet_rollout_order,
)

GROUPS = {
    "all": ["b1", "b2", "b3", "h1", "m1", "x1"],
    "ai_stack": ["b1", "b2", "b3", "h1", "m1", "x1"],
    "office_munich": ["m1"],
    "office_berlin": ["b1", "b2", "b3"],
    "office_hamburg": ["h1"],
    "ungrouped": [],
}
HOSTS = ["m1", "b1", "b2", "h1", "b3", "x1"]


def test_offices() -> None:
    assert fleet_offices(HOSTS, GROUPS) == {
        "m1": "office_munich",
        "b1": "office_berlin",
        "b2": "office_berlin",
        "h1": "office_hamburg",
        "b3": "office_berlin",
        "x1": "(no office)",
    }


def test_offices_other_prefix_and_first_group_by_name() -> None:
    groups = {"site_b": ["a"], "site_a": ["a"], "site_": ["c"]}
    # "site_" itself is the prefix, not an office; a host in two offices belongs to the first by name.
    assert fleet_offices(["a", "c"], groups, prefix="site_") == {"a": "site_a", "c": "(no office)"}


@pytest.mark.parametrize(
    ("parallel", "order"),
    [
        # One office after another (by office name), inventory order inside each, hosts without an office last.
        (False, ["b1", "b2", "b3", "h1", "m1", "x1"]),
        # Round robin: a batch of 3 takes the first host of three offices.
        (True, ["b1", "h1", "m1", "x1", "b2", "b3"]),
    ],
)
def test_rollout_order(parallel: bool, order: list[str]) -> None:
    assert fleet_rollout_order(HOSTS, GROUPS, parallel=parallel) == order
    # Idempotency row: ordering an ordered list again changes nothing.
    assert fleet_rollout_order(order, GROUPS, parallel=False) == fleet_rollout_order(HOSTS, GROUPS, parallel=False)


def test_rollout_order_keeps_every_host_once() -> None:
    for parallel in (False, True):
        assert sorted(fleet_rollout_order(HOSTS, GROUPS, parallel=parallel)) == sorted(HOSTS)
    assert fleet_rollout_order([], GROUPS) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("b1", GROUPS), "expects the hosts as a list of host names, got 'b1'"),
        ((["b1"], ["office_a"]), "expects the groups as a dict"),
    ],
)
def test_rollout_order_bad_input(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fleet_rollout_order(*args)


def _host(host: str, office: str, **extra: Any) -> dict[str, Any]:
    report = {
        "host": host,
        "office": office,
        "versions": {"ollama": "0.32.7", "nginx": "1.22.1", "openwebui": "0.12.4", "searxng": "9fea412"},
        "gpus": [],
        "gpu_assignment": {"ollama_gpus": [], "comfyui_gpus": []},
        "models": ["qwen2.5:3b"],
        "health": [{"service": "ollama", "gate": "ollama /api/version", "ok": True, "detail": "0.32.7"}],
        "reboot_pending": False,
        "reboot_reasons": [],
    }
    for key, value in extra.items():
        if key == "versions":
            report["versions"] = {**report["versions"], **value}
        else:
            report[key] = value
    return report


def test_no_drift_when_every_host_agrees() -> None:
    reports = [_host("b1", "office_berlin"), _host("h1", "office_hamburg")]
    assert fleet_drift(reports) == []
    # A service that is absent on one host is not drift.
    assert fleet_drift([*reports, _host("m1", "office_munich", versions={"openwebui": ""})]) == []


def test_drift_between_offices() -> None:
    reports = [
        _host("b1", "office_berlin"),
        _host("b2", "office_berlin"),
        _host("h1", "office_hamburg", versions={"ollama": "0.33.0"}),
    ]
    assert fleet_drift(reports) == [
        {
            "service": "ollama",
            "label": "Ollama",
            "between_offices": True,
            "versions": [
                {"version": "0.32.7", "hosts": ["b1", "b2"], "offices": ["office_berlin"]},
                {"version": "0.33.0", "hosts": ["h1"], "offices": ["office_hamburg"]},
            ],
        }
    ]


def test_drift_within_one_office_only() -> None:
    reports = [
        _host("b1", "office_berlin", versions={"nginx": "1.26.0"}),
        _host("b2", "office_berlin"),
        _host("h1", "office_hamburg", versions={"nginx": "1.26.0"}),
        _host("h2", "office_hamburg"),
    ]
    (item,) = fleet_drift(reports)
    # Both offices run the same two versions: a difference inside the offices, not between them.
    assert item["service"] == "nginx"
    assert item["between_offices"] is False


def test_drift_accepts_a_dict_of_reports() -> None:
    reports = {"b1": _host("b1", "office_berlin"), "h1": _host("h1", "office_hamburg", versions={"nginx": "1.2"})}
    assert [d["service"] for d in fleet_drift(reports)] == ["nginx"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("b1", "fleet_drift expects a list of host reports, got 'b1'"),
        ([{"office": "x"}], "a host report must be a dict with 'host'"),
    ],
)
def test_drift_bad_input(value: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        fleet_drift(value)


FLEET = [
    _host(
        "b1",
        "office_berlin",
        gpus=[
            {"index": 0, "name": "NVIDIA GeForce RTX 2080 Ti", "memory_total_mib": 22528},
            {"index": 1, "name": "NVIDIA GeForce RTX 2080 Ti", "memory_total_mib": 22528},
        ],
        gpu_assignment={"ollama_gpus": [0], "comfyui_gpus": [1]},
        versions={"nvidia_driver": "580.95.05", "cuda": "13.0"},
    ),
    _host(
        "h1",
        "office_hamburg",
        versions={"ollama": "0.33.0"},
        health=[{"service": "ollama", "gate": "ollama generate", "ok": False, "detail": "HTTP 500 <boom>"}],
        reboot_pending=True,
        reboot_reasons=["nvidia driver 580 installed, not loaded"],
    ),
]


def test_markdown_report() -> None:
    text = fleet_report_markdown(FLEET, generated="2026-12-02T04:00:00Z")
    assert text.startswith("# AI stack fleet report\n")
    assert "Generated 2026-12-02T04:00:00Z." in text
    assert "2 hosts; failing health gates: h1; reboot pending: h1; drifting services: 1." in text
    drift = "- **DRIFT** Ollama differs between offices: 0.32.7 on b1 (office_berlin); 0.33.0 on h1 (office_hamburg)"
    assert drift in text
    # One table per office, in office order.
    assert text.index("## office_berlin") < text.index("## office_hamburg")
    assert "GPU0 NVIDIA GeForce RTX 2080 Ti 22 GiB → ollama; GPU1 NVIDIA GeForce RTX 2080 Ti 22 GiB → comfyui" in text
    failed_row = next(line for line in text.splitlines() if line.startswith("| **h1**"))
    assert "FAILED ollama generate: HTTP 500 <boom>" in failed_row
    assert "YES: nvidia driver 580 installed, not loaded" in failed_row
    ok_row = next(line for line in text.splitlines() if line.startswith("| b1 |"))
    assert "ok (1 gates)" in ok_row
    assert ok_row.count("|") == 13 + 1  # 13 columns: host, 8 services, GPUs, models, health, reboot


def test_gpu_assignment_by_uuid_all_and_bad_selection() -> None:
    gpus = [
        {"index": 0, "uuid": "GPU-aaaa-1111", "name": "A", "memory_total_mib": 12288},
        {"index": 1, "uuid": "GPU-bbbb-2222", "name": "B", "memory_total_mib": 12288},
    ]
    assignment = {"ollama_gpus": "all", "comfyui_gpus": ["GPU-bbbb-2222"]}
    text = fleet_report_markdown([_host("b1", "office_berlin", gpus=gpus, gpu_assignment=assignment)])
    assert "GPU0 A 12 GiB → ollama; GPU1 B 12 GiB → comfyui, ollama" in text
    text = fleet_report_markdown([_host("b1", "office_berlin", gpus=gpus, gpu_assignment={"ollama_gpus": [5]})])
    assert "GPU0 A 12 GiB → unassigned; GPU1 B 12 GiB → unassigned; assignment error: ollama_gpus" in text
    assert "none (CPU)" in fleet_report_markdown([_host("m1", "office_munich")])


def test_markdown_escapes_pipes_and_reports_no_drift() -> None:
    text = fleet_report_markdown([_host("b1", "office_berlin", models=["a|b"])])
    assert "a\\|b" in text
    assert "No drift: every service runs one version." in text


class _Page(HTMLParser):
    """Collects what the tests look at: tags with attributes, the text of each table cell, and any external link."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.cells: list[tuple[str, str]] = []
        self._cell: list[str] | None = None
        self._class = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "td":
            self._cell = []
            self._class = dict(attrs).get("class") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(("".join(self._cell), self._class))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_report_is_self_contained_and_highlights() -> None:
    page_text = fleet_report_html(FLEET, title="Fleet <test>")
    page = _Page()
    page.feed(page_text)
    tags = [tag for tag, _attrs in page.tags]
    # Self-contained: inline CSS, no scripts, links, images or any URL.
    assert "style" in tags
    assert not {"script", "link", "img", "iframe"} & set(tags)
    values = [v for _tag, attrs in page.tags for v in attrs.values() if v]
    assert not any("http:" in v or "https:" in v or "//" in v for v in values)
    assert "<title>Fleet &lt;test&gt;</title>" in page_text
    tables = [attrs["data-office"] for tag, attrs in page.tags if tag == "table"]
    assert tables == ["office_berlin", "office_hamburg"]
    rows = {attrs["data-host"]: attrs["class"] for tag, attrs in page.tags if tag == "tr" and "data-host" in attrs}
    assert rows == {"b1": "ok", "h1": "failed"}
    cells = dict(page.cells)
    assert cells["FAILED ollama generate: HTTP 500 <boom>"] == "failed"
    # Both Ollama versions are marked as drift.
    assert cells["0.32.7"] == "drift"
    assert cells["0.33.0"] == "drift"
    assert 'id="drift"' in page_text
    assert "Ollama differs between offices" in page_text


def test_missing_hosts_get_a_failed_row() -> None:
    text = fleet_report_markdown([_host("b1", "office_berlin")], missing={"h9": "office_hamburg"})
    assert "failing health gates: h9;" in text
    row = next(line for line in text.splitlines() if line.startswith("| **h9**"))
    assert "FAILED report: no report (unreachable, or failed gathering)" in row
    assert '<tr class="failed" data-host="h9">' in fleet_report_html([], missing={"h9": "office_hamburg"})
    with pytest.raises(AnsibleFilterError, match="expects missing as a dict"):
        fleet_report_html([], missing=["h9"])


def test_html_without_drift() -> None:
    page_text = fleet_report_html([_host("b1", "office_berlin")])
    assert '<p id="drift" class="ok">No drift' in page_text
    assert 'class="drift"' not in page_text


def test_filters_registered() -> None:
    assert set(FilterModule().filters()) == {
        "fleet_offices",
        "fleet_rollout_order",
        "fleet_drift",
        "fleet_report_markdown",
        "fleet_report_html",
    }
