# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site preflight's checks, as one filter: what a host has against what the stack needs.

Documentation: preflight_problems.yml next to this file. The preflight role gathers the facts
(read-only) and fails with every problem this returns, so a host is refused before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

GIB = 1024**3


def _problem(check: str, problem: str, fix: str) -> dict[str, str]:
    return {"check": check, "problem": problem, "fix": fix}


def _df(output: str, paths: Sequence[str]) -> dict[str, tuple[str, int]]:
    """``df -P -B1 PATH...``'s lines, one per path in order: path to (mount point, bytes available)."""
    lines = [line for line in output.splitlines()[1:] if line.strip()]
    if len(lines) != len(paths):
        raise ValueError(f"df reported {len(lines)} file systems for {len(paths)} paths")
    found = {}
    for path, line in zip(paths, lines, strict=True):
        fields = line.split(None, 5)
        found[path] = (fields[5], int(fields[3]))
    return found


def _os(host: Mapping[str, Any], supported: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    name, version = str(host.get("distribution", "")), str(host.get("distribution_version", ""))
    major = version.split(".", maxsplit=1)[0]
    for entry in supported:
        wanted = str(entry["version"])
        if name == entry["distribution"] and (version == wanted or major == wanted):
            return []
    allowed = ", ".join(f"{e['distribution']} {e['version']}" for e in supported)
    return [
        _problem(
            "operating system",
            f"{name or 'unknown'} {version or '?'} is not supported",
            f"use one of {allowed}, or add it to preflight_supported_os at your own risk",
        )
    ]


def _space(host: Mapping[str, Any], min_free_gb: Mapping[str, Any]) -> list[dict[str, str]]:
    paths = sorted(min_free_gb)
    if not paths:
        return []
    mounts = _df(str(host.get("df", "")), paths)
    # Paths on one file system add up: /opt and /var on the root file system need both amounts there.
    need: dict[str, float] = {}
    free: dict[str, float] = {}
    on: dict[str, list[str]] = {}
    for path in paths:
        point, available = mounts[path]
        need[point] = need.get(point, 0.0) + float(min_free_gb[path])
        free[point] = available / GIB
        on.setdefault(point, []).append(path)
    problems = []
    for point, gib in sorted(need.items()):
        if gib > 0 and free[point] < gib:
            for_paths = " + ".join(f"{p} ({float(min_free_gb[p]):g} GiB)" for p in on[point])
            problems.append(
                _problem(
                    "free space",
                    f"{point} has {free[point]:.1f} GiB free, needs {gib:g} GiB for {for_paths}",
                    f"free or add space on {point}, or lower preflight_min_free_gb for {', '.join(on[point])}",
                )
            )
    return problems


def _swap(host: Mapping[str, Any], min_swap_mb: int) -> list[dict[str, str]]:
    swap = int(host.get("swaptotal_mb") or 0)
    if swap >= int(min_swap_mb):
        return []
    return [
        _problem(
            "swap",
            f"{swap} MiB of swap, needs {int(min_swap_mb)} MiB (model loads and the Open WebUI first start peak)",
            "add a swap file (fallocate -l 8G /swapfile && chmod 600 /swapfile && mkswap /swapfile && swapon "
            "/swapfile, and list it in /etc/fstab), or set preflight_min_swap_mb: 0",
        )
    ]


def _gpus(host: Mapping[str, Any], selections: Mapping[str, Any], require_gpu: bool) -> list[dict[str, str]]:
    gpus = host.get("gpus") or []
    problems = []
    if require_gpu and not gpus:
        problems.append(
            _problem(
                "GPUs",
                "no NVIDIA GPU found (nvidia_cuda_require_gpu is true)",
                "check the card is seated and seen on the PCI bus (lspci | grep -i nvidia), "
                "or set nvidia_cuda_require_gpu: false to run the services on the CPU",
            )
        )
    uuids = {str(g.get("uuid")) for g in gpus if g.get("uuid")}
    for variable, selection in sorted(selections.items()):
        if selection in (None, "all", []):
            continue
        for item in selection if isinstance(selection, list) else [selection]:
            if isinstance(item, int) and not isinstance(item, bool):
                if item >= len(gpus):
                    problems.append(
                        _problem(
                            "GPU assignment",
                            f"{variable} selects GPU {item}, but the host has {len(gpus)} GPU(s)",
                            (
                                f"set {variable} to indexes below {len(gpus)}, to UUIDs, or to [] for the CPU"
                                if gpus
                                else f"set {variable}: [] to run it on the CPU, or install the GPU first"
                            ),
                        )
                    )
            elif uuids and not any(u.startswith(str(item)) for u in uuids):
                problems.append(
                    _problem(
                        "GPU assignment",
                        f"{variable} selects {item!r}, which matches none of the host's GPUs",
                        f"use one of {', '.join(sorted(uuids))} (nvidia-smi -L)",
                    )
                )
    return problems


def _listening(output: str) -> set[int]:
    """The ports of ``ss -ltnH``'s lines (every TCP listener, also those whose process ss cannot see)."""
    ports = set()
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            ports.add(int(fields[3].rpartition(":")[2]))
    return ports


def _ports(host: Mapping[str, Any], ports: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    problems = []
    listeners = host.get("listeners") or []
    listening = _listening(str(host.get("ss", "")))
    for wanted in ports:
        port = int(wanted["port"])
        processes = set(wanted.get("processes") or [])
        users = set(wanted.get("users") or [])
        owners = [entry for entry in listeners if int(entry.get("port", -1)) == port]
        if not owners and port in listening:
            # ss lists the socket but not its process (it cannot read another user's /proc/<pid>/fd
            # without CAP_SYS_PTRACE, as in a container): taken, by whom is unknown.
            owners = [{"name": "a process this check cannot see", "address": "?"}]
        for listener in owners:
            name, user = str(listener.get("name", "")), str(listener.get("user", ""))
            if name in processes or user in users:
                continue  # the service itself, on a host that already runs it
            problems.append(
                _problem(
                    "ports",
                    f"port {port} (for {wanted['service']}) is taken by {name or '?'} (pid "
                    f"{listener.get('pid', '?')}, user {user or '?'}) on {listener.get('address', '?')}",
                    f"stop or move that program (ss -ltnp 'sport = :{port}'), or give {wanted['service']} another port"
                    + (f" with {wanted['variable']}" if wanted.get("variable") else ""),
                )
            )
            break
    return problems


def preflight_problems(host: Mapping[str, Any], requirements: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every problem that keeps ``host`` from taking the stack, as ``{check, problem, fix}`` dicts.

    ``host``: ``distribution``, ``distribution_version``, ``df`` (the output of ``df -P -B1`` for the
    paths of ``min_free_gb``, sorted), ``swaptotal_mb``, ``gpus`` (``nvidia_gpu_info``'s list),
    ``listeners`` (TCP listeners as ``community.general.listen_ports_facts`` reports them) and ``ss``
    (the output of ``ss -ltnH``, which also lists sockets whose process cannot be seen).
    ``requirements``: ``supported_os``, ``min_free_gb`` (path to GiB), ``min_swap_mb``,
    ``gpu_selections`` (variable name to selection), ``require_gpu`` and ``ports`` (``port``,
    ``service``, ``processes``, ``users``).
    """
    if not isinstance(host, Mapping) or not isinstance(requirements, Mapping):
        raise AnsibleFilterError("preflight_problems expects two dicts: the host's facts and the requirements")
    try:
        return [
            *_os(host, requirements.get("supported_os") or []),
            *_space(host, requirements.get("min_free_gb") or {}),
            *_swap(host, requirements.get("min_swap_mb") or 0),
            *_gpus(host, requirements.get("gpu_selections") or {}, boolean(requirements.get("require_gpu", True))),
            *_ports(host, requirements.get("ports") or []),
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"preflight_problems: malformed input ({exc})") from exc


class FilterModule:
    """The site preflight's checks."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"preflight_problems": preflight_problems}
