# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ComfyUI's filters: whether a torch build can run on the host's NVIDIA driver, and the model list with
each file's name (documentation: comfyui_torch_problems.yml and comfyui_model_entries.yml)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ansible.errors import AnsibleFilterError

# PyTorch's own indexes, one per CUDA toolkit (and one for CPU builds); the suggestion is the newest
# one the driver can run. Which torch versions each holds changes with every release.
PYTORCH_INDEX = "https://download.pytorch.org/whl/{}"
KNOWN_CUDA_INDEXES = [(11, 8), (12, 1), (12, 4), (12, 6), (12, 8), (13, 0)]

_LOCAL_CUDA = re.compile(r"^cu(\d+)(\d)$")
_CUDA = re.compile(r"^(\d+)\.(\d+)")


def _cuda_tuple(value: str) -> tuple[int, int] | None:
    match = _CUDA.match(str(value).strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def torch_build(version: Any, pypi_cuda: str = "13.0") -> dict[str, Any]:
    """What a torch version string says about its build: ``{"kind": "cuda"|"cpu"|"rocm"|"other", "cuda": "12.6"}``.

    The local version label names the build (``2.8.0+cu126``, ``2.8.0+cpu``, ``2.8.0+rocm6.3``); a
    version without one is PyPI's Linux build, whose CUDA version is ``pypi_cuda``.
    """
    if not isinstance(version, str) or not re.match(r"^\d+(\.\d+)*", version.strip()):
        raise AnsibleFilterError(f"comfyui_torch_problems expects a torch version such as 2.8.0+cu126, got {version!r}")
    local = version.strip().partition("+")[2]
    if not local:
        if _cuda_tuple(pypi_cuda) is None:
            raise AnsibleFilterError(f"comfyui_torch_problems: pypi_cuda must look like 13.0, got {pypi_cuda!r}")
        major, minor = _cuda_tuple(pypi_cuda)  # type: ignore[misc]
        return {"kind": "cuda", "cuda": f"{major}.{minor}"}
    if local == "cpu" or local.startswith("cpu."):
        return {"kind": "cpu", "cuda": None}
    match = _LOCAL_CUDA.match(local)
    if match:
        return {"kind": "cuda", "cuda": f"{int(match.group(1))}.{match.group(2)}"}
    if local.startswith("rocm"):
        return {"kind": "rocm", "cuda": None}
    return {"kind": "other", "cuda": None}


def suggested_index(driver_cuda: str) -> str:
    """PyTorch's index for the newest CUDA toolkit the driver supports (cpu when none fits)."""
    driver = _cuda_tuple(driver_cuda)
    fitting = [cuda for cuda in KNOWN_CUDA_INDEXES if driver is not None and cuda <= driver]
    if not fitting:
        return PYTORCH_INDEX.format("cpu")
    major, minor = fitting[-1]
    return PYTORCH_INDEX.format(f"cu{major}{minor}")


def comfyui_torch_problems(
    torch_version: Any,
    gpu_count: Any,
    driver_cuda: Any = "",
    index_url: str = "",
    pypi_cuda: str = "13.0",
    cuda: Any = None,
) -> list[str]:
    """The reasons the torch build ``torch_version`` cannot serve this host (empty: it can).

    - ``gpu_count``: GPUs ComfyUI is assigned (0: it runs with ``--cpu``, and any build runs).
    - ``driver_cuda``: the highest CUDA version the installed driver supports (nvidia-smi's "CUDA
      Version", nvidia_cuda_driver_cuda_version), e.g. ``12.4`` for an R550 driver.
    - ``index_url``: where the build came from, named in the messages (comfyui_torch_index_url).
    - ``pypi_cuda``: the CUDA version of builds without a local version label (PyPI's).
    - ``cuda``: ``torch.version.cuda`` of an installed torch; when given it wins over the label.

    CUDA's minor version compatibility lets a driver run every toolkit of its own major version
    (a 12.4 driver runs a cu126 build); a newer major version (a cu130 build on a 12.x driver) fails.
    """
    build = torch_build(torch_version, pypi_cuda)
    if cuda not in (None, "", "None"):
        if _cuda_tuple(str(cuda)) is None:
            raise AnsibleFilterError(f"comfyui_torch_problems: cuda must look like 12.6, got {cuda!r}")
        build = {"kind": "cuda", "cuda": str(cuda)}
    elif cuda is not None and build["kind"] == "cuda" and "+" in str(torch_version):
        # torch.version.cuda is None: the installed build has no CUDA whatever its label says.
        build = {"kind": "cpu", "cuda": None}
    try:
        gpus = int(gpu_count)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"comfyui_torch_problems: gpu_count must be a number, got {gpu_count!r}") from exc
    if gpus <= 0:
        return []
    source = f"torch {torch_version} from {index_url or 'the package index'}"
    driver = _cuda_tuple(str(driver_cuda or ""))
    if driver is None:
        return [
            f"{source} cannot be checked against the NVIDIA driver: the host reports no driver CUDA version "
            f"(got {driver_cuda!r}); install and load the driver first (the nvidia_cuda role), or set comfyui_gpus "
            "to [] for the CPU"
        ]
    index = suggested_index(str(driver_cuda))
    driver_text = f"{driver[0]}.{driver[1]}"
    if build["kind"] != "cuda":
        return [
            f"{source} is a {build['kind'].upper() if build['kind'] == 'cpu' else build['kind']} build without CUDA, "
            f"so ComfyUI would run on the CPU of this GPU host; set comfyui_torch_index_url to {index} "
            f"(a CUDA build for this driver's CUDA {driver_text})"
        ]
    major, minor = _cuda_tuple(build["cuda"])  # type: ignore[misc]
    if major > driver[0]:
        return [
            f"{source} is built for CUDA {major}.{minor}, but the installed driver supports CUDA {driver_text} only "
            f"(CUDA {major} needs a newer driver branch); set comfyui_torch_index_url to {index}, "
            "or upgrade the driver (nvidia_cuda_driver_branch)"
        ]
    return []


def comfyui_model_entries(models: Any) -> list[Any]:
    """``comfyui_models`` with every entry's ``name``: its own, or the file name at the end of its URL's path.

    Entries that are not dicts pass through unchanged, for the role's preflight to name them.
    """
    if not isinstance(models, (list, tuple)):
        raise AnsibleFilterError(f"comfyui_model_entries expects the list comfyui_models, got {type(models).__name__}")
    entries = []
    for entry in models:
        if isinstance(entry, Mapping) and "name" not in entry:
            path = urlsplit(str(entry.get("url", ""))).path
            entry = {**entry, "name": posixpath.basename(unquote(path))}
        entries.append(entry)
    return entries


class FilterModule:
    """ComfyUI filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"comfyui_torch_problems": comfyui_torch_problems, "comfyui_model_entries": comfyui_model_entries}
