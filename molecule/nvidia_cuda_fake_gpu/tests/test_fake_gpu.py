"""nvidia_cuda's GPU-present paths against an nvidia-smi test double reporting the guide's two
RTX 2080 Ti (NVLink NV2) and empty stand-ins for the driver packages: kernel module choice,
driver packages and holds, nouveau blacklist, persistence mode, reboot decision, nvidia-smi and
NVLink verification, the GPU facts by UUID and the VRAM check entry point."""

from __future__ import annotations

import functools
import typing as t

from playbook_runs import run_playbook, task_results

HOST = "ai-stack-nvidia_cuda_fake_gpu"
UUID_0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
UUID_1 = "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"


def results(report: dict[str, t.Any], name: str) -> list[dict[str, t.Any]]:
    return task_results(report, name, HOST)


def one_msg(report: dict[str, t.Any], name: str) -> str:
    (result,) = results(report, name)
    return " ".join(str(result.get("msg", "")).split())


@functools.cache
def converged_in_check_mode() -> tuple[int, dict[str, t.Any]]:
    return run_playbook(check=True)


# --------------------------------------------------------------------------- facts


def test_gpu_facts_for_the_service_roles() -> None:
    rc, report = converged_in_check_mode()
    assert rc == 0
    (exported,) = results(report, "Show the facts nvidia_cuda exported")
    facts = exported["msg"]
    assert int(facts["nvidia_cuda_gpu_count"]) == 2
    assert facts["nvidia_cuda_gpu_source"] == "nvidia-smi"
    assert [gpu["uuid"] for gpu in facts["nvidia_cuda_gpus"]] == [UUID_0, UUID_1]
    assert [gpu["memory_total_mib"] for gpu in facts["nvidia_cuda_gpus"]] == [22528, 22528]
    assert facts["nvidia_cuda_driver_ready"] in (True, "True")
    assert facts["nvidia_cuda_driver_version"] == "550.54.15"
    assert facts["nvidia_cuda_reboot_pending"] in (False, "False")
    # The guide's layout by default: Ollama on GPU0, ComfyUI on GPU1, pinned by UUID.
    assert facts["ollama_environment"] == {"CUDA_VISIBLE_DEVICES": UUID_0, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert facts["comfyui_environment"] == {"CUDA_VISIBLE_DEVICES": UUID_1, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


# --------------------------------------------------------------------------- driver


def test_open_kernel_modules_chosen_for_turing() -> None:
    report = converged_in_check_mode()[1]
    message = one_msg(report, "Report the driver choice")
    assert message == (
        "NVIDIA driver for 2 GPU(s) (NVIDIA GeForce RTX 2080 Ti, NVIDIA GeForce RTX 2080 Ti): branch 580, "
        "open kernel modules (chosen by GPU generation), from package."
    )


def test_driver_packages_installed_and_held(host) -> None:
    assert host.package("nvidia-open-580").is_installed
    assert not host.package("cuda-drivers-580").is_installed
    assert host.check_output("apt-mark showhold").split() == ["nvidia-open-580", "nvidia-persistenced"]


def test_proprietary_override_selects_cuda_drivers() -> None:
    rc, report = run_playbook(extra_vars={"nvidia_cuda_kernel_modules": "proprietary"}, check=True)
    assert rc == 0
    assert "proprietary kernel modules (nvidia_cuda_kernel_modules)" in one_msg(report, "Report the driver choice")
    (install,) = results(report, "Install the driver packages from NVIDIA's repository")
    assert install["changed"]
    assert "cuda-drivers-580" in install.get("stdout", "")


def test_nouveau_blacklisted_and_initramfs_rebuilt_once(host) -> None:
    blacklist = host.file("/etc/modprobe.d/blacklist-nouveau.conf").content_string.splitlines()
    assert "blacklist nouveau" in blacklist
    assert "options nouveau modeset=0" in blacklist
    # Once, in the first converge: not again in the idempotence run or later check runs.
    assert host.file("/var/log/fake-update-initramfs.log").content_string.splitlines() == ["update-initramfs -u"]


def test_persistence_mode(host) -> None:
    dropin = host.file("/etc/systemd/system/nvidia-persistenced.service.d/ai-stack.conf").content_string
    assert "ExecStart=\nExecStart=/usr/bin/nvidia-persistenced --user root --persistence-mode --verbose" in dropin
    assert host.service("nvidia-persistenced").is_enabled
    shown = host.check_output("systemctl show nvidia-persistenced -p ExecStart")
    assert "--persistence-mode" in shown and "--no-persistence-mode" not in shown


# --------------------------------------------------------------------------- verification


def test_nvidia_smi_and_nvlink_are_reported() -> None:
    report = converged_in_check_mode()[1]
    driver = one_msg(report, "Report the driver")
    assert UUID_0 in driver and UUID_1 in driver and "550.54.15" in driver
    topology = one_msg(report, "Report NVLink (from nvidia-smi; install python3-pynvml for per-link data)")
    assert "NV2" in topology
    assert one_msg(report, "Check that nvcc is the requested toolkit").endswith("release 12.4, V12.4.131")


def test_reboot_needed_is_reported_not_done(host) -> None:
    host.run("touch /var/run/reboot-required")
    try:
        rc, report = run_playbook(check=True)
    finally:
        host.run("rm -f /var/run/reboot-required")
    assert rc == 0
    message = one_msg(report, "Ask for a reboot")
    assert message.startswith(f"REBOOT NEEDED: {HOST} must be rebooted to finish the NVIDIA driver setup:")
    assert "/var/run/reboot-required exists" in message
    assert "nvidia_cuda_reboot_allowed is false, so the role does not reboot" in message
    (reboot,) = results(report, "Reboot to load the NVIDIA driver")
    assert reboot.get("skipped")
    (smi,) = results(report, "Ask nvidia-smi for the GPUs and the driver")
    assert smi.get("skipped")
    (exported,) = results(report, "Show the facts nvidia_cuda exported")
    assert exported["msg"]["nvidia_cuda_reboot_pending"] in (True, "True")


# --------------------------------------------------------------------------- VRAM check entry point


def test_vram_check_passes_when_the_plan_fits() -> None:
    rc, report = run_playbook("vram_check.yml")
    assert rc == 0
    assert one_msg(report, "Warn about GPUs that are too small, or fail (nvidia_cuda_vram_on_overflow)") == (
        "The planned VRAM fits on every GPU."
    )


def test_vram_check_warns_or_fails_as_chosen() -> None:
    too_big = {"vram_test_ollama_mib": 30000}
    name = "Warn about GPUs that are too small, or fail (nvidia_cuda_vram_on_overflow)"
    rc, report = run_playbook("vram_check.yml", {**too_big, "vram_test_on_overflow": "warn"})
    assert rc == 0
    warning = one_msg(report, name)
    assert warning.startswith(f"VRAM WARNING on {HOST}: GPU 0 (NVIDIA GeForce RTX 2080 Ti) needs 30000 MiB")
    assert "for ollama but has 22528 MiB." in warning
    rc, report = run_playbook("vram_check.yml", {**too_big, "vram_test_on_overflow": "fail"})
    assert rc != 0
    (failed,) = results(report, name)
    assert failed["failed"]
    assert failed["msg"].startswith("VRAM ERROR")
