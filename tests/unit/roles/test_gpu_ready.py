"""roles/_common/files/gpu-ready against fake nvidia-smi and nvidia-modprobe binaries and device nodes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HELPER = Path(__file__).resolve().parents[3] / "roles" / "_common" / "files" / "gpu-ready"
GPU0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
GPU1 = "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


@pytest.fixture(name="fake_bin")
def fake_bin_fixture(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return bin_dir


def _nvidia_smi(bin_dir: Path, uuids: list[str], ready_after: int = 0) -> None:
    """nvidia-smi that lists nothing for the first `ready_after` calls, then the GPUs."""
    counter = bin_dir / "calls"
    lines = "\\n".join(uuids)
    indexes = "\\n".join(str(i) for i in range(len(uuids)))
    _fake(
        bin_dir,
        "nvidia-smi",
        f'n=$(cat "{counter}" 2>/dev/null || echo 0); echo $((n + 1)) > "{counter}"\n'
        f'[ "$n" -lt {ready_after} ] && exit 9\n'
        f'case "$1" in --query-gpu=index) printf "{indexes}\\n" ;; *) printf "{lines}\\n" ;; esac\n',
    )


def _run(bin_dir: Path, *args: str, dev: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", GPU_READY_DEV=str(dev or bin_dir / "no-dev"))
    return subprocess.run([str(HELPER), *args], capture_output=True, text=True, env=env, check=False, timeout=30)


def test_ready_when_every_assigned_gpu_is_listed(fake_bin: Path) -> None:
    _nvidia_smi(fake_bin, [GPU0, GPU1])
    done = _run(fake_bin, "wait", "5", GPU0)
    assert done.returncode == 0, done.stderr
    assert GPU0 in done.stdout


def test_uuid_comparison_ignores_case(fake_bin: Path) -> None:
    _nvidia_smi(fake_bin, [GPU0.upper()])
    assert _run(fake_bin, "wait", "5", GPU0).returncode == 0


def test_waits_for_a_driver_that_comes_up_late(fake_bin: Path) -> None:
    _nvidia_smi(fake_bin, [GPU0], ready_after=2)
    done = _run(fake_bin, "wait", "10", GPU0)
    assert done.returncode == 0, done.stderr


def test_fails_instead_of_starting_on_the_cpu(fake_bin: Path) -> None:
    _nvidia_smi(fake_bin, [GPU1])
    done = _run(fake_bin, "wait", "1", GPU0, GPU1)
    assert done.returncode == 1
    assert f"still does not list: {GPU0}" in done.stderr
    assert GPU1 not in done.stderr.split("list:")[1].split("\n")[0]


def test_creates_device_nodes_for_every_gpu(fake_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "modprobe.log"
    _nvidia_smi(fake_bin, [GPU0, GPU1])
    _fake(fake_bin, "nvidia-modprobe", f'echo "$@" >> "{log}"\n')
    assert _run(fake_bin, "wait", "5", GPU1).returncode == 0
    assert log.read_text().split() == ["-u", "-c", "0", "-c", "1"]


def test_usage_error(fake_bin: Path) -> None:
    assert _run(fake_bin, "wait", "5").returncode == 2
    assert _run(fake_bin, "sandbox").returncode == 2
    assert _run(fake_bin, "serve", GPU0).returncode == 2


@pytest.fixture(name="dev")
def dev_fixture(tmp_path: Path) -> Path:
    """Stand-ins for /dev/nvidiactl, /dev/nvidia-uvm and /dev/nvidia0 (plain files open like nodes)."""
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidiactl", "nvidia-uvm", "nvidia0"):
        (dev / name).write_text("")
    return dev


def test_sandbox_check_opens_every_node_and_sees_the_gpus(fake_bin: Path, dev: Path) -> None:
    _nvidia_smi(fake_bin, [GPU0, GPU1])
    done = _run(fake_bin, "sandbox", GPU0, dev=dev)
    assert done.returncode == 0, done.stderr
    assert "opens nvidiactl nvidia-uvm nvidia0 and sees " + GPU0 in done.stdout


def test_sandbox_check_fails_when_a_node_cannot_be_opened(fake_bin: Path, dev: Path) -> None:
    # A directory exists but cannot be opened read-write, even by root: like a node that the
    # unit's device policy refuses (EPERM) or a missing group (EACCES).
    _nvidia_smi(fake_bin, [GPU0])
    (dev / "nvidia0").unlink()
    (dev / "nvidia0").mkdir()
    done = _run(fake_bin, "sandbox", GPU0, dev=dev)
    assert done.returncode == 1
    assert "cannot open" in done.stderr and "nvidia0" in done.stderr


def test_sandbox_check_fails_without_nvidiactl(fake_bin: Path, dev: Path) -> None:
    _nvidia_smi(fake_bin, [GPU0])
    (dev / "nvidiactl").unlink()
    done = _run(fake_bin, "sandbox", GPU0, dev=dev)
    assert done.returncode == 1
    assert "no " in done.stderr and "nvidiactl" in done.stderr


def test_sandbox_check_fails_when_nvml_in_the_sandbox_misses_a_gpu(fake_bin: Path, dev: Path) -> None:
    _nvidia_smi(fake_bin, [GPU1])
    done = _run(fake_bin, "sandbox", GPU0, dev=dev)
    assert done.returncode == 1
    assert f"does not list: {GPU0}" in done.stderr
