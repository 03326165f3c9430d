"""nvidia_cuda on a host without a GPU: no-GPU facts and messages, the CUDA repository set up
against a local stand-in for NVIDIA's (tests/doubles/cuda_repo), the toolkit and nvcc, and the
failures a user must see (GPU required, wrong key, missing toolkit version)."""

from __future__ import annotations

import functools
import typing as t

from playbook_runs import run_playbook, task_results

HOST = "ai-stack-nvidia_cuda"
DOUBLE = "/srv/cuda-repo-double"
SOURCES = "/etc/apt/sources.list.d/nvidia-cuda.sources"
TOOLKIT = "/usr/local/cuda-12.4"


# --------------------------------------------------------------------------- helpers


def results(report: dict[str, t.Any], name: str) -> list[dict[str, t.Any]]:
    return task_results(report, name, HOST)


def failed_msg(report: dict[str, t.Any]) -> str:
    failures = [r for p in report["plays"] for task in p["tasks"] for r in task["hosts"].values() if r.get("failed")]
    assert failures, "expected a failed task"
    return " ".join(str(failures[-1].get("msg", "")).split())


@functools.cache
def converged_in_check_mode() -> tuple[int, dict[str, t.Any]]:
    return run_playbook(check=True)


def fingerprint(host) -> str:
    return host.file(f"{DOUBLE}/KEY_FINGERPRINT").content_string.strip()


# --------------------------------------------------------------------------- facts and messages


def test_reports_no_gpu_and_what_later_roles_get() -> None:
    rc, report = converged_in_check_mode()
    assert rc == 0
    (exported,) = results(report, "Show the facts nvidia_cuda exported")
    facts = exported["msg"]
    assert facts["nvidia_cuda_gpus"] == []
    assert int(facts["nvidia_cuda_gpu_count"]) == 0
    assert facts["nvidia_cuda_driver_ready"] in (False, "False")
    assert facts["nvidia_cuda_reboot_pending"] in (False, "False")
    assert facts["nvidia_cuda_nvlink"] == {"links": {}, "pairs": []}
    assert facts["nvidia_cuda_bin_dir"] == f"{TOOLKIT}/bin"
    assert facts["nvidia_cuda_home"] == TOOLKIT
    # The service roles' default on a GPU-less host: CPU, never a silent wrong GPU.
    assert facts["ollama_environment"] == {"CUDA_VISIBLE_DEVICES": "-1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def test_no_gpu_message_says_what_was_found_and_what_happens() -> None:
    report = converged_in_check_mode()[1]
    (message,) = results(report, "Report a host without an NVIDIA GPU")
    text = " ".join(message["msg"].split())
    assert text.startswith(f"No NVIDIA GPU on {HOST}: selfhosted.ai_stack.nvidia_gpu_info found 0 NVIDIA GPU(s)")
    assert "nvidia_cuda_require_gpu is false, so the NVIDIA driver is skipped" in text
    assert "run on the CPU" in text
    assert "configured anyway (nvidia_cuda_toolkit_without_gpu is true)" in text


def test_nvcc_verification_reports_the_toolkit() -> None:
    report = converged_in_check_mode()[1]
    (check,) = results(report, "Check that nvcc is the requested toolkit")
    assert check["msg"] == "CUDA toolkit: Cuda compilation tools, release 12.4, V12.4.131"


def test_gpu_tasks_are_skipped_without_a_gpu() -> None:
    report = converged_in_check_mode()[1]
    for name in ("Driver", "Reboot when the driver needs it", "Ask nvidia-smi for the GPUs and the driver"):
        (result,) = results(report, name)
        assert result.get("skipped"), name


def test_require_gpu_true_fails_clearly_and_changes_nothing() -> None:
    rc, report = run_playbook(extra_vars={"nvidia_cuda_require_gpu": True})
    assert rc != 0
    message = failed_msg(report)
    assert message.startswith(f"nvidia_cuda_require_gpu is true, but no NVIDIA GPU was found on {HOST}:")
    assert "found 0 NVIDIA GPU(s)" in message
    assert "nvidia_cuda_require_gpu: false" in message
    (require,) = results(report, "Require an NVIDIA GPU")
    assert require["failed"]
    assert report["stats"][HOST]["changed"] == 0


# --------------------------------------------------------------------------- repository


def test_repository_is_a_signed_deb822_entry(host) -> None:
    distro = "debian" + host.system_info.release.split(".")[0]
    if host.system_info.distribution == "ubuntu":
        distro = "ubuntu" + host.system_info.release.replace(".", "")
    key = f"/etc/apt/keyrings/nvidia-cuda-{fingerprint(host)[-8:].lower()}.asc"
    fields = dict(
        line.split(": ", 1)
        for line in host.file(SOURCES).content_string.splitlines()
        if ": " in line and line[0] != "#"
    )
    assert fields["Types"] == "deb"
    assert fields["URIs"] == f"http://127.0.0.1:8765/compute/cuda/repos/{distro}/x86_64/"
    assert fields["Suites"] == "/"
    assert "Components" not in fields
    assert fields["Architectures"] == "amd64"
    assert fields["Signed-By"] == key
    assert fields["Enabled"] == "yes"
    assert not host.file("/etc/apt/sources.list.d/cuda-debian12-x86_64.list").exists


def test_signed_by_keyring_is_the_pinned_key(host) -> None:
    key = host.file(f"/etc/apt/keyrings/nvidia-cuda-{fingerprint(host)[-8:].lower()}.asc")
    assert key.user == "root" and key.mode == 0o644
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    listing = host.check_output(f"gpg --homedir $(mktemp -d) --with-colons --show-keys {key.path}")
    assert f"fpr:::::::::{fingerprint(host)}:" in listing


def test_apt_verifies_the_repository_signature(host) -> None:
    update = host.run("apt-get update")
    assert update.rc == 0, update.stderr
    assert "127.0.0.1:8765" in update.stdout
    for bad in ("NO_PUBKEY", "not signed", "is not signed", "GPG error", "insecure"):
        assert bad not in update.stdout + update.stderr
    # apt keeps a repository's InRelease only after its signature checked out.
    assert host.run("ls /var/lib/apt/lists/ | grep -q '127.0.0.1:8765_.*_InRelease$'").rc == 0


def test_repository_is_preferred_by_its_release_label(host) -> None:
    preferences = host.file("/etc/apt/preferences.d/nvidia-cuda").content_string
    assert "# Ansible managed" in preferences.splitlines()[:3]
    assert "Pin: release l=NVIDIA CUDA\nPin-Priority: 600" in preferences
    policy = host.check_output("apt-cache policy cuda-toolkit-12-4")
    assert "Installed: 12.4.1-1" in policy
    assert " 600 http://127.0.0.1:8765/compute/cuda/repos/" in policy


# --------------------------------------------------------------------------- toolkit


def test_toolkit_package_from_the_repository(host) -> None:
    package = host.package("cuda-toolkit-12-4")
    assert package.is_installed
    assert package.version == "12.4.1-1"
    assert not host.package("cuda-toolkit-12-6").is_installed
    # Never the cuda metapackage (it pulls a driver) and, on a GPU-less host, no driver at all.
    assert host.run("dpkg-query -W -f '${Package}\\n' 'cuda' 'cuda-drivers*' 'nvidia-*' 2>/dev/null").stdout == ""


def test_nvcc_on_the_login_path(host) -> None:
    out = host.check_output("bash -lc 'command -v nvcc && nvcc --version && echo LD=$LD_LIBRARY_PATH'")
    assert out.splitlines()[0] == f"{TOOLKIT}/bin/nvcc"
    assert "Cuda compilation tools, release 12.4, V12.4.131" in out
    assert f"LD={TOOLKIT}/lib64" in out
    # Sourcing the snippet twice does not grow the paths.
    twice = host.check_output("bash -lc '. /etc/profile.d/cuda.sh; echo $PATH; echo $LD_LIBRARY_PATH'")
    assert twice.count(f"{TOOLKIT}/bin") == 1 and twice.count(f"{TOOLKIT}/lib64") == 1


def test_profile_snippet(host) -> None:
    snippet = host.file("/etc/profile.d/cuda.sh")
    assert snippet.user == "root" and snippet.mode == 0o644
    assert "# Ansible managed" in snippet.content_string.splitlines()[:3]


def test_no_driver_side_effects_without_a_gpu(host) -> None:
    assert not host.file("/etc/modprobe.d/blacklist-nouveau.conf").exists
    assert not host.file("/etc/systemd/system/nvidia-persistenced.service.d").exists
    assert host.check_output("apt-mark showhold") == ""


# --------------------------------------------------------------------------- refusals


def test_missing_toolkit_version_lists_what_the_repository_offers() -> None:
    rc, report = run_playbook(extra_vars={"nvidia_cuda_toolkit_version": "12.3"}, check=True)
    assert rc != 0
    message = failed_msg(report)
    assert message.startswith('cuda-toolkit-12-3 (nvidia_cuda_toolkit_version "12.3") is not in NVIDIA\'s repository')
    assert "It offers: 12.4, 12.6." in message


def test_key_with_another_fingerprint_is_refused_and_removed(host) -> None:
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    sources_before = host.file(SOURCES).content_string
    rc, report = run_playbook(extra_vars={"nvidia_cuda_repo_key_fingerprint": wrong})
    assert rc != 0
    message = failed_msg(report)
    assert f"has the fingerprint(s) {fingerprint(host)}, not {wrong}" in message
    assert "The file was removed and the repository was not configured" in message
    assert not host.file(f"/etc/apt/keyrings/nvidia-cuda-{wrong[-8:].lower()}.asc").exists
    assert host.file(SOURCES).content_string == sources_before
