# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Table-driven tests for plugins/filter/gpu.py."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter import gpu as gpu_filters
from ansible_collections.selfhosted.ai_stack.plugins.filter.gpu import (
    FilterModule,
    gpu_assignment,
    gpu_default_selection,
    gpu_vram_plan,
)

UUID_0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
UUID_1 = "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"
UUID_2 = "GPU-8a9b0c1d-ffff-4a5b-6c7d-000000000002"  # shares an 8 character prefix with UUID_1
NAME = "NVIDIA GeForce RTX 2080 Ti"
CPU = {"CUDA_VISIBLE_DEVICES": "-1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def gpu(index: int, uuid: str | None, total: int | None = 22528, name: str = NAME) -> dict[str, t.Any]:
    return {
        "index": index,
        "uuid": uuid,
        "name": name,
        "pci_bus_id": f"00000000:0{index + 1}:00.0",
        "memory_total_mib": total,
        "memory_used_mib": 0,
        "compute_capability": "7.5",
        "persistence_mode": True,
        "nvlink_active_links": 2,
    }


GUIDE = [gpu(0, UUID_0), gpu(1, UUID_1)]
THREE = [*GUIDE, gpu(2, UUID_2, name="NVIDIA H200", total=143771)]


def visible(*uuids: str) -> dict[str, str]:
    return {"CUDA_VISIBLE_DEVICES": ",".join(uuids), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


# --------------------------------------------------------------------------- gpu_assignment


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        pytest.param([0], visible(UUID_0), id="index"),
        pytest.param([1, 0], visible(UUID_1, UUID_0), id="selection-order-kept"),
        pytest.param(1, visible(UUID_1), id="scalar-index"),
        pytest.param(["1"], visible(UUID_1), id="digit-string"),
        pytest.param("0,1", visible(UUID_0, UUID_1), id="comma-string"),
        pytest.param([UUID_1], visible(UUID_1), id="full-uuid"),
        pytest.param([UUID_1.upper().replace("GPU-", "gpu-")], visible(UUID_1), id="uuid-case-insensitive"),
        pytest.param(["GPU-1f0c7d3b"], visible(UUID_0), id="uuid-prefix"),
        pytest.param(["1f0c7d3b"], visible(UUID_0), id="uuid-prefix-without-GPU-"),
        pytest.param("all", visible(UUID_0, UUID_1), id="all"),
        pytest.param(["ALL"], visible(UUID_0, UUID_1), id="all-in-list"),
        pytest.param([0, "0", UUID_0, "all"], visible(UUID_0, UUID_1), id="duplicates-removed"),
        pytest.param([], CPU, id="empty-list-cpu"),
        pytest.param("", CPU, id="empty-string-cpu"),
        pytest.param(None, CPU, id="none-cpu"),
    ],
)
def test_gpu_assignment(selection: t.Any, expected: dict[str, str]) -> None:
    assert gpu_assignment(GUIDE, selection, "ollama_gpus") == expected


def test_gpu_assignment_accepts_the_whole_module_result() -> None:
    assert gpu_assignment({"gpus": GUIDE, "gpu_count": 2}, [1]) == visible(UUID_1)


@pytest.mark.parametrize(
    ("gpus", "selection", "expected"),
    [
        pytest.param([], "all", CPU, id="all-without-gpus-is-cpu"),
        pytest.param([], [], CPU, id="cpu-without-gpus"),
        pytest.param(THREE, [UUID_2], visible(UUID_2), id="full-uuid-despite-shared-prefix"),
    ],
)
def test_gpu_assignment_edge_cases(gpus: list[dict[str, t.Any]], selection: t.Any, expected: dict[str, str]) -> None:
    assert gpu_assignment(gpus, selection) == expected


@pytest.mark.parametrize(
    ("gpus", "selection", "fragments"),
    [
        pytest.param(
            GUIDE,
            [3],
            ["ollama_gpus: no GPU matches 3", f"this host has: 0 ({UUID_0}, {NAME}), 1 ({UUID_1}, {NAME})"],
            id="index-out-of-range",
        ),
        pytest.param(GUIDE, ["7"], ["ollama_gpus: no GPU matches '7'", "this host has: 0 ("], id="digit-string"),
        pytest.param(GUIDE, ["GPU-deadbeef"], ["no GPU matches 'GPU-deadbeef'", UUID_1], id="unknown-uuid"),
        pytest.param(GUIDE, ["GPU-1f0c"], ["'GPU-1f0c' is neither a GPU index nor", "8 characters"], id="short"),
        pytest.param(THREE, ["GPU-8a9b0c1d"], ["'GPU-8a9b0c1d' matches more than one GPU", "NVIDIA H200"], id="ambig"),
        pytest.param([], [0], ["ollama_gpus: no GPU matches 0", "this host has no NVIDIA GPU"], id="no-gpus"),
        pytest.param(GUIDE, [-1], ["no GPU matches -1"], id="negative"),
        pytest.param(GUIDE, [True], ["True is not a GPU index, UUID or 'all' (got bool)"], id="bool"),
        pytest.param(GUIDE, [{"index": 0}], ["is not a GPU index", "(got dict)"], id="dict-item"),
    ],
)
def test_gpu_assignment_mismatch_messages(gpus: list[dict[str, t.Any]], selection: t.Any, fragments: list[str]) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        gpu_assignment(gpus, selection, "ollama_gpus")
    for fragment in fragments:
        assert fragment in str(error.value)


def test_gpu_assignment_default_variable_name() -> None:
    with pytest.raises(AnsibleFilterError, match=r"^gpus: no GPU matches 5;"):
        gpu_assignment(GUIDE, [5])


def test_gpu_assignment_refuses_gpus_without_uuid() -> None:
    # PCI-scan results (no driver yet): indexes could differ from CUDA's, so no fallback.
    pci_only = [gpu(0, None, total=None)]
    with pytest.raises(AnsibleFilterError) as error:
        gpu_assignment(pci_only, [0], "comfyui_gpus")
    message = str(error.value)
    assert message.startswith("comfyui_gpus: GPU 0 (NVIDIA GeForce RTX 2080 Ti) has no UUID")
    assert "install the NVIDIA driver first" in message
    # ... while CPU still works on such a host
    assert gpu_assignment(pci_only, [], "comfyui_gpus") == CPU


@pytest.mark.parametrize("bad", [None, "gpus", [1, 2], [{"uuid": UUID_0}], {"gpu_count": 0}])
def test_gpu_assignment_rejects_input_that_is_not_a_gpu_list(bad: t.Any) -> None:
    with pytest.raises(AnsibleFilterError, match="expected the 'gpus' list returned by"):
        gpu_assignment(bad, [0])


# --------------------------------------------------------------------------- gpu_default_selection


@pytest.mark.parametrize(
    ("count", "llm", "image"),
    [(0, [], []), (1, [0], [0]), (2, [0], [1]), (4, [0], [1])],
)
def test_gpu_default_selection(count: int, llm: list[int], image: list[int]) -> None:
    gpus = [gpu(i, f"GPU-{i:08d}-0000") for i in range(count)]
    assert gpu_default_selection(gpus, "llm") == llm
    assert gpu_default_selection(gpus, "image") == image


def test_gpu_default_selection_feeds_gpu_assignment() -> None:
    for service, uuid in (("llm", UUID_0), ("image", UUID_1)):
        assert gpu_assignment(GUIDE, gpu_default_selection(GUIDE, service)) == visible(uuid)


def test_gpu_default_selection_rejects_unknown_service() -> None:
    with pytest.raises(AnsibleFilterError, match="service must be one of llm, image, got 'video'"):
        gpu_default_selection(GUIDE, "video")


# --------------------------------------------------------------------------- gpu_vram_plan


def plan_row(report: list[dict[str, t.Any]], index: int) -> tuple[int, bool | None, list[str]]:
    row = report[index]
    return row["planned_mib"], row["fits"], row["services"]


@pytest.mark.parametrize(
    ("plan", "row0", "row1"),
    [
        pytest.param(
            [{"service": "ollama", "gpus": [0], "mib": 20000}, {"service": "comfyui", "gpus": [1], "mib": 12000}],
            (20000, True, ["ollama"]),
            (12000, True, ["comfyui"]),
            id="one-gpu-each-fits",
        ),
        pytest.param(
            [{"service": "ollama", "gpus": [0], "mib": 20000}, {"service": "comfyui", "gpus": [0], "mib": 12000}],
            (32000, False, ["ollama", "comfyui"]),
            (0, True, []),
            id="shared-gpu-does-not-fit",
        ),
        pytest.param(
            [{"service": "ollama", "gpus": "all", "mib": 40000}],
            (20000, True, ["ollama"]),
            (20000, True, ["ollama"]),
            id="spread-over-two",
        ),
        pytest.param(
            [{"service": "ollama", "gpus": [0, 1], "mib": 45057}],
            (22529, False, ["ollama"]),
            (22529, False, ["ollama"]),
            id="spread-rounds-up",
        ),
        pytest.param(
            [{"service": "ollama", "gpus": [0], "mib": 22528}],
            (22528, True, ["ollama"]),
            (0, True, []),
            id="exactly-full-fits",
        ),
        pytest.param(
            [{"service": "ollama", "gpus": [], "mib": 8000}, {"service": "comfyui", "mib": "4000", "gpus": [UUID_1]}],
            (0, True, []),
            (4000, True, ["comfyui"]),
            id="cpu-counts-nowhere-and-digit-string-mib",
        ),
    ],
)
def test_gpu_vram_plan(plan: list[dict[str, t.Any]], row0: tuple[t.Any, ...], row1: tuple[t.Any, ...]) -> None:
    report = gpu_vram_plan(GUIDE, plan)
    assert [row["index"] for row in report] == [0, 1]
    assert plan_row(report, 0) == row0
    assert plan_row(report, 1) == row1


def test_gpu_vram_plan_row_shape() -> None:
    (row,) = gpu_vram_plan([gpu(0, UUID_0)], [{"service": "ollama", "gpus": [0], "mib": 1000}])
    assert row == {
        "index": 0,
        "uuid": UUID_0,
        "name": NAME,
        "memory_total_mib": 22528,
        "planned_mib": 1000,
        "fits": True,
        "services": ["ollama"],
    }


def test_gpu_vram_plan_unknown_memory_cannot_be_judged() -> None:
    (row,) = gpu_vram_plan([gpu(0, None, total=None)], [{"service": "ollama", "gpus": [0], "mib": 1000}])
    assert (row["planned_mib"], row["fits"]) == (1000, None)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        pytest.param([{"service": "ollama", "gpus": [3], "mib": 1}], "ollama gpus: no GPU matches 3", id="mismatch"),
        pytest.param([{"service": "ollama", "gpus": [0], "mib": -5}], r"plan\[0\]\.mib must be", id="negative"),
        pytest.param([{"service": "ollama", "gpus": [0], "mib": True}], r"plan\[0\]\.mib must be", id="bool"),
        pytest.param([{"service": "ollama", "gpus": [0]}], r"got None", id="missing-mib"),
        pytest.param([{"gpus": [0], "mib": 1}], r"plan\[0\] must be a dict with service", id="no-service"),
        pytest.param("ollama", "plan must be a list, got str", id="not-a-list"),
    ],
)
def test_gpu_vram_plan_errors(plan: t.Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        gpu_vram_plan(GUIDE, plan)


# --------------------------------------------------------------------------- registration and docs


def test_filters_are_registered() -> None:
    assert FilterModule().filters() == {
        "gpu_assignment": gpu_assignment,
        "gpu_default_selection": gpu_default_selection,
        "gpu_vram_plan": gpu_vram_plan,
    }


@pytest.mark.parametrize("name", ["gpu_assignment", "gpu_default_selection", "gpu_vram_plan"])
def test_every_filter_has_a_sidecar_doc(name: str) -> None:
    doc = yaml.safe_load((Path(gpu_filters.__file__).parent / f"{name}.yml").read_text())
    assert doc["DOCUMENTATION"]["name"] == name
    assert "_input" in doc["DOCUMENTATION"]["options"]
    assert "_value" in doc["RETURN"]
