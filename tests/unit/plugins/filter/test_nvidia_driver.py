# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Table-driven tests for plugins/filter/nvidia_driver.py (GPU generation -> kernel module flavour)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.nvidia_driver import FilterModule, nvidia_kernel_modules


def gpu(index: int, capability: str | None, name: str = "NVIDIA GPU") -> dict[str, t.Any]:
    """A GPU entry as nvidia_gpu_info returns it (PCI-only entries have no capability)."""
    return {
        "index": index,
        "uuid": None if capability is None else f"GPU-0000000{index}-0000-0000-0000-000000000000",
        "name": name,
        "pci_bus_id": f"00000000:0{index + 1}:00.0",
        "memory_total_mib": None,
        "memory_used_mib": None,
        "compute_capability": capability,
        "persistence_mode": None,
        "nvlink_active_links": 0,
    }


GUIDE = [gpu(0, "7.5", "NVIDIA GeForce RTX 2080 Ti"), gpu(1, "7.5", "NVIDIA GeForce RTX 2080 Ti")]


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        pytest.param([], "open", id="no-gpu-nvidia-default"),
        pytest.param(GUIDE, "open", id="guide-two-2080ti-turing"),
        pytest.param([gpu(0, "6.1", "NVIDIA GeForce GTX 1080 Ti")], "proprietary", id="pascal"),
        pytest.param([gpu(0, "5.2")], "proprietary", id="maxwell"),
        pytest.param([gpu(0, "7.0", "Tesla V100")], "proprietary", id="volta"),
        pytest.param([gpu(0, "7.2")], "proprietary", id="volta-xavier"),
        pytest.param([gpu(0, "8.6", "NVIDIA GeForce RTX 3090")], "open", id="ampere"),
        pytest.param([gpu(0, "8.9", "NVIDIA GeForce RTX 4090")], "open", id="ada"),
        pytest.param([gpu(0, "9.0", "NVIDIA H200")], "open", id="hopper"),
        pytest.param([gpu(0, "10.0", "NVIDIA B200")], "open", id="blackwell-datacenter"),
        pytest.param([gpu(0, "12.0", "NVIDIA GeForce RTX 5090")], "open", id="blackwell-consumer"),
        pytest.param([gpu(0, "6.1"), gpu(1, "8.6")], "proprietary", id="mixed-old-and-new-stays-proprietary"),
        pytest.param([gpu(0, "7.5"), gpu(1, "12.0")], "open", id="turing-with-blackwell"),
        pytest.param({"gpus": GUIDE, "gpu_count": 2}, "open", id="whole-registered-result"),
    ],
)
def test_flavour_from_compute_capability(gpus: t.Any, expected: str) -> None:
    assert nvidia_kernel_modules(gpus) == expected


@pytest.mark.parametrize(
    ("device_id", "expected"),
    [
        pytest.param("0x1e04", "open", id="2080ti-turing-hex-string"),
        pytest.param("1E07", "open", id="turing-without-0x-upper-case"),
        pytest.param(0x1B06, "proprietary", id="1080ti-pascal-int"),
        pytest.param("0x1db5", "proprietary", id="v100-volta-last-before-turing"),
        pytest.param("0x1380", "proprietary", id="maxwell-gm107"),
        pytest.param("0x2684", "open", id="4090-ada"),
        pytest.param("0x2335", "open", id="h200-hopper"),
        pytest.param("0x2b85", "open", id="5090-blackwell"),
    ],
)
def test_flavour_from_pci_device_id_before_a_driver(device_id: t.Any, expected: str) -> None:
    gpus = [gpu(0, None)]
    assert nvidia_kernel_modules(gpus, {"00000000:01:00.0": device_id}) == expected


def test_sysfs_form_bus_ids_are_accepted() -> None:
    assert nvidia_kernel_modules([gpu(0, None)], {"0000:01:00.0": "0x1b06"}) == "proprietary"


def test_compute_capability_wins_over_device_id() -> None:
    # Once a driver answers, the capability is authoritative.
    assert nvidia_kernel_modules([gpu(0, "7.5")], {"00000000:01:00.0": "0x1b06"}) == "open"


def test_unidentified_gpu_names_the_override_variable() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        nvidia_kernel_modules([gpu(0, None, "NVIDIA device 0x1234")], {}, "my_override")
    message = str(err.value)
    assert message.startswith("my_override:")
    assert "GPU 0 (NVIDIA device 0x1234)" in message
    assert "'open'" in message and "'proprietary'" in message


def test_pascal_with_blackwell_cannot_be_driven() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        nvidia_kernel_modules([gpu(0, "6.1", "GTX 1080 Ti"), gpu(1, "12.0", "RTX 5090")])
    message = str(err.value)
    assert message.startswith("nvidia_cuda_kernel_modules: no NVIDIA kernel module flavour")
    assert "GPU 0 (GTX 1080 Ti: Pascal, compute capability 6.1) needs the proprietary modules" in message
    assert "GPU 1 (RTX 5090: Blackwell or newer, compute capability 12.0) needs the open modules" in message


@pytest.mark.parametrize(
    ("gpus", "device_ids"),
    [
        pytest.param([gpu(0, "3.7", "Tesla K80")], {}, id="kepler-capability"),
        pytest.param([gpu(0, None)], {"00000000:01:00.0": "0x102d"}, id="kepler-device-id"),
    ],
)
def test_kepler_is_refused(gpus: list[dict[str, t.Any]], device_ids: dict[str, str]) -> None:
    with pytest.raises(AnsibleFilterError, match="too old for any current NVIDIA driver"):
        nvidia_kernel_modules(gpus, device_ids)


@pytest.mark.parametrize(
    ("gpus", "device_ids", "match"),
    [
        pytest.param("nope", {}, "expected the 'gpus' list", id="not-a-list"),
        pytest.param([{"name": "x"}], {}, "expected the 'gpus' list", id="entry-without-index"),
        pytest.param([gpu(0, None)], ["0x1e04"], "must be a dict", id="device-ids-not-a-dict"),
        pytest.param([gpu(0, None)], {"0000:01:00.0": "0xZZZZ"}, "not a 16 bit hex number", id="bad-hex"),
        pytest.param([gpu(0, None)], {"0000:01:00.0": True}, "not a 16 bit hex number", id="bool-device-id"),
        pytest.param([gpu(0, "seven")], {}, "malformed compute capability", id="bad-capability"),
    ],
)
def test_bad_input_is_reported(gpus: t.Any, device_ids: t.Any, match: str) -> None:
    with pytest.raises(AnsibleFilterError, match=match):
        nvidia_kernel_modules(gpus, device_ids)


def test_none_device_ids_mean_none_known() -> None:
    assert nvidia_kernel_modules(GUIDE, None) == "open"


def test_same_input_same_answer() -> None:
    # Idempotency row: the role evaluates it on every run and must always get the same flavour.
    assert nvidia_kernel_modules(GUIDE) == nvidia_kernel_modules(GUIDE) == "open"


def test_filter_is_registered_and_documented() -> None:
    assert FilterModule().filters()["nvidia_kernel_modules"] is nvidia_kernel_modules
    doc_file = Path(__file__).resolve().parents[4] / "plugins" / "filter" / "nvidia_kernel_modules.yml"
    doc = yaml.safe_load(doc_file.read_text())
    assert doc["DOCUMENTATION"]["name"] == "nvidia_kernel_modules"
    assert set(doc["DOCUMENTATION"]["options"]) == {"_input", "pci_device_ids", "variable"}
