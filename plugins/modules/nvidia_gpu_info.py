#!/usr/bin/python
# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nvidia_gpu_info
short_description: Report the NVIDIA GPUs, driver and NVLink topology of a host
version_added: 0.1.0
description:
  - Detects NVIDIA GPUs and returns a typed list of them together with the driver and CUDA versions,
    the NVLink topology and whether the C(nvidia) or C(nouveau) kernel module is loaded.
  - The sources in O(sources) are tried in order and the first one that answers wins.
    V(nvml) uses the NVML Python bindings (C(nvidia-ml-py), import name C(pynvml)) and is the only source
    that reports NVLink. V(nvidia-smi) parses C(nvidia-smi -q -x). V(pci) scans C(/sys/bus/pci/devices),
    so GPUs are found even before a driver is installed (then without UUID, memory or driver data).
  - A host without GPUs is not an error; RV(gpu_count) is then V(0). The module fails only when none
    of the selected sources can run at all.
  - Read-only; it never changes the host.
author:
  - selfhosted.ai_stack maintainers (@selfhosted)
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    support: none
    description: Returns no diff; the module only reads the host, so there is never a change to show.
  idempotent:
    support: full
    description: When run twice in a row outside check mode, with the same arguments, the second invocation
      indicates no change.
options:
  sources:
    description:
      - The detection sources to try, in this order. The first one that answers is used.
      - Restrict this to V(nvml) to require NVLink data, or to V(pci) to ignore the driver.
    type: list
    elements: str
    choices: [nvml, nvidia-smi, pci]
    default: [nvml, nvidia-smi, pci]
  nvidia_smi_path:
    description:
      - Name or absolute path of the C(nvidia-smi) binary, looked up in E(PATH) and the sbin directories.
    type: str
    default: nvidia-smi
requirements:
  - For the V(nvml) source, the C(nvidia-ml-py) Python package on the managed node's Python interpreter
    and the NVIDIA driver (C(libnvidia-ml.so.1)).
notes:
  - NVML and nvidia-smi number GPUs in PCI bus order, which can differ from CUDA's default order; pin
    services by UUID with the P(selfhosted.ai_stack.gpu_assignment#filter) filter.
  - Only V(nvml) reports NVLink; with the other sources RV(nvlink.pairs) is empty and link counts are V(0).
seealso:
  - plugin: selfhosted.ai_stack.gpu_assignment
    plugin_type: filter
  - plugin: selfhosted.ai_stack.gpu_default_selection
    plugin_type: filter
  - plugin: selfhosted.ai_stack.gpu_vram_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Detect NVIDIA GPUs
  selfhosted.ai_stack.nvidia_gpu_info:
  register: gpu_info

- name: Require a driver that answers (no PCI-only fallback)
  selfhosted.ai_stack.nvidia_gpu_info:
    sources: [nvml, nvidia-smi]
    nvidia_smi_path: /usr/bin/nvidia-smi
  register: gpu_info

- name: Fail early when the nouveau driver is still loaded
  ansible.builtin.assert:
    that: not gpu_info.nouveau_loaded
    fail_msg: "nouveau is loaded; blacklist it and reboot before installing the NVIDIA driver"

- name: Pin Ollama to its GPUs by UUID (default GPU 0, or CPU without GPUs)
  ansible.builtin.set_fact:
    ollama_gpu_environment: >-
      {{ gpu_info.gpus | selfhosted.ai_stack.gpu_assignment(
           ollama_gpus | default(gpu_info.gpus | selfhosted.ai_stack.gpu_default_selection('llm')),
           'ollama_gpus') }}
  # -> {"CUDA_VISIBLE_DEVICES": "GPU-1f0c...", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}

- name: Show the GPUs linked by NVLink
  ansible.builtin.debug:
    msg: "NVLink pairs: {{ gpu_info.nvlink.pairs }}"
"""

RETURN = r"""
gpus:
  description: The GPUs found, in NVML/nvidia-smi (PCI bus) order.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: NVML/nvidia-smi index.
      type: int
      sample: 0
    uuid:
      description: GPU UUID; V(null) when only the PCI scan answered (no driver yet).
      type: str
      sample: GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f
    name:
      description: Product name; from a small table or C(NVIDIA device 0x....) for the PCI scan.
      type: str
      sample: NVIDIA GeForce RTX 2080 Ti
    pci_bus_id:
      description: PCI bus id in NVML form (8 hex digit domain, upper case).
      type: str
      sample: "00000000:01:00.0"
    memory_total_mib:
      description: Total framebuffer memory in MiB; V(null) when unknown.
      type: int
      sample: 22528
    memory_used_mib:
      description: Used framebuffer memory in MiB; V(null) when unknown.
      type: int
      sample: 1
    compute_capability:
      description: CUDA compute capability; V(null) when unknown (PCI scan, older nvidia-smi).
      type: str
      sample: "7.5"
    persistence_mode:
      description: Whether persistence mode is on; V(null) when unknown.
      type: bool
      sample: true
    nvlink_active_links:
      description: Number of active NVLink links (V(0) without NVLink or without NVML).
      type: int
      sample: 2
  sample:
    - index: 0
      uuid: GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f
      name: NVIDIA GeForce RTX 2080 Ti
      pci_bus_id: "00000000:01:00.0"
      memory_total_mib: 22528
      memory_used_mib: 1
      compute_capability: "7.5"
      persistence_mode: true
      nvlink_active_links: 2
    - index: 1
      uuid: GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d
      name: NVIDIA GeForce RTX 2080 Ti
      pci_bus_id: "00000000:02:00.0"
      memory_total_mib: 22528
      memory_used_mib: 1
      compute_capability: "7.5"
      persistence_mode: true
      nvlink_active_links: 2
gpu_count:
  description: Number of GPUs in RV(gpus).
  returned: always
  type: int
  sample: 2
driver_version:
  description: NVIDIA driver version; for the PCI scan the loaded kernel module's version, if any.
  returned: always
  type: str
  sample: 550.54.15
cuda_driver_version:
  description: Highest CUDA version the driver supports (as shown by nvidia-smi); V(null) without a driver.
  returned: always
  type: str
  sample: "12.4"
nvlink:
  description: NVLink topology (from NVML only).
  returned: always
  type: dict
  contains:
    pairs:
      description: Sorted, unique pairs of GPU indexes joined by at least one active NVLink.
      type: list
      elements: list
      sample: [[0, 1]]
    links:
      description: Active NVLink count per GPU; keys are GPU indexes as strings.
      type: dict
      sample: {"0": 2, "1": 2}
  sample:
    pairs: [[0, 1]]
    links: {"0": 2, "1": 2}
driver_loaded:
  description: Whether the C(nvidia) kernel module is loaded (from C(/proc/modules)).
  returned: always
  type: bool
  sample: true
nouveau_loaded:
  description: Whether the C(nouveau) kernel module is loaded; it must be blacklisted before the NVIDIA driver works.
  returned: always
  type: bool
  sample: false
source:
  description: The source that answered; V(none) only in a failure result.
  returned: always
  type: str
  choices: [nvml, nvidia-smi, pci, none]
  sample: nvml
errors:
  description: Why sources tried before the one that answered (or all of them) failed, for debugging.
  returned: always
  type: list
  elements: str
  sample: []
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.ai_stack.plugins.module_utils._nvidia_gpu import (
    HINT,
    SOURCES,
    any_source_ran,
    detect,
)


def _argument_spec() -> dict[str, t.Any]:
    return {
        "sources": {"type": "list", "elements": "str", "choices": list(SOURCES), "default": list(SOURCES)},
        "nvidia_smi_path": {"type": "str", "default": "nvidia-smi"},
    }


def run_module(module: AnsibleModule) -> None:
    """Detect and exit; info module, so never ``changed`` and identical in check mode."""
    # None when not found: detect() then records nvidia-smi as unavailable and moves on.
    nvidia_smi = module.get_bin_path(module.params["nvidia_smi_path"])
    result = detect(
        run_command=module.run_command,
        sources=module.params["sources"],
        nvidia_smi=nvidia_smi,
    )
    if not any_source_ran(result):
        module.fail_json(
            msg=f"No GPU information source could run ({'; '.join(result['errors'])}); {HINT}.",
            changed=False,
            **result,
        )
    module.exit_json(changed=False, **result)


def main() -> None:
    module = AnsibleModule(argument_spec=_argument_spec(), supports_check_mode=True)
    run_module(module)


if __name__ == "__main__":
    main()
