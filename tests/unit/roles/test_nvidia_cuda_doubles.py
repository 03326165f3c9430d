# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The test doubles the nvidia_cuda scenarios stand on: the CUDA runfile double, the version table
of the CUDA repository double, the nvidia-smi double's "driver not loaded yet" mode and the reboot
double. Each must refuse what the real thing (or NVIDIA's repository) would not do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOUBLES = Path(__file__).resolve().parents[2] / "doubles"
RUNFILE_DOUBLE = DOUBLES / "cuda_runfile" / "cuda-runfile-double.sh"
BUILD_REPO = DOUBLES / "cuda_repo" / "build-repo.sh"
FAKE_SMI = DOUBLES / "nvidia_smi" / "fake_nvidia_smi.py"
FAKE_REBOOT = DOUBLES / "nvidia_smi" / "fake_reboot.sh"
XML = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia" / "nvidia-smi-2x-rtx2080ti.xml"


# --------------------------------------------------------------------------- CUDA runfile


@pytest.fixture(name="runfile")
def runfile_fixture(tmp_path: Path) -> Path:
    """The double under NVIDIA's file name for CUDA 12.4.1."""
    path = tmp_path / "cuda_12.4.1_550.54.15_linux.run"
    shutil.copy(RUNFILE_DOUBLE, path)
    return path


def run_runfile(runfile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, CUDA_RUNFILE_DOUBLE_LOG=str(runfile.parent / "installer.log"))
    return subprocess.run(["sh", str(runfile), *args], capture_output=True, text=True, env=env, check=False)


def test_runfile_installs_the_toolkit_with_nvidia_flags(runfile: Path, tmp_path: Path) -> None:
    prefix, scratch = tmp_path / "cuda-12.4", tmp_path / "scratch"
    scratch.mkdir()
    done = run_runfile(runfile, "--silent", "--toolkit", f"--toolkitpath={prefix}", f"--tmpdir={scratch}")
    assert done.returncode == 0, done.stderr
    assert f"Toolkit:  Installed in {prefix}/" in done.stdout
    nvcc = subprocess.run([str(prefix / "bin" / "nvcc"), "--version"], capture_output=True, text=True, check=True)
    assert nvcc.stdout.splitlines()[-2:] == [
        "Cuda compilation tools, release 12.4, V12.4.131",
        "Build cuda_12.4.r12.4/compiler.34097967_0",
    ]
    assert (prefix / "lib64").is_dir()
    assert '"version": "12.4.1"' in (prefix / "version.json").read_text()
    (logged,) = (tmp_path / "installer.log").read_text().splitlines()
    assert logged.endswith(
        f"installed CUDA 12.4.1 into {prefix}: --silent --toolkit --toolkitpath={prefix} --tmpdir={scratch}"
    )


def test_runfile_version_comes_from_its_file_name(tmp_path: Path) -> None:
    runfile = tmp_path / "cuda_12.5.1_555.42.06_linux_sbsa.run"
    shutil.copy(RUNFILE_DOUBLE, runfile)
    assert run_runfile(runfile, "--silent", "--toolkit", f"--installpath={tmp_path / 'c'}").returncode == 0
    nvcc = subprocess.run([str(tmp_path / "c" / "bin" / "nvcc"), "-V"], capture_output=True, text=True, check=True)
    assert "release 12.5, V12.5.131" in nvcc.stdout


@pytest.mark.parametrize(
    "flag",
    [
        "--driver",
        "--kernelobjects",
        "--no-opengl-libs",
        "--no-drm",
        "--run-nvidia-xconfig",
        "--kernel-source-path=/usr/src",
    ],
)
def test_runfile_never_installs_a_driver(runfile: Path, tmp_path: Path, flag: str) -> None:
    done = run_runfile(runfile, "--silent", "--toolkit", f"--toolkitpath={tmp_path / 'c'}", flag)
    assert done.returncode == 1
    assert "this double never installs a driver" in done.stderr
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--silent", "--toolkit", "--samples"], "unknown option --samples"),
        (["--silent", "--toolkit", "--toolkitpath"], "unknown option --toolkitpath"),
        (["--toolkit"], "only --silent installs are implemented"),
        (["--silent"], "nothing to install: only --toolkit is implemented"),
        (["--silent", "--toolkit", "--tmpdir=/nonexistent"], "--tmpdir: /nonexistent is not a directory"),
    ],
)
def test_runfile_refuses_what_it_does_not_know(runfile: Path, args: list[str], message: str) -> None:
    done = run_runfile(runfile, *args)
    assert done.returncode == 1
    assert message in done.stderr


def test_runfile_needs_nvidia_file_name(tmp_path: Path) -> None:
    done = run_runfile(RUNFILE_DOUBLE, "--silent", "--toolkit", f"--toolkitpath={tmp_path}/c")
    assert done.returncode == 1
    assert "cannot tell the CUDA version from my file name" in done.stderr


# --------------------------------------------------------------------------- CUDA repository double


@pytest.mark.parametrize(
    ("path", "version", "message"),
    [
        (
            "ubuntu2404/x86_64",
            "12.4",
            "NVIDIA does not publish cuda-toolkit-12-4 in ubuntu2404/x86_64, which starts with CUDA 12.5",
        ),
        ("ubuntu2404/sbsa", "12.4", "which starts with CUDA 12.5"),
        (
            "debian12/x86_64",
            "12.2",
            "NVIDIA does not publish cuda-toolkit-12-2 in debian12/x86_64, which starts with CUDA 12.3",
        ),
        ("debian12/x86_64", "12.7", "CUDA 12.7 was never released"),
        ("debian12/sbsa", "12.6", "no table entry for NVIDIA's repository path debian12/sbsa"),
    ],
)
def test_repository_double_refuses_toolkits_nvidia_does_not_ship(
    tmp_path: Path, path: str, version: str, message: str
) -> None:
    out = tmp_path / "repo"
    done = subprocess.run(
        ["bash", str(BUILD_REPO), str(out), path, "amd64", "12.6", version], capture_output=True, text=True, check=False
    )
    assert done.returncode == 3
    assert message in done.stderr
    # Refused before anything was built.
    assert not out.exists()


# --------------------------------------------------------------------------- nvidia-smi and reboot doubles


def run_smi(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FAKE_NVIDIA_SMI_XML=str(XML), FAKE_NVIDIA_SMI_DRIVER_STATE=str(tmp_path / "driver-state"))
    return subprocess.run([sys.executable, str(FAKE_SMI), *args], capture_output=True, text=True, env=env, check=False)


def run_reboot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        FAKE_REBOOT_STATE_DIR=str(tmp_path / "reboot"),
        FAKE_NVIDIA_SMI_DRIVER_STATE=str(tmp_path / "driver-state"),
        FAKE_REBOOT_LOG=str(tmp_path / "reboot.log"),
    )
    return subprocess.run(["sh", str(FAKE_REBOOT), *args], capture_output=True, text=True, env=env, check=False)


def test_nvidia_smi_fails_like_the_real_one_until_the_driver_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "driver-state").write_text("not-loaded\n")
    down = run_smi(tmp_path, "-q", "-x")
    assert down.returncode == 9
    assert down.stdout.startswith("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    assert run_smi(tmp_path, "--query-gpu=uuid", "--format=csv,noheader").returncode == 9
    # The reboot double loads it.
    assert run_reboot(tmp_path).returncode == 0
    up = run_smi(tmp_path, "--query-gpu=uuid", "--format=csv,noheader")
    assert up.returncode == 0
    assert up.stdout.split() == ["GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f", "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"]


def test_nvidia_smi_answers_without_a_driver_state_file(tmp_path: Path) -> None:
    assert run_smi(tmp_path, "-q", "-x").stdout.startswith("<?xml")


def test_reboot_double_changes_the_boot_id_once_per_reboot(tmp_path: Path) -> None:
    before = run_reboot(tmp_path, "--boot-id").stdout
    assert run_reboot(tmp_path, "--boot-id").stdout == before
    assert run_reboot(tmp_path).returncode == 0
    assert run_reboot(tmp_path, "--boot-id").stdout != before
    assert len((tmp_path / "reboot.log").read_text().splitlines()) == 1
    assert (tmp_path / "driver-state").read_text() == "loaded\n"
    assert run_reboot(tmp_path, "--now").returncode == 2
