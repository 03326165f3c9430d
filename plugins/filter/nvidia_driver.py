# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters that choose NVIDIA driver packaging from ``nvidia_gpu_info`` results.

The documentation of each filter lives in the side-car ``<filter name>.yml`` file next to
this one.
"""

from __future__ import annotations

import re
import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._nvidia_gpu import normalize_pci_bus_id

OPEN = "open"
PROPRIETARY = "proprietary"

# What each GPU generation can run (NVIDIA, "NVIDIA Transitions Fully Towards Open-Source GPU
# Kernel Modules", R560): Maxwell, Pascal and Volta only the proprietary modules; Turing, Ampere,
# Ada and Hopper both (open recommended); Blackwell and newer only the open modules.
_LEGACY = "legacy"  # Kepler and older: no current driver branch supports them at all
_PROPRIETARY_ONLY = "proprietary-only"
_EITHER = "either"
_OPEN_ONLY = "open-only"

_CC_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*$")
_HEX_RE = re.compile(r"^(?:0[xX])?([0-9a-fA-F]{1,4})$")

# PCI device id ranges (vendor 0x10de) by first id of each generation, used only when the
# compute capability is unknown, i.e. before a driver answers. Ids rise with each generation:
# Maxwell starts at GM108 0x1340, Turing at TU102 0x1e02 (every Volta GV100 id is below
# 0x1e00), Blackwell at GB100 0x2900 (every Ada and Hopper id is below).
_PCI_RANGES: tuple[tuple[int, str, str], ...] = (
    (0x2900, "Blackwell or newer", _OPEN_ONLY),
    (0x1E00, "Turing, Ampere, Ada Lovelace or Hopper", _EITHER),
    (0x1340, "Maxwell, Pascal or Volta", _PROPRIETARY_ONLY),
    (0x0000, "Kepler or older", _LEGACY),
)


def _architecture(major: int, minor: int) -> tuple[str, str]:
    """Architecture name and module support for a CUDA compute capability."""
    if major >= 10:
        return "Blackwell or newer", _OPEN_ONLY
    table = {
        9: ("Hopper", _EITHER),
        8: ("Ada Lovelace" if minor >= 9 else "Ampere", _EITHER),
        6: ("Pascal", _PROPRIETARY_ONLY),
        5: ("Maxwell", _PROPRIETARY_ONLY),
    }
    if major == 7:
        return ("Turing", _EITHER) if minor >= 5 else ("Volta", _PROPRIETARY_ONLY)
    return table.get(major, ("Kepler or older", _LEGACY))


def _gpu_list(gpus: t.Any) -> list[dict[str, t.Any]]:
    """Accept the module's ``gpus`` list, or the whole registered result for convenience."""
    if isinstance(gpus, dict) and "gpus" in gpus:
        gpus = gpus["gpus"]
    if not isinstance(gpus, list) or not all(isinstance(gpu, dict) and "index" in gpu for gpu in gpus):
        raise AnsibleFilterError(
            "nvidia_kernel_modules: expected the 'gpus' list returned by selfhosted.ai_stack.nvidia_gpu_info, "
            f"got {type(gpus).__name__}: {gpus!r}"
        )
    return gpus


def _device_ids(pci_device_ids: t.Any) -> dict[str, int]:
    """``{pci bus id: device id}`` with bus ids in NVML form and ids as int (from ``0x1e04``, ``1E04`` or int)."""
    if pci_device_ids is None:
        return {}
    if not isinstance(pci_device_ids, dict):
        raise AnsibleFilterError(
            "nvidia_kernel_modules: pci_device_ids must be a dict of PCI bus id to PCI device id, "
            f"got {type(pci_device_ids).__name__}: {pci_device_ids!r}"
        )
    result = {}
    for bus_id, device_id in pci_device_ids.items():
        if isinstance(device_id, int) and not isinstance(device_id, bool):
            value = device_id
        else:
            match = _HEX_RE.match(str(device_id).strip())
            if not match:
                raise AnsibleFilterError(
                    f"nvidia_kernel_modules: PCI device id {device_id!r} of {bus_id} is not a 16 bit hex number"
                )
            value = int(match.group(1), 16)
        result[normalize_pci_bus_id(bus_id)] = value
    return result


def _classify(gpu: dict[str, t.Any], device_ids: dict[str, int]) -> tuple[str, str, str] | None:
    """``(architecture, support, evidence)`` of one GPU; None when nothing identifies it."""
    capability = gpu.get("compute_capability")
    if capability is not None:
        match = _CC_RE.match(str(capability))
        if not match:
            raise AnsibleFilterError(
                f"nvidia_kernel_modules: GPU {gpu['index']} has a malformed compute capability {capability!r}"
            )
        name, support = _architecture(int(match.group(1)), int(match.group(2)))
        return name, support, f"compute capability {match.group(1)}.{match.group(2)}"
    bus_id = gpu.get("pci_bus_id")
    device_id = device_ids.get(normalize_pci_bus_id(bus_id)) if bus_id else None
    if device_id is None:
        return None
    for first_id, name, support in _PCI_RANGES:
        if device_id >= first_id:
            return name, support, f"PCI device id 0x{device_id:04x}"
    return None  # pragma: no cover - the last range starts at 0


def _label(gpu: dict[str, t.Any], name: str, evidence: str) -> str:
    return f"GPU {gpu['index']} ({gpu.get('name')}: {name}, {evidence})"


def nvidia_kernel_modules(
    gpus: t.Any, pci_device_ids: t.Any = None, variable: str = "nvidia_cuda_kernel_modules"
) -> str:
    """``open`` or ``proprietary``: the NVIDIA kernel module flavour every GPU of the host can use."""
    gpu_list = _gpu_list(gpus)
    device_ids = _device_ids(pci_device_ids)
    by_support: dict[str, list[str]] = {}
    for gpu in gpu_list:
        classified = _classify(gpu, device_ids)
        if classified is None:
            raise AnsibleFilterError(
                f"{variable}: cannot tell the generation of GPU {gpu['index']} ({gpu.get('name')}): neither a compute "
                f"capability nor a PCI device id is known; set {variable} to 'open' (Turing and newer) or "
                "'proprietary' (Maxwell, Pascal, Volta)"
            )
        name, support, evidence = classified
        by_support.setdefault(support, []).append(_label(gpu, name, evidence))
    if _LEGACY in by_support:
        raise AnsibleFilterError(
            f"{variable}: {', '.join(by_support[_LEGACY])} is too old for any current NVIDIA driver "
            "(Kepler support ended with branch 470)"
        )
    if _PROPRIETARY_ONLY in by_support and _OPEN_ONLY in by_support:
        raise AnsibleFilterError(
            f"{variable}: no NVIDIA kernel module flavour drives all GPUs of this host: "
            f"{', '.join(by_support[_PROPRIETARY_ONLY])} needs the proprietary modules, "
            f"{', '.join(by_support[_OPEN_ONLY])} needs the open modules"
        )
    if _PROPRIETARY_ONLY in by_support:
        # Mixed old and new GPUs: NVIDIA's advice is to stay on the proprietary modules.
        return PROPRIETARY
    return OPEN


class FilterModule:
    """NVIDIA driver selection filters for selfhosted.ai_stack."""

    def filters(self) -> dict[str, t.Callable[..., t.Any]]:
        return {"nvidia_kernel_modules": nvidia_kernel_modules}
