# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The nvidia_cuda role's own tables (vars/main.yml): which packages it holds, which it pins to the
driver branch, and the runfiles it knows. Mistakes here break real hosts only (a kernel update
without a GPU module, a download that never verifies), so they are checked without a host."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "nvidia_cuda"
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def held(package: str) -> bool:
    """What tasks/driver.yml does with an installed package: select hold_re, reject exclude_re."""
    return bool(re.match(VARS["__nvidia_cuda_hold_re"], package)) and not re.match(
        VARS["__nvidia_cuda_hold_exclude_re"], package
    )


@pytest.mark.parametrize(
    "package",
    [
        # Ubuntu, ubuntu-drivers --gpgpu nvidia:580-server-open
        "nvidia-headless-no-dkms-580-server-open",
        "nvidia-utils-580-server",
        "nvidia-kernel-common-580-server",
        "libnvidia-compute-580-server",
        # NVIDIA's repository (Debian 12)
        "nvidia-open-580",
        "cuda-drivers-580",
        "nvidia-persistenced",
        "libcuda1",
        "nvidia-kernel-open-dkms",
        "firmware-nvidia-gsp",
    ],
)
def test_user_space_driver_is_held(package: str) -> None:
    assert held(package)


@pytest.mark.parametrize(
    "package",
    [
        # Ubuntu's precompiled modules: built per kernel; held, the next kernel boots without one.
        "linux-modules-nvidia-580-server-open-generic",
        "linux-modules-nvidia-580-server-open-6.8.0-45-generic",
        "linux-objects-nvidia-580-server-open-6.8.0-45-generic",
        "linux-signatures-nvidia-6.8.0-45-generic",
        # Own release cycle.
        "nvidia-container-toolkit",
        "libnvidia-container1",
        # Not the driver at all.
        "cuda-toolkit-12-4",
        "linux-image-generic",
    ],
)
def test_kernel_modules_and_unrelated_packages_are_not_held(package: str) -> None:
    assert not held(package)


def test_branch_pin_covers_what_nvidia_names_alike_across_branches() -> None:
    globs = VARS["__nvidia_cuda_branch_pin_globs"]
    # Globs, never a /regex/: apt matches a regex pin against every version of every package on each
    # cache load (6 s of CPU per apt command measured on Debian 12).
    assert all(
        not glob.startswith("/") and set(glob) - set("*") <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
        for glob in globs
    )
    hold = re.compile(VARS["__nvidia_cuda_hold_re"])

    def pinned(package: str) -> bool:
        return any(fnmatch.fnmatchcase(package, glob) for glob in globs)

    for package in (
        "nvidia-open",
        "cuda-drivers",
        "nvidia-driver",
        "libcuda1",
        "libnvidia-compute",
        "nvidia-persistenced",
    ):
        assert pinned(package), package
    assert not pinned("cuda-toolkit-12-4")
    # The pin and the hold cover the same names.
    for package in (
        "libegl-nvidia0",
        "firmware-nvidia-gsp",
        "xserver-xorg-video-nvidia",
        "cuda-toolkit-12-4",
        "nvidia",
    ):
        assert pinned(package) == bool(hold.match(package)), package
    template = (ROLE / "templates" / "apt-preferences.j2").read_text()
    assert "Package: {{ __nvidia_cuda_branch_pin_globs | join(' ') }}" in template
    assert "Pin: version {{ nvidia_cuda_driver_branch }}.*\nPin-Priority: 990" in template
    # Before the repository-wide priority, for apt versions that take the first matching record.
    assert template.index("Pin-Priority: 990") < template.index("Pin-Priority: 600")


@pytest.mark.parametrize(("series", "runfile"), VARS["__nvidia_cuda_runfiles"].items())
def test_runfile_table_entries(series: str, runfile: dict[str, object]) -> None:
    assert re.fullmatch(r"[0-9]+\.[0-9]+", series)
    assert str(runfile["version"]).startswith(series + ".")
    assert re.fullmatch(r"[0-9]{3}\.[0-9]+\.[0-9]+", str(runfile["driver"]))
    checksums = runfile["sha256"]
    assert isinstance(checksums, dict) and set(checksums) == {"x86_64", "sbsa"}
    for checksum in checksums.values():
        assert re.fullmatch(r"[0-9a-f]{64}", checksum)
    assert len(set(checksums.values())) == 2


def test_default_toolkit_has_the_published_runfile() -> None:
    # CUDA 12.4.1, the guide's toolkit: sha256 as published (Spack's cuda package, and users who pin it).
    entry = VARS["__nvidia_cuda_runfiles"][DEFAULTS["nvidia_cuda_toolkit_version"]]
    assert (entry["version"], entry["driver"]) == ("12.4.1", "550.54.15")
    assert entry["sha256"]["x86_64"] == "367d2299b3a4588ab487a6d27276ca5d9ead6e394904f18bccb9e12433b9c4fb"
    assert DEFAULTS["nvidia_cuda_runfile_base_url"] == "https://developer.download.nvidia.com/compute/cuda"
    assert DEFAULTS["nvidia_cuda_toolkit_source"] == "auto"
