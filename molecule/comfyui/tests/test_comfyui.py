"""The converged host: ComfyUI installed by the role the upstream way from the TEST DOUBLE of its
repository (tests/doubles/comfyui_upstream), with the REAL CPU torch from a TEST DOUBLE of PyTorch's
CPU index, sandboxed on loopback, with --cpu (no GPU here). The tests that run ansible-playbook again
fail before anything changes, so the shared check-mode test that follows still sees a converged host."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from service_checks import assert_listens_on_loopback_only, assert_system_user_without_sudo

SRC = "/opt/comfyui/ComfyUI"
VENV = "/opt/comfyui/venv"
DATA = "/var/lib/comfyui"
MARKER = f"{VENV}/.selfhosted.ai_stack.json"
UNIT = "/etc/systemd/system/comfyui.service"
PORT = 8188
MAX_EXPOSURE = 2.0
DOUBLES = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "tests/doubles/comfyui_upstream"
PINNED = (Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache/comfyui-upstream/repo/commit").read_text().strip()
MODEL = DOUBLES / "models/tiny-double.safetensors"
CU130_INDEX = "http://torch-index.comfyui-double.test:8891/whl/cu130"
FAKE_GPU = {
    "index": 0,
    "uuid": "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d",
    "name": "NVIDIA GeForce RTX 4090 (fake: the refusal needs no GPU)",
    "memory_total_mib": 24564,
}


def get(host, path: str):
    return json.loads(
        host.check_output(
            f'python3 -c "import json,sys,urllib.request as u; '
            f"print(u.urlopen('http://127.0.0.1:{PORT}{path}', timeout=30).read().decode())\""
        )
    )


def run_role(host, *args: str, extra_vars: dict) -> subprocess.CompletedProcess[str]:
    """comfyui_only.yml on this host, on the interpreter its venv was built on."""
    interpreter = json.loads(host.file(MARKER).content_string)["interpreter"]
    playbook = os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "comfyui_only.yml")
    command = [
        "ansible-playbook",
        "-i",
        os.environ["MOLECULE_INVENTORY_FILE"],
        playbook,
        "-e",
        json.dumps({"comfyui_python_interpreter": interpreter, **extra_vars}),
        *args,
    ]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def main_pid(host) -> int:
    return int(host.check_output("systemctl show comfyui -p MainPID --value"))


def test_service_runs_as_an_unprivileged_user_on_loopback_only(host):
    service = host.service("comfyui")
    assert service.is_running and service.is_enabled
    user = assert_system_user_without_sudo(host, "comfyui")
    assert user.home == DATA
    assert_listens_on_loopback_only(host, PORT, "comfyui")


def test_system_stats_reports_the_cpu_and_the_role_s_flags(host):
    stats = get(host, "/system_stats")
    assert [device["type"] for device in stats["devices"]] == ["cpu"]
    assert stats["system"]["pytorch_version"] == "2.13.0+cpu"
    argv = stats["system"]["argv"]
    for flag in ("--cpu", "--disable-auto-launch"):
        assert flag in argv
    assert argv[argv.index("--listen") + 1] == "127.0.0.1"
    assert argv[argv.index("--base-directory") + 1] == DATA
    assert argv[argv.index("--database-url") + 1] == f"sqlite:///{DATA}/user/comfyui.db"
    environment = host.check_output("systemctl show comfyui -p Environment --value")
    assert "CUDA_VISIBLE_DEVICES=-1" in environment


def test_the_pinned_tag_is_checked_out_and_root_owned(host):
    assert host.check_output(f"git -C {SRC} rev-parse HEAD") == PINNED
    assert not host.file(f"{SRC}/NEWER").exists  # the branch tip is not checked out
    assert host.check_output(f"git -C {SRC} status --porcelain --untracked-files=no") == ""
    assert host.file(SRC).user == "root" and host.file(VENV).user == "root"


def test_everything_comfyui_writes_is_under_var_not_in_the_code(host):
    for name in ("input", "output", "temp", "user", "custom_nodes"):
        directory = host.file(f"{DATA}/{name}")
        assert directory.is_directory and directory.user == "comfyui", name
    assert host.file(f"{DATA}/user/comfyui.db").is_file
    for name in ("input", "output", "temp", "user"):
        assert not host.file(f"{SRC}/{name}").exists, name
    assert host.run(f"find {SRC} -name '*.db'").stdout == ""


def test_real_cpu_torch_from_the_index_and_the_requirements_pinned_to_it(host):
    out = host.check_output(
        f"{VENV}/bin/python -c 'import torch, requests, yaml; print(torch.__version__, torch.version.cuda)'"
    )
    assert out == "2.13.0+cpu None"
    record = json.loads(host.file(MARKER).content_string)
    assert record["commit"] == PINNED
    assert record["torch"]["version"] == "2.13.0+cpu"
    assert "torch==2.13.0+cpu" in record["requirements"]
    assert "requests" in record["requirements"]  # upstream imports it without listing it
    log = host.file("/var/log/comfyui-upstream-double/requests.log").content_string
    assert "GET /whl/cpu/torch/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl" in log


def test_the_model_is_placed_by_checksum_and_wired(host):
    placed = host.file(f"{DATA}/models/checkpoints/{MODEL.name}")
    assert placed.sha256sum == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert (placed.user, placed.group, placed.mode) == ("root", "comfyui", 0o640)
    assert MODEL.name in get(host, "/models/checkpoints")
    paths = host.file(f"{DATA}/extra_model_paths.yaml").content_string
    assert f'base_path: "{DATA}/models"' in paths


def test_the_unit_is_sandboxed(host):
    out = host.check_output("systemd-analyze security comfyui --no-pager")
    score = float(re.search(r"Overall exposure level for comfyui.service: ([0-9.]+)", out).group(1))
    print(f"systemd-analyze security comfyui: {score}")
    assert score <= MAX_EXPOSURE, out
    header = host.file(UNIT).content_string.splitlines()[:3]
    assert header[0] == "#" and "Ansible managed" in header[1]


def test_a_cuda_13_torch_is_refused_on_an_r550_driver_before_anything_changes(host):
    """A fake GPU with an R550 driver (CUDA 12.4), and a cu130 index: the play fails naming the index."""
    pid = main_pid(host)
    run = run_role(
        host,
        extra_vars={
            "nvidia_cuda_gpus": [FAKE_GPU],
            "nvidia_cuda_driver_cuda_version": "12.4",
            "comfyui_gpus": [0],
            "comfyui_torch_index_url": CU130_INDEX,
        },
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, output[-3000:]
    assert f"torch 2.13.0+cu130 from {CU130_INDEX} is built for CUDA 13.0" in output, output[-3000:]
    assert "set comfyui_torch_index_url to https://download.pytorch.org/whl/cu124" in output
    assert main_pid(host) == pid
    assert host.check_output(f"{VENV}/bin/python -c 'import torch; print(torch.__version__)'") == "2.13.0+cpu"


def test_a_model_with_a_wrong_checksum_is_refused_before_it_is_placed(host):
    wrong = {"url": MODEL.as_uri(), "sha256": "0" * 64, "kind": "loras", "name": "wrong-checksum.safetensors"}
    run = run_role(host, "--tags", "comfyui_models", extra_vars={"comfyui_models": [wrong]})
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, output[-3000:]
    assert "checksum" in output.lower(), output[-3000:]
    assert not host.file(f"{DATA}/models/loras/wrong-checksum.safetensors").exists


def test_sizes_and_memory(host):
    """The README's measurements: the checkout, the venv, the service's memory."""
    venv = host.check_output(f"du -sm {VENV} | cut -f1")
    src = host.check_output(f"du -sm {SRC} | cut -f1")
    rss = int(host.check_output(f"ps -o rss= -p {main_pid(host)}")) // 1024
    print(f"venv {venv} MB, checkout {src} MB, ComfyUI RSS {rss} MB")
    assert int(venv) > 100  # the real torch
