"""nvidia_cuda's GPU-present paths against an nvidia-smi test double reporting the guide's two
RTX 2080 Ti (NVLink NV2) and empty stand-ins for the driver packages: kernel module choice,
driver packages, holds and the branch pin, nouveau blacklist, persistence mode, nvidia-smi and
NVLink verification, the GPU facts by UUID, the VRAM check entry point, and a pending reboot as a
state (the host ends cleanly, _common's reboot_guard keeps services off it, site.yml lists it)
or, when allowed, a reboot through a reboot double after which the run goes on."""

from __future__ import annotations

import typing as t

import pytest
from playbook_runs import converged_check_diff, run_playbook, task_results

HOST = "ai-stack-nvidia_cuda_fake_gpu"
UUID_0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
UUID_1 = "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"
DRIVER_STATE = "/usr/local/share/fake-nvidia-smi/driver-state"
REBOOT_LOG = "/var/log/fake-reboot.log"
SERVICE_ENV = "/var/lib/gpu-service-double.env"
SUMMARY_TASK = "List the hosts that need a reboot before their services are configured"


def results(report: dict[str, t.Any], name: str) -> list[dict[str, t.Any]]:
    return task_results(report, name, HOST)


def one_msg(report: dict[str, t.Any], name: str) -> str:
    (result,) = results(report, name)
    return " ".join(str(result.get("msg", "")).split())


def converged_in_check_mode() -> tuple[int, dict[str, t.Any]]:
    # The run the shared check-mode test asserts on, made once (this test comes first, on the converged host).
    return converged_check_diff()


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


def test_precompiled_kernel_modules_are_not_held(host) -> None:
    # Held, they would keep the next kernel's module out: the host would boot it without a GPU driver.
    modules = [
        "linux-modules-nvidia-580-server-open-generic",
        "linux-objects-nvidia-580-server-open-6.8.0-45-generic",
        "linux-signatures-nvidia-6.8.0-45-generic",
    ]
    for package in modules:
        assert host.package(package).is_installed, package
    assert not set(modules) & set(host.check_output("apt-mark showhold").split())


def test_driver_branch_is_pinned_instead(host) -> None:
    # The repository double has nvidia-persistenced 580.95.05-1 and 590.44.01-1, like NVIDIA's
    # repository, which carries every branch under one name.
    assert host.package("nvidia-persistenced").version == "580.95.05-1"
    policy = host.check_output("apt-cache policy nvidia-persistenced")
    assert "Candidate: 580.95.05-1" in policy
    assert " 580.95.05-1 990" in policy
    assert " 590.44.01-1 600" in policy


def test_proprietary_override_selects_cuda_drivers() -> None:
    # The driver step alone (with the read-only preflight and what runs always: settings, detection): the
    # choice is made there.
    rc, report = run_playbook(
        extra_vars={"nvidia_cuda_kernel_modules": "proprietary"},
        check=True,
        args=("--tags", "nvidia_cuda_preflight,nvidia_cuda_driver"),
    )
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


# --------------------------------------------------------------------------- reboot pending


@pytest.fixture(name="reboot_pending")
def reboot_pending_fixture(host) -> t.Iterator[bool]:
    """The host between driver install and reboot: /run/reboot-required, and (where the PCI double
    can be mounted) no driver answering, the GPUs only visible on the PCI bus. Yields whether the
    driver is down."""
    pci = host.run("fake-pci-gpus mount 0000:01:00.0=0x1e04 0000:02:00.0=0x1e04")
    assert pci.rc in (0, 3), pci.stderr
    driver_down = pci.rc == 0
    host.run(
        f"echo {'not-loaded' if driver_down else 'loaded'} > {DRIVER_STATE}; touch /run/reboot-required; "
        f"rm -f {REBOOT_LOG} {SERVICE_ENV}"
    )
    try:
        yield driver_down
    finally:
        host.run(f"echo loaded > {DRIVER_STATE}; rm -f /run/reboot-required {SERVICE_ENV}; fake-pci-gpus umount")


def site_run(host, monkeypatch: pytest.MonkeyPatch, **extra_vars: t.Any) -> tuple[int, dict[str, t.Any]]:
    """playbooks/site.yml with the GPU layer and a guarded service only, as an office runs it."""
    monkeypatch.setenv("ANSIBLE_RUN_TAGS", "nvidia_cuda,gpu_service_double")
    monkeypatch.setenv("ANSIBLE_SHOW_CUSTOM_STATS", "true")
    fingerprint = host.file("/srv/cuda-repo-double/KEY_FINGERPRINT").content_string.strip()
    return run_playbook(
        "site_with_service.yml",
        {"ai_stack_hosts": "all", "nvidia_cuda_repo_key_fingerprint": fingerprint, **extra_vars},
    )


def test_reboot_pending_ends_the_host_cleanly(host, reboot_pending: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, report = site_run(host, monkeypatch)
    assert rc == 0
    assert report["stats"][HOST]["failures"] == 0
    if reboot_pending:
        # What the service plays used to fail on: GPUs from the PCI scan, without UUIDs.
        (detected,) = results(report, "Detect NVIDIA GPUs (NVML, nvidia-smi, then a PCI scan that needs no driver)")
        assert detected["source"] == "pci"
        assert [gpu["uuid"] for gpu in detected["gpus"]] == [None, None]
    message = one_msg(report, "Ask for a reboot")
    assert message.startswith(f"REBOOT NEEDED: {HOST} must be rebooted to finish the NVIDIA driver setup:")
    assert "/var/run/reboot-required exists" in message
    assert "nvidia_cuda_reboot_allowed is false, so the role does not reboot; this host leaves the play here" in message
    (reboot,) = results(report, "Reboot to load the NVIDIA driver")
    assert reboot.get("skipped")
    assert not host.file(REBOOT_LOG).exists
    # Left the play: the role's checks did not run; the guarded service stopped at its reboot_guard.
    assert not results(report, "Ask nvidia-smi for the GPUs and the driver")
    # Every service role that includes the guard says so (the ollama play's too, in site.yml).
    guards = [" ".join(r["msg"].split()) for r in results(report, "Say why this host stops before its services")]
    assert guards
    assert all(g.startswith(f"REBOOT NEEDED: {HOST} waits for a reboot to load the NVIDIA driver") for g in guards)
    assert any("so gpu_service_double is skipped on it" in g for g in guards)
    assert not results(report, "Configure the service (test double)")
    assert not host.file(SERVICE_ENV).exists
    # For AWX (ansible-runner artifacts) and the recap.
    assert report["global_custom_stats"]["nvidia_cuda_reboot_needed"] == {HOST: ["/var/run/reboot-required exists"]}
    (summary,) = task_results(report, SUMMARY_TASK, "localhost")
    assert summary["msg"] == f"REBOOT NEEDED: {HOST} — reboot and run again"


def test_reboot_allowed_reboots_once_and_goes_on(host, reboot_pending: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rc, report = site_run(host, monkeypatch, nvidia_cuda_reboot_allowed=True)
    assert rc == 0, report["stats"]
    (reboot,) = results(report, "Reboot to load the NVIDIA driver")
    assert reboot["changed"] and reboot["rebooted"]
    assert len(host.file(REBOOT_LOG).content_string.splitlines()) == 1
    detections = results(report, "Detect NVIDIA GPUs (NVML, nvidia-smi, then a PCI scan that needs no driver)")
    assert [d["source"] for d in detections] == (["pci", "nvidia-smi"] if reboot_pending else ["nvidia-smi"] * 2)
    (ready,) = results(report, "Check that the driver answers after the reboot")
    assert not ready.get("failed") and not ready.get("skipped")
    assert UUID_0 in one_msg(report, "Report the driver")
    assert "nvidia_cuda_reboot_needed" not in report["global_custom_stats"]
    (summary,) = task_results(report, SUMMARY_TASK, "localhost")
    assert summary.get("skipped")
    # The service after it was configured, on GPU0 by UUID.
    assert host.file(SERVICE_ENV).content_string.split() == [
        "CUDA_DEVICE_ORDER=PCI_BUS_ID",
        f"CUDA_VISIBLE_DEVICES={UUID_0}",
    ]


def test_reboot_guard_keeps_services_off_a_host_that_waits_for_a_reboot(host) -> None:
    # As a service role sees a host whose nvidia_cuda play found a pending reboot.
    pending = {
        "nvidia_cuda_reboot_pending": True,
        "nvidia_cuda_reboot_reasons": ["the NVIDIA driver was installed in this run"],
    }
    rc, report = run_playbook("guarded_service.yml", pending)
    assert rc == 0
    message = one_msg(report, "Say why this host stops before its services")
    assert message.startswith(f"REBOOT NEEDED: {HOST} waits for a reboot to load the NVIDIA driver")
    assert "(the NVIDIA driver was installed in this run)" in message
    assert "services not configured against a half-ready GPU" in message
    assert not results(report, "Configure the service (test double)")
    assert not host.file(SERVICE_ENV).exists
    # Without a pending reboot the guard lets the service through.
    try:
        rc, report = run_playbook("guarded_service.yml")
        assert rc == 0
        (guard,) = results(report, "Say why this host stops before its services")
        assert guard.get("skipped")
        assert f"CUDA_VISIBLE_DEVICES={UUID_0}" in host.file(SERVICE_ENV).content_string
    finally:
        host.run(f"rm -f {SERVICE_ENV}")


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
