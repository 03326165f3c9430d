# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet filters: rollout order, offices, drift and the fleet report (documentation: fleet_*.yml next to this file).

The playbooks only gather and write; every decision (which office a host is in, the order of the rollout,
which versions drift, what the report says) is made here, where the unit tests can reach it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.gpu import resolve_selection

NO_OFFICE = "(no office)"
# The columns of the report, in the order the site playbook installs the services.
SERVICES = ("nvidia_driver", "cuda", "python311", "ollama", "searxng", "comfyui", "openwebui", "nginx")
SERVICE_LABELS = {
    "nvidia_driver": "NVIDIA driver",
    "cuda": "CUDA",
    "python311": "Python 3.11",
    "ollama": "Ollama",
    "searxng": "SearXNG",
    "comfyui": "ComfyUI",
    "openwebui": "Open WebUI",
    "nginx": "nginx",
}
ABSENT = ("", None)


def _str_list(value: Any, what: str, filter_name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AnsibleFilterError(f"{filter_name} expects {what} as a list of host names, got {value!r}")
    return [str(item) for item in value]


def _groups(groups: Any, filter_name: str) -> dict[str, list[str]]:
    if not isinstance(groups, Mapping):
        raise AnsibleFilterError(f"{filter_name} expects the groups as a dict (the 'groups' variable), got {groups!r}")
    return {str(name): [str(h) for h in members] for name, members in groups.items()}


def fleet_offices(hosts: Any, groups: Any, prefix: str = "office_") -> dict[str, str]:
    """The office of each host: the first group, by name, that starts with ``prefix`` and holds the host."""
    names = _str_list(hosts, "the hosts", "fleet_offices")
    office_groups = sorted(g for g in _groups(groups, "fleet_offices") if g.startswith(prefix) and g != prefix)
    members = _groups(groups, "fleet_offices")
    result = {}
    for host in names:
        result[host] = next((g for g in office_groups if host in members[g]), NO_OFFICE)
    return result


def fleet_rollout_order(hosts: Any, groups: Any, parallel: bool = False, prefix: str = "office_") -> list[str]:
    """The order the rollout takes the hosts in.

    Offices in name order (hosts without an office last), hosts in inventory order within an office. One
    after another (``parallel=False``): every host of the first office, then the next office. In parallel:
    round robin, the first host of every office, then the second of every office, and so on, so a batch of
    N hosts takes one host from each of N offices.
    """
    names = _str_list(hosts, "the hosts", "fleet_rollout_order")
    offices = fleet_offices(names, groups, prefix)
    by_office: dict[str, list[str]] = {}
    for host in names:
        by_office.setdefault(offices[host], []).append(host)
    order = sorted(by_office, key=lambda office: (office == NO_OFFICE, office))
    if not parallel:
        return [host for office in order for host in by_office[office]]
    result = []
    for rank in range(max((len(v) for v in by_office.values()), default=0)):
        result.extend(by_office[office][rank] for office in order if rank < len(by_office[office]))
    return result


def _report_key(report: Mapping[str, Any]) -> tuple[bool, str, str]:
    office = report.get("office") or NO_OFFICE
    return (office == NO_OFFICE, office, report["host"])


def _reports(value: Any, filter_name: str, missing: Any = None) -> list[dict[str, Any]]:
    if missing is not None and not isinstance(missing, Mapping):
        raise AnsibleFilterError(f"{filter_name} expects missing as a dict of host name to office, got {missing!r}")
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AnsibleFilterError(f"{filter_name} expects a list of host reports, got {value!r}")
    reports = []
    for item in value:
        if not isinstance(item, Mapping) or not item.get("host"):
            raise AnsibleFilterError(f"{filter_name}: a host report must be a dict with 'host', got {item!r}")
        reports.append(dict(item))
    for host, office in (missing or {}).items():
        detail = "no report (unreachable, or failed gathering)"
        gate = {"service": "host", "gate": "report", "ok": False, "detail": detail}
        reports.append({"host": str(host), "office": office, "health": [gate]})
    return sorted(reports, key=_report_key)


def _version(report: Mapping[str, Any], service: str) -> str:
    value = (report.get("versions") or {}).get(service)
    return "" if value in ABSENT else str(value)


def fleet_drift(value: Any) -> list[dict[str, Any]]:
    """Services that run in different versions on different hosts, with the hosts and offices of each version.

    ``between_offices`` is true when the offices do not all run the same set of versions (the drift the
    report calls out first); a difference between two hosts of one office alone is still listed.
    """
    reports = _reports(value, "fleet_drift")
    drift = []
    services = list(SERVICES) + sorted({s for r in reports for s in (r.get("versions") or {})} - set(SERVICES))
    for service in services:
        versions: dict[str, dict[str, list[str]]] = {}
        for report in reports:
            version = _version(report, service)
            if not version:
                continue
            entry = versions.setdefault(version, {"hosts": [], "offices": []})
            entry["hosts"].append(report["host"])
            office = report.get("office") or NO_OFFICE
            if office not in entry["offices"]:
                entry["offices"].append(office)
        if len(versions) < 2:
            continue
        per_office: dict[str, set[str]] = {}
        for version, entry in versions.items():
            for office in entry["offices"]:
                per_office.setdefault(office, set()).add(version)
        between = len({frozenset(v) for v in per_office.values()}) > 1
        drift.append(
            {
                "service": service,
                "label": SERVICE_LABELS.get(service, service),
                "between_offices": between,
                "versions": [
                    {"version": version, "hosts": entry["hosts"], "offices": entry["offices"]}
                    for version, entry in sorted(versions.items())
                ],
            }
        )
    return drift


def _failures(report: Mapping[str, Any]) -> list[str]:
    return [f"{g.get('gate')}: {g.get('detail')}" for g in report.get("health") or [] if not g.get("ok")]


def _health_text(report: Mapping[str, Any]) -> str:
    failed = _failures(report)
    if failed:
        return "FAILED " + "; ".join(failed)
    gates = report.get("health") or []
    return f"ok ({len(gates)} gates)" if gates else "no gates"


def _gpu_text(report: Mapping[str, Any]) -> str:
    gpus = report.get("gpus") or []
    if not gpus:
        return "none (CPU)"
    assignment = report.get("gpu_assignment") or {}
    users: dict[Any, list[str]] = {}
    for name, selection in sorted(assignment.items()):
        try:
            chosen = resolve_selection(list(gpus), selection, name)
        except AnsibleFilterError as exc:
            users.setdefault("error", []).append(str(exc))
            continue
        for gpu in chosen:
            users.setdefault(gpu.get("index"), []).append(name.removesuffix("_gpus"))
    parts = []
    for gpu in gpus:
        index = gpu.get("index")
        memory = gpu.get("memory_total_mib")
        text = f"GPU{index} {gpu.get('name', '?')}"
        if memory:
            text += f" {int(memory) // 1024} GiB"
        parts.append(f"{text} → {', '.join(users.get(index, [])) or 'unassigned'}")
    return "; ".join(parts + [f"assignment error: {error}" for error in users.get("error", [])])


def _reboot_text(report: Mapping[str, Any]) -> str:
    if not report.get("reboot_pending"):
        return "no"
    reasons = report.get("reboot_reasons") or []
    return "YES" + (f": {'; '.join(reasons)}" if reasons else "")


def _row(report: Mapping[str, Any]) -> dict[str, str]:
    row = {"host": report["host"]}
    for service in SERVICES:
        row[service] = _version(report, service) or "—"
    row["gpus"] = _gpu_text(report)
    row["models"] = ", ".join(report.get("models") or []) or "—"
    row["health"] = _health_text(report)
    row["reboot"] = _reboot_text(report)
    return row


COLUMNS = (
    [("host", "Host")]
    + [(s, SERVICE_LABELS[s]) for s in SERVICES]
    + [
        ("gpus", "GPUs → assignment"),
        ("models", "Models"),
        ("health", "Health"),
        ("reboot", "Reboot pending"),
    ]
)


def _by_office(reports: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    offices: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        offices.setdefault(report.get("office") or NO_OFFICE, []).append(report)
    return offices


def _summary(reports: list[dict[str, Any]], drift: list[dict[str, Any]]) -> dict[str, Any]:
    failing = [r["host"] for r in reports if _failures(r)]
    rebooting = [r["host"] for r in reports if r.get("reboot_pending")]
    return {"hosts": len(reports), "failing": failing, "rebooting": rebooting, "drift": len(drift)}


def _drift_line(item: Mapping[str, Any]) -> str:
    where = "; ".join(
        f"{v['version']} on {', '.join(v['hosts'])} ({', '.join(v['offices'])})" for v in item["versions"]
    )
    scope = "between offices" if item["between_offices"] else "within an office"
    return f"{item['label']} differs {scope}: {where}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fleet_report_markdown(
    value: Any, title: str = "AI stack fleet report", generated: str = "", missing: Any = None
) -> str:
    """The fleet report as Markdown: a summary, the drift, and one table per office."""
    reports = _reports(value, "fleet_report_markdown", missing)
    drift = fleet_drift(reports)
    summary = _summary(reports, drift)
    lines = [f"# {title}", ""]
    if generated:
        lines += [f"Generated {generated}.", ""]
    lines.append(
        f"{summary['hosts']} hosts; failing health gates: {', '.join(summary['failing']) or 'none'}; "
        f"reboot pending: {', '.join(summary['rebooting']) or 'none'}; drifting services: {summary['drift']}."
    )
    lines += ["", "## Drift", ""]
    lines += [f"- **DRIFT** {_drift_line(item)}" for item in drift] or ["No drift: every service runs one version."]
    for office, members in _by_office(reports).items():
        lines += ["", f"## {office}", ""]
        lines.append("| " + " | ".join(label for _key, label in COLUMNS) + " |")
        lines.append("|" + "---|" * len(COLUMNS))
        for report in members:
            row = _row(report)
            cells = [_md_cell(row[key]) for key, _label in COLUMNS]
            if _failures(report):
                cells[0] = f"**{cells[0]}** ❌"
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#1d1d1f;background:#fff}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border:1px solid #c8c8cc;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f3}
tr.failed td{background:#fde2e1}
td.failed{color:#a1120b;font-weight:bold}
td.drift{background:#fff4cc}
.drift-list li{margin:.2em 0}
.callout{border-left:4px solid #d49b00;background:#fff8e1;padding:.6em 1em}
.ok{color:#1a7f37}
""".strip()


def fleet_report_html(
    value: Any, title: str = "AI stack fleet report", generated: str = "", missing: Any = None
) -> str:
    """The fleet report as one self-contained HTML page (inline CSS, no scripts, no external assets)."""
    reports = _reports(value, "fleet_report_html", missing)
    drift = fleet_drift(reports)
    summary = _summary(reports, drift)
    drifting = {item["service"] for item in drift}
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if generated:
        out.append(f"<p>Generated {esc(generated)}.</p>")
    out.append(
        f'<p id="summary">{summary["hosts"]} hosts; failing health gates: '
        f"{esc(', '.join(summary['failing']) or 'none')}; reboot pending: "
        f"{esc(', '.join(summary['rebooting']) or 'none')}; drifting services: {summary['drift']}.</p>"
    )
    if drift:
        out.append('<div class="callout" id="drift"><h2>Drift</h2><ul class="drift-list">')
        out += [f"<li><strong>DRIFT</strong> {esc(_drift_line(item))}</li>" for item in drift]
        out.append("</ul></div>")
    else:
        out.append('<p id="drift" class="ok">No drift: every service runs one version.</p>')
    for office, members in _by_office(reports).items():
        out.append(f"<h2>{esc(office)}</h2>")
        out.append(f'<table class="office" data-office="{esc(office, quote=True)}"><thead><tr>')
        out += [f"<th>{esc(label)}</th>" for _key, label in COLUMNS]
        out.append("</tr></thead><tbody>")
        for report in members:
            row = _row(report)
            failed = bool(_failures(report))
            out.append(f'<tr class="{"failed" if failed else "ok"}" data-host="{esc(report["host"], quote=True)}">')
            for key, _label in COLUMNS:
                classes = []
                if key == "health" and failed:
                    classes.append("failed")
                if key == "reboot" and report.get("reboot_pending"):
                    classes.append("failed")
                if key in drifting and row[key] != "—":
                    classes.append("drift")
                attr = f' class="{" ".join(classes)}"' if classes else ""
                out.append(f"<td{attr}>{esc(row[key])}</td>")
            out.append("</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


class FilterModule:
    """Fleet rollout and report filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "fleet_offices": fleet_offices,
            "fleet_rollout_order": fleet_rollout_order,
            "fleet_drift": fleet_drift,
            "fleet_report_markdown": fleet_report_markdown,
            "fleet_report_html": fleet_report_html,
        }
