# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that turn ``nvidia_gpu_info`` results into per-service GPU settings.

The documentation of each filter lives in the side-car ``<filter name>.yml`` file next to
this one, because one Python file holds several filters.
"""

from __future__ import annotations

import math
import typing as t

from ansible.errors import AnsibleFilterError

CUDA_ORDER = "PCI_BUS_ID"
# CUDA treats an invalid device id as "no devices", which forces CPU inference.
CPU_DEVICES = "-1"
UUID_PREFIX = "GPU-"
MIN_UUID_PREFIX = 8
SERVICES = ("llm", "image")


def _gpu_list(gpus: t.Any, filter_name: str) -> list[dict[str, t.Any]]:
    """Accept the module's ``gpus`` list, or the whole registered result for convenience."""
    if isinstance(gpus, dict) and "gpus" in gpus:
        gpus = gpus["gpus"]
    if not isinstance(gpus, list) or not all(isinstance(gpu, dict) and "index" in gpu for gpu in gpus):
        raise AnsibleFilterError(
            f"{filter_name}: expected the 'gpus' list returned by selfhosted.ai_stack.nvidia_gpu_info, "
            f"got {type(gpus).__name__}: {gpus!r}"
        )
    return gpus


def _describe(gpus: list[dict[str, t.Any]]) -> str:
    if not gpus:
        return "this host has no NVIDIA GPU"
    listed = ", ".join(f"{gpu['index']} ({gpu.get('uuid') or 'no UUID'}, {gpu.get('name')})" for gpu in gpus)
    return f"this host has: {listed}"


def _selection_items(selection: t.Any) -> list[t.Any]:
    """Normalise a selection to a list; a string may be comma separated like CUDA_VISIBLE_DEVICES."""
    if selection is None:
        return []
    if isinstance(selection, str):
        return [part.strip() for part in selection.split(",") if part.strip()]
    if isinstance(selection, (list, tuple)):
        return list(selection)
    return [selection]


def _is_digits(value: str) -> bool:
    # isdigit() alone accepts e.g. superscripts, which int() rejects.
    value = value.strip()
    return value.isascii() and value.isdigit()


def _strip_uuid(value: str) -> str:
    value = value.strip().lower()
    return value[len(UUID_PREFIX) :] if value.startswith(UUID_PREFIX.lower()) else value


def _match_index(gpus: list[dict[str, t.Any]], index: int) -> list[dict[str, t.Any]]:
    return [gpu for gpu in gpus if gpu["index"] == index]


def _match_uuid(gpus: list[dict[str, t.Any]], value: str, variable: str) -> list[dict[str, t.Any]]:
    """Full UUID or a unique prefix of at least 8 characters (the ``GPU-`` part not counted)."""
    wanted = _strip_uuid(value)
    if len(wanted) < MIN_UUID_PREFIX:
        raise AnsibleFilterError(
            f"{variable}: {value!r} is neither a GPU index nor a UUID prefix of at least "
            f"{MIN_UUID_PREFIX} characters; {_describe(gpus)}"
        )
    matches = [gpu for gpu in gpus if gpu.get("uuid") and _strip_uuid(gpu["uuid"]).startswith(wanted)]
    if len(matches) > 1:
        raise AnsibleFilterError(f"{variable}: {value!r} matches more than one GPU; {_describe(gpus)}")
    return matches


def _match_item(gpus: list[dict[str, t.Any]], item: t.Any, variable: str) -> list[dict[str, t.Any]]:
    # bool is an int subclass; `true` in YAML is almost certainly a mistake, not GPU 1.
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise AnsibleFilterError(
            f"{variable}: {item!r} is not a GPU index, UUID or 'all' (got {type(item).__name__}); {_describe(gpus)}"
        )
    if isinstance(item, str) and item.strip().lower() == "all":
        return list(gpus)
    if isinstance(item, int) or _is_digits(item):
        matches = _match_index(gpus, int(item))
    else:
        matches = _match_uuid(gpus, item, variable)
    if not matches:
        raise AnsibleFilterError(f"{variable}: no GPU matches {item!r}; {_describe(gpus)}")
    return matches


def resolve_selection(gpus: list[dict[str, t.Any]], selection: t.Any, variable: str) -> list[dict[str, t.Any]]:
    """The GPUs a selection names, in the selection's order and without duplicates.

    ``[]``/empty/``None`` select no GPU (CPU). Items are indexes (int or digit string),
    UUIDs or UUID prefixes, or ``all``. Errors name ``variable`` so the user knows what to fix.
    """
    chosen: list[dict[str, t.Any]] = []
    seen: set[int] = set()
    for item in _selection_items(selection):
        for gpu in _match_item(gpus, item, variable):
            if gpu["index"] not in seen:
                seen.add(gpu["index"])
                chosen.append(gpu)
    return chosen


def gpu_assignment(gpus: t.Any, selection: t.Any, variable: str = "gpus") -> dict[str, str]:
    """Environment that pins a service to the selected GPUs by UUID (or to the CPU)."""
    chosen = resolve_selection(_gpu_list(gpus, "gpu_assignment"), selection, variable)
    if not chosen:
        return {"CUDA_VISIBLE_DEVICES": CPU_DEVICES, "CUDA_DEVICE_ORDER": CUDA_ORDER}
    missing = [gpu for gpu in chosen if not gpu.get("uuid")]
    if missing:
        # Without a driver only the PCI scan answers; its indexes may not match CUDA's, so
        # falling back to them could silently put a service on the wrong GPU.
        raise AnsibleFilterError(
            f"{variable}: GPU {missing[0]['index']} ({missing[0].get('name')}) has no UUID because no NVIDIA driver "
            "answered; install the NVIDIA driver first and run selfhosted.ai_stack.nvidia_gpu_info again"
        )
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(gpu["uuid"] for gpu in chosen),
        "CUDA_DEVICE_ORDER": CUDA_ORDER,
    }


def gpu_default_selection(gpus: t.Any, service: str) -> list[int]:
    """Spread the LLM and image services over the first two GPUs when there are two or more."""
    gpu_list = _gpu_list(gpus, "gpu_default_selection")
    if service not in SERVICES:
        raise AnsibleFilterError(
            f"gpu_default_selection: service must be one of {', '.join(SERVICES)}, got {service!r}"
        )
    indexes = sorted(gpu["index"] for gpu in gpu_list)
    if not indexes:
        return []
    if service == "image" and len(indexes) >= 2:
        return [indexes[1]]
    return [indexes[0]]


def _plan_mib(entry: dict[str, t.Any], position: int) -> int:
    mib = entry.get("mib")
    # bool is an int subclass; digit strings come from extra vars and are fine.
    valid = (isinstance(mib, int) and not isinstance(mib, bool)) or (isinstance(mib, str) and _is_digits(mib))
    if not valid or int(mib) < 0:
        raise AnsibleFilterError(f"gpu_vram_plan: plan[{position}].mib must be a whole number of MiB >= 0, got {mib!r}")
    return int(mib)


def _plan_entry(entry: t.Any, position: int) -> tuple[str, t.Any, int]:
    if not isinstance(entry, dict) or "service" not in entry:
        raise AnsibleFilterError(
            f"gpu_vram_plan: plan[{position}] must be a dict with service, gpus and mib, got {entry!r}"
        )
    return str(entry["service"]), entry.get("gpus"), _plan_mib(entry, position)


def gpu_vram_plan(gpus: t.Any, plan: t.Any) -> list[dict[str, t.Any]]:
    """Sum the planned VRAM per GPU; a service spread over N GPUs needs mib/N (rounded up) on each."""
    gpu_list = _gpu_list(gpus, "gpu_vram_plan")
    if not isinstance(plan, list):
        raise AnsibleFilterError(f"gpu_vram_plan: plan must be a list, got {type(plan).__name__}")
    report = {
        gpu["index"]: {
            "index": gpu["index"],
            "uuid": gpu.get("uuid"),
            "name": gpu.get("name"),
            "memory_total_mib": gpu.get("memory_total_mib"),
            "planned_mib": 0,
            "fits": None,
            "services": [],
        }
        for gpu in gpu_list
    }
    for position, entry in enumerate(plan):
        service, selection, mib = _plan_entry(entry, position)
        chosen = resolve_selection(gpu_list, selection, f"{service} gpus")
        for gpu in chosen:
            row = report[gpu["index"]]
            row["planned_mib"] += math.ceil(mib / len(chosen))
            row["services"].append(service)
    for row in report.values():
        total = row["memory_total_mib"]
        # Unknown size (PCI scan only) cannot be judged either way.
        row["fits"] = None if total is None else row["planned_mib"] <= total
    return [report[index] for index in sorted(report)]


class FilterModule:
    """GPU selection filters for selfhosted.ai_stack."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {
            "gpu_assignment": gpu_assignment,
            "gpu_default_selection": gpu_default_selection,
            "gpu_vram_plan": gpu_vram_plan,
        }
