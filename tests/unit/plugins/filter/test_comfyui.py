# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Table-driven tests for plugins/filter/comfyui.py (the torch build against the driver)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.comfyui import (
    FilterModule,
    comfyui_model_entries,
    comfyui_torch_problems,
    suggested_index,
    torch_build,
)

CU124 = "https://download.pytorch.org/whl/cu124"
DOCS = Path(__file__).parents[4] / "plugins/filter"


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("2.8.0+cu126", {"kind": "cuda", "cuda": "12.6"}),
        ("2.9.1+cu130", {"kind": "cuda", "cuda": "13.0"}),
        ("2.4.0+cu118", {"kind": "cuda", "cuda": "11.8"}),
        ("2.13.0+cpu", {"kind": "cpu", "cuda": None}),
        ("2.13.0+cpu.cxx11.abi", {"kind": "cpu", "cuda": None}),
        ("2.8.0+rocm6.3", {"kind": "rocm", "cuda": None}),
        ("2.8.0+xpu", {"kind": "other", "cuda": None}),
        ("2.15.0", {"kind": "cuda", "cuda": "13.0"}),  # PyPI's build
    ],
)
def test_torch_build_reads_the_local_version_label(version: str, build: dict) -> None:
    assert torch_build(version) == build


def test_an_unlabelled_build_has_the_cuda_version_given_for_pypi() -> None:
    assert torch_build("2.7.0", pypi_cuda="12.6") == {"kind": "cuda", "cuda": "12.6"}


@pytest.mark.parametrize(
    ("driver", "index"),
    [
        ("12.4", CU124),
        ("12.5", CU124),
        ("12.6", "https://download.pytorch.org/whl/cu126"),
        ("12.9", "https://download.pytorch.org/whl/cu128"),
        ("13.2", "https://download.pytorch.org/whl/cu130"),
        ("11.4", "https://download.pytorch.org/whl/cpu"),
        ("", "https://download.pytorch.org/whl/cpu"),
    ],
)
def test_the_suggested_index_is_the_newest_the_driver_runs(driver: str, index: str) -> None:
    assert suggested_index(driver) == index


@pytest.mark.parametrize(
    ("version", "gpus", "driver", "cuda"),
    [
        ("2.8.0+cu126", 1, "12.4", None),  # minor version compatibility
        ("2.8.0+cu124", 2, "12.4", None),
        ("2.9.0+cu130", 1, "13.0", None),
        ("2.15.0", 1, "13.2", None),
        ("2.13.0+cpu", 0, "", None),  # --cpu: anything runs
        ("2.9.0+cu130", 0, "12.4", None),
        ("2.8.0+cu126", 1, "12.4", "12.6"),
    ],
)
def test_builds_the_driver_runs_have_no_problems(version: str, gpus: int, driver: str, cuda: str | None) -> None:
    assert comfyui_torch_problems(version, gpus, driver, cuda=cuda) == []


def test_a_cuda_13_build_on_an_r550_driver_is_refused_naming_the_index() -> None:
    index = "http://torch-index.comfyui-double.test:8891/whl/cu130"
    [problem] = comfyui_torch_problems("2.13.0+cu130", 1, "12.4", index)
    assert problem.startswith(f"torch 2.13.0+cu130 from {index} is built for CUDA 13.0,")
    assert "supports CUDA 12.4 only" in problem
    assert f"set comfyui_torch_index_url to {CU124}" in problem


def test_pypis_unlabelled_build_on_an_r550_driver_is_refused() -> None:
    [problem] = comfyui_torch_problems("2.15.0", "1", "12.4")
    assert "from the package index is built for CUDA 13.0" in problem
    assert CU124 in problem


def test_the_installed_cuda_version_wins_over_the_label() -> None:
    [problem] = comfyui_torch_problems("2.15.0", 1, "12.4", cuda="13.2")
    assert "built for CUDA 13.2" in problem
    assert comfyui_torch_problems("2.15.0", 1, "13.0", cuda="12.8") == []


def test_an_installed_build_without_cuda_on_a_gpu_host_is_refused() -> None:
    [problem] = comfyui_torch_problems("2.13.0+cu126", 1, "12.4", cuda="")
    assert "CPU build without CUDA" in problem
    [problem] = comfyui_torch_problems("2.13.0+cpu", 1, "12.6", "https://download.pytorch.org/whl/cpu")
    assert "would run on the CPU of this GPU host" in problem
    assert "https://download.pytorch.org/whl/cu126" in problem


def test_a_rocm_build_on_an_nvidia_host_is_refused() -> None:
    [problem] = comfyui_torch_problems("2.8.0+rocm6.3", 1, "12.4")
    assert "rocm build without CUDA" in problem


def test_a_gpu_host_without_a_driver_version_is_a_problem() -> None:
    [problem] = comfyui_torch_problems("2.8.0+cu126", 1, "")
    assert "reports no driver CUDA version" in problem
    assert "comfyui_gpus" in problem


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("not-a-version", 1, "12.4"), {}),
        ((None, 1, "12.4"), {}),
        (("2.8.0", "many", "12.4"), {}),
        (("2.8.0", 1, "12.4"), {"pypi_cuda": "thirteen"}),
        (("2.8.0", 1, "12.4"), {"cuda": "twelve"}),
    ],
)
def test_bad_arguments_fail_clearly(args: tuple, kwargs: dict) -> None:
    with pytest.raises(AnsibleFilterError, match="comfyui_torch_problems"):
        comfyui_torch_problems(*args, **kwargs)


def test_the_filter_is_registered_and_documented() -> None:
    assert FilterModule().filters() == {
        "comfyui_torch_problems": comfyui_torch_problems,
        "comfyui_model_entries": comfyui_model_entries,
    }
    assert yaml.safe_load((DOCS / "comfyui_model_entries.yml").read_text())["DOCUMENTATION"]["name"] == (
        "comfyui_model_entries"
    )
    doc = DOCS / "comfyui_torch_problems.yml"
    documented = yaml.safe_load(doc.read_text())["DOCUMENTATION"]
    assert documented["name"] == "comfyui_torch_problems"
    assert set(documented["options"]) == {"_input", "gpu_count", "driver_cuda", "index_url", "pypi_cuda", "cuda"}


def test_model_entries_take_their_name_from_the_url_unless_named() -> None:
    models = [
        {"url": "https://example.org/models/sd%20xl.safetensors?download=1", "sha256": "0" * 64, "kind": "checkpoints"},
        {"url": "file:///srv/models/vae.pt", "sha256": "1" * 64, "kind": "vae", "name": "my-vae.pt"},
        "not a dict",
    ]
    assert comfyui_model_entries(models) == [
        {**models[0], "name": "sd xl.safetensors"},
        models[1],
        "not a dict",
    ]
    assert "name" not in models[0]  # the input is left alone


def test_model_entries_refuse_what_is_not_a_list() -> None:
    with pytest.raises(AnsibleFilterError, match="expects the list comfyui_models"):
        comfyui_model_entries({"url": "x"})
