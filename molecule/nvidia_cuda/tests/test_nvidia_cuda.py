"""nvidia_cuda on a host without a GPU: no-GPU facts and messages, the CUDA repository set up
from the collection-wide mirror setting against a local stand-in for NVIDIA's
(tests/doubles/cuda_repo), the toolkit from the repository or, where that lacks the version, from a
stand-in for NVIDIA's runfile (tests/doubles/cuda_runfile) through the controller's artifact cache,
nvcc, and the failures a user must see (GPU required, wrong key, missing toolkit version, an offline
site without a mirror)."""

from __future__ import annotations

import functools
import hashlib
import os
import typing as t
from pathlib import Path

from playbook_runs import run_playbook, task_results

HOST = "ai-stack-nvidia_cuda"
DOUBLE = "/srv/cuda-repo-double"
SOURCES = "/etc/apt/sources.list.d/nvidia-cuda.sources"
TOOLKIT = "/usr/local/cuda-12.4"
MIRROR_HOST = "cuda-mirror.office.example:8765"
MIRROR = f"http://{MIRROR_HOST}/compute/cuda/repos"
PROXY_LOG = "/var/log/forward-proxy/requests.log"
NVIDIA_REPOS = "https://developer.download.nvidia.com/compute/cuda/repos"
RUNFILE_LOG = "/var/log/cuda-runfile-double.log"
RUNFILE_DOUBLE = Path(__file__).resolve().parents[3] / "tests/doubles/cuda_runfile/cuda-runfile-double.sh"


# --------------------------------------------------------------------------- helpers


def results(report: dict[str, t.Any], name: str) -> list[dict[str, t.Any]]:
    return task_results(report, name, HOST)


# Runs that need one step of the role only (plus what runs always: settings and GPU detection, and the
# read-only preflight, which sets the facts the later steps read).
TOOLKIT_ONLY = ("--tags", "nvidia_cuda_preflight,nvidia_cuda_toolkit")
TOOLKIT_AND_VERIFY = ("--tags", "nvidia_cuda_preflight,nvidia_cuda_toolkit,nvidia_cuda_verify")


def failed_msg(report: dict[str, t.Any]) -> str:
    failures = [r for p in report["plays"] for task in p["tasks"] for r in task["hosts"].values() if r.get("failed")]
    assert failures, "expected a failed task"
    return " ".join(str(failures[-1].get("msg", "")).split())


@functools.cache
def converged_in_check_mode() -> tuple[int, dict[str, t.Any]]:
    # As an offline site with an office mirror (the scenario's): the preflight lets it through.
    return run_playbook(extra_vars={"ai_stack_offline": True}, check=True)


def fingerprint(host) -> str:
    return host.file(f"{DOUBLE}/KEY_FINGERPRINT").content_string.strip()


def repo_path(host) -> str:
    """NVIDIA's repository directory for the container's distribution (what prepare built)."""
    if host.system_info.distribution == "ubuntu":
        return "ubuntu" + host.system_info.release.replace(".", "") + "/x86_64"
    return "debian" + host.system_info.release.split(".")[0] + "/x86_64"


def repository_has_12_4(host) -> bool:
    # NVIDIA's ubuntu2404 repository starts with CUDA 12.5 (tests/doubles/cuda_repo/build-repo.sh).
    return not repo_path(host).startswith("ubuntu2404")


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
    key = f"/etc/apt/keyrings/nvidia-cuda-{fingerprint(host)[-8:].lower()}.asc"
    fields = dict(
        line.split(": ", 1)
        for line in host.file(SOURCES).content_string.splitlines()
        if ": " in line and line[0] != "#"
    )
    assert fields["Types"] == "deb"
    # The scenario sets only the collection-wide ai_stack_nvidia_repo_mirror_url, not nvidia_cuda_repo_url.
    assert fields["URIs"] == f"{MIRROR}/{repo_path(host)}/"
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
    assert MIRROR_HOST in update.stdout
    for bad in ("NO_PUBKEY", "not signed", "is not signed", "GPG error", "insecure"):
        assert bad not in update.stdout + update.stderr
    # apt keeps a repository's InRelease only after its signature checked out.
    assert host.run("ls /var/lib/apt/lists/ | grep -q 'cuda-mirror.office.example:8765_.*_InRelease$'").rc == 0


def test_signing_key_came_from_the_mirror_through_the_office_proxy(host) -> None:
    # The stand-in's HTTP server logs every request to the journal.
    requests = host.check_output("journalctl -u cuda-repo-double --no-pager -o cat")
    assert f'"GET /compute/cuda/repos/{repo_path(host)}/3bf863cc.pub HTTP/1.1" 200' in requests
    assert f'"GET /compute/cuda/repos/{repo_path(host)}/InRelease HTTP/1.1" 200' in requests
    # The host reaches it only by way of the proxy, which wants the password (407 without it).
    proxied = host.file(PROXY_LOG).content_string
    assert f"GET {MIRROR}/{repo_path(host)}/3bf863cc.pub" in proxied.splitlines(), proxied


def test_proxy_password_stays_out_of_world_readable_files(host) -> None:
    found = host.run(
        "find /etc /usr/local /opt -xdev -type f -perm -o=r -exec grep -l Cuda-proxy-S3cret {} + 2>/dev/null"
    )
    assert found.stdout.strip() == "", found.stdout


def test_repository_is_preferred_by_its_release_label(host) -> None:
    preferences = host.file("/etc/apt/preferences.d/nvidia-cuda").content_string
    assert "# Ansible managed" in preferences.splitlines()[:3]
    assert "Pin: release l=NVIDIA CUDA\nPin-Priority: 600" in preferences
    policy = host.check_output("apt-cache policy cuda-toolkit-12-6")
    assert f" 600 {MIRROR}/" in policy
    if repository_has_12_4(host):
        assert "Installed: 12.4.1-1" in host.check_output("apt-cache policy cuda-toolkit-12-4")


def test_driver_packages_are_pinned_to_the_branch(host) -> None:
    # Debian's driver comes from NVIDIA's repository, which names every branch alike.
    if host.system_info.distribution != "debian":
        return
    preferences = host.file("/etc/apt/preferences.d/nvidia-cuda").content_string
    pin = preferences.index("Pin: version 580.*\nPin-Priority: 990")
    # First, before the repository-wide record.
    assert pin < preferences.index("Pin: release l=NVIDIA CUDA\nPin-Priority: 600")
    assert "Package: nvidia-* libnvidia-* libcuda* " in preferences
    # Globs, not a /regex/, which made every apt command spend 6 s of CPU loading the policy (CPU
    # time, not wall time: the CI machine is busy).
    cpu = float(host.check_output("bash -c 'TIMEFORMAT=%U; { time apt-cache policy kmod >/dev/null; } 2>&1'"))
    assert cpu < 2, f"apt-cache policy took {cpu} s of CPU with the pins"


# --------------------------------------------------------------------------- toolkit


def test_toolkit_from_the_repository_where_it_has_the_version(host) -> None:
    package = host.package("cuda-toolkit-12-4")
    if repository_has_12_4(host):
        assert package.is_installed
        assert package.version == "12.4.1-1"
        assert not host.file(RUNFILE_LOG).exists
    else:
        # ubuntu2404: the runfile stood in (tests below).
        assert not package.is_installed
        assert "installed CUDA 12.4.1 into /usr/local/cuda-12.4" in host.file(RUNFILE_LOG).content_string
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


def test_missing_toolkit_version_lists_what_the_repository_offers(host) -> None:
    # Neither in the repository nor in the role's runfile table.
    rc, report = run_playbook(extra_vars={"nvidia_cuda_toolkit_version": "12.3"}, check=True, args=TOOLKIT_ONLY)
    assert rc != 0
    message = failed_msg(report)
    assert message.startswith('cuda-toolkit-12-3 (nvidia_cuda_toolkit_version "12.3") is not in NVIDIA\'s repository')
    assert ("It offers: 12.4, 12.6." if repository_has_12_4(host) else "It offers: 12.6.") in message
    assert "The role has no runfile for 12.3 either (it knows 12.4, 12.5, 12.6, 12.8, 12.9)" in message
    assert "set nvidia_cuda_runfile_url and nvidia_cuda_runfile_checksum" in message


def test_repository_only_source_does_not_try_the_runfile() -> None:
    rc, report = run_playbook(
        extra_vars={"nvidia_cuda_toolkit_version": "12.5", "nvidia_cuda_toolkit_source": "repository"},
        check=True,
        args=TOOLKIT_ONLY,
    )
    assert rc != 0
    message = failed_msg(report)
    assert message.startswith('cuda-toolkit-12-5 (nvidia_cuda_toolkit_version "12.5") is not in NVIDIA\'s repository')
    assert "nvidia_cuda_toolkit_source is repository, so NVIDIA's runfile installer is not tried" in message


def test_runfile_source_for_an_unknown_version_fails_in_preflight() -> None:
    rc, report = run_playbook(
        extra_vars={"nvidia_cuda_toolkit_version": "12.3", "nvidia_cuda_toolkit_source": "runfile"}
    )
    assert rc != 0
    (check,) = results(report, "Check that the runfile for this toolkit version is known")
    assert check["failed"]
    message = failed_msg(report)
    assert message.startswith("nvidia_cuda_toolkit_source is runfile, but the role has no runfile for CUDA 12.3")
    assert "Set both" in message and "nvidia_cuda_runfile_url" in message
    assert report["stats"][HOST]["changed"] == 0


# --------------------------------------------------------------------------- offline sites


def test_offline_site_without_a_mirror_fails_in_preflight_and_changes_nothing(host) -> None:
    # NVIDIA's public URL is the default of ai_stack_nvidia_repo_mirror_url (the scenario sets a mirror).
    sources_before = host.file(SOURCES).content_string
    rc, report = run_playbook(extra_vars={"ai_stack_offline": True, "ai_stack_nvidia_repo_mirror_url": NVIDIA_REPOS})
    assert rc != 0
    (refusal,) = results(report, "Refuse NVIDIA's public CUDA repository on an offline site")
    assert refusal["failed"]
    message = failed_msg(report)
    assert message.startswith("ai_stack_offline is true, but NVIDIA's CUDA repository would still be downloaded")
    assert f"{NVIDIA_REPOS}/{repo_path(host)}/" in message
    assert "Set ai_stack_nvidia_repo_mirror_url to the office's mirror" in message
    assert report["stats"][HOST]["changed"] == 0
    # Preflight: nothing after it ran.
    assert not results(report, "Configure NVIDIA's CUDA repository (deb822, signed-by)")
    assert host.file(SOURCES).content_string == sources_before


def test_offline_site_with_the_mirror_passes_preflight() -> None:
    rc, report = converged_in_check_mode()
    assert rc == 0
    (refusal,) = results(report, "Refuse NVIDIA's public CUDA repository on an offline site")
    assert not refusal.get("failed") and not refusal.get("skipped")
    assert report["stats"][HOST]["changed"] == 0


# --------------------------------------------------------------------------- runfile


def test_runfile_stands_in_when_the_repository_lacks_the_version(host) -> None:
    """12.5 is in the role's runfile table but not in the stand-in repository (12.4 and 12.6 only)."""
    cache = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifact-cache"
    runfile = "cuda_12.5.1_555.42.06_linux.run"
    sha256 = hashlib.sha256(RUNFILE_DOUBLE.read_bytes()).hexdigest()
    host.run(f"rm -f {RUNFILE_LOG}")
    try:
        rc, report = run_playbook(extra_vars={"nvidia_cuda_toolkit_version": "12.5"}, args=TOOLKIT_AND_VERIFY)
        assert rc == 0, failed_msg(report)
        said = " ".join(results(report, "Say that NVIDIA's runfile stands in for the repository")[0]["msg"].split())
        assert said.startswith(f"cuda-toolkit-12-5 is not in NVIDIA's repository {MIRROR}/{repo_path(host)}/")
        assert f"comes from NVIDIA's runfile installer {runfile}" in said
        # Downloaded into the controller cache under its sha256, installed once, toolkit only.
        assert (cache / sha256 / runfile).read_bytes() == RUNFILE_DOUBLE.read_bytes()
        (installed,) = host.file(RUNFILE_LOG).content_string.splitlines()
        assert installed.endswith(
            f"{runfile} installed CUDA 12.5.1 into /usr/local/cuda-12.5: --silent --toolkit "
            "--toolkitpath=/usr/local/cuda-12.5 --tmpdir=/var/cache/ai_stack/nvidia-cuda-runfile/tmp"
        )
        (check,) = results(report, "Check that nvcc is the requested toolkit")
        assert check["msg"] == "CUDA toolkit: Cuda compilation tools, release 12.5, V12.5.131"
        (exported,) = results(report, "Show the facts nvidia_cuda exported")
        assert exported["msg"]["nvidia_cuda_home"] == "/usr/local/cuda-12.5"
        # The 4 GB runfile does not stay on the host.
        assert not host.file("/var/cache/ai_stack/nvidia-cuda-runfile").exists
        assert "/usr/local/cuda-12.5/bin" in host.check_output("bash -lc 'echo $PATH'")

        # Idempotent: nvcc reports the version, so nothing is copied or run again.
        rc, report = run_playbook(extra_vars={"nvidia_cuda_toolkit_version": "12.5"}, args=TOOLKIT_AND_VERIFY)
        assert rc == 0
        assert report["stats"][HOST]["changed"] == 0
        assert len(host.file(RUNFILE_LOG).content_string.splitlines()) == 1
        assert not results(report, "Copy the artifact to the host")
    finally:
        # Back to the scenario's toolkit (the profile snippet), for the tests that follow.
        rc, report = run_playbook(args=TOOLKIT_AND_VERIFY)
        host.run("rm -rf /usr/local/cuda-12.5")
        if repository_has_12_4(host):
            host.run(f"rm -f {RUNFILE_LOG}")
    assert rc == 0


def test_key_with_another_fingerprint_is_refused_and_removed(host) -> None:
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    sources_before = host.file(SOURCES).content_string
    rc, report = run_playbook(
        extra_vars={"nvidia_cuda_repo_key_fingerprint": wrong}, args=("--tags", "nvidia_cuda_repository")
    )
    assert rc != 0
    message = failed_msg(report)
    assert f"has the fingerprint(s) {fingerprint(host)}, not {wrong}" in message
    assert "The file was removed and the repository was not configured" in message
    assert not host.file(f"/etc/apt/keyrings/nvidia-cuda-{wrong[-8:].lower()}.asc").exists
    assert host.file(SOURCES).content_string == sources_before
