"""The ComfyUI TEST DOUBLE (tests/doubles/comfyui_upstream) behaves like the upstream parts the comfyui
role and its molecule scenario rely on: the reproducible repository (tag v0.3.64 behind a newer commit),
main.py's flags and start-up traps (custom_nodes, --cpu, the database), /system_stats, the model
folders of extra_model_paths.yaml, /prompt and /history, and the torch index double's layout.

torch is not in the controller's venv: a stand-in module replaces it here (the scenario installs the
real CPU wheel from the index double)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOUBLE = REPO / "tests/doubles/comfyui_upstream"
FAKE_TORCH = """
__version__ = "2.13.0+cpu"
class version:
    cuda = None
class cuda:
    @staticmethod
    def is_available():
        return False
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_torch(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "stubs").mkdir()
    (tmp_path / "stubs/torch.py").write_text(FAKE_TORCH)
    return dict(os.environ, PYTHONPATH=str(tmp_path / "stubs"))


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(DOUBLE / "repo/main.py"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _get(port: int, path: str, data: bytes | None = None) -> object:
    for _attempt in range(100):
        try:
            with urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data), timeout=5
            ) as r:
                return json.loads(r.read())
        except ConnectionError:
            time.sleep(0.05)
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionError):
                raise
            time.sleep(0.05)
    raise AssertionError(f"no answer on {port}")


@pytest.fixture(autouse=True)
def _repo_stays_clean() -> Iterator[None]:
    """Nothing a test starts writes into the double's repository (build-repo.sh commits what is there)."""
    yield
    assert sorted(path.name for path in (DOUBLE / "repo").iterdir() if path.name != "__pycache__") == [
        "README.md",
        "custom_nodes",
        "extra_model_paths.yaml.example",
        "main.py",
        "requirements.txt",
    ]


def test_requirements_list_torch_but_not_requests() -> None:
    lines = [line for line in (DOUBLE / "repo/requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert "torch" in lines and "requests" not in lines
    assert "import requests" in (DOUBLE / "repo/main.py").read_text()


def test_it_dies_without_custom_nodes_in_the_base_directory(tmp_path: Path, fake_torch: dict[str, str]) -> None:
    run = _start(["--cpu", "--base-directory", str(tmp_path / "base"), "--port", str(_free_port())], fake_torch)
    (tmp_path / "base").mkdir()
    err = run.communicate(timeout=30)[1]
    assert run.returncode != 0 and "custom_nodes" in err


def test_without_cpu_and_without_cuda_it_dies(tmp_path: Path, fake_torch: dict[str, str]) -> None:
    (tmp_path / "custom_nodes").mkdir()
    run = _start(["--base-directory", str(tmp_path), "--port", str(_free_port())], fake_torch)
    err = run.communicate(timeout=30)[1]
    assert run.returncode != 0 and "Found no NVIDIA driver" in err


def test_unknown_flags_are_refused(tmp_path: Path, fake_torch: dict[str, str]) -> None:
    run = _start(["--no-such-flag"], fake_torch)
    err = run.communicate(timeout=30)[1]
    assert run.returncode == 2 and "unrecognized arguments" in err


def test_it_serves_the_cpu_the_models_and_prompts(tmp_path: Path, fake_torch: dict[str, str]) -> None:
    base, models = tmp_path / "base", tmp_path / "models"
    (base / "custom_nodes").mkdir(parents=True)
    (models / "checkpoints").mkdir(parents=True)
    (models / "checkpoints/tiny.safetensors").write_bytes(b"x")
    config = tmp_path / "extra_model_paths.yaml"
    config.write_text(f"office:\n  base_path: {models}\n  is_default: true\n  checkpoints: checkpoints/\n")
    port = _free_port()
    args = [
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--base-directory",
        str(base),
        "--database-url",
        f"sqlite:///{base}/user/comfyui.db",
        "--extra-model-paths-config",
        str(config),
    ]
    server = _start(args, fake_torch)
    try:
        stats = _get(port, "/system_stats")
        assert stats["devices"][0]["type"] == "cpu"
        assert stats["system"]["pytorch_version"] == "2.13.0+cpu"
        assert "--cpu" in stats["system"]["argv"]
        assert _get(port, "/models/checkpoints") == ["tiny.safetensors"]
        queued = _get(port, "/prompt", json.dumps({"prompt": {"1": {}}}).encode())
        assert _get(port, f"/history/{queued['prompt_id']}")[queued["prompt_id"]]["status"]["completed"] is True
        for name in ("input", "output", "temp", "user"):
            assert (base / name).is_dir()
        assert (base / "user/comfyui.db").is_file()
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_the_repository_build_is_reproducible_with_the_tag_behind_master(tmp_path: Path) -> None:
    env = dict(os.environ, SOURCE_DATE_EPOCH="1767225600")
    first = subprocess.run(
        [DOUBLE / "build-repo.sh", tmp_path / "out"], env=env, capture_output=True, text=True, check=True
    )
    again = subprocess.run(
        [DOUBLE / "build-repo.sh", tmp_path / "out"], env=env, capture_output=True, text=True, check=True
    )
    assert "build-repo: built" in first.stderr and "build-repo: unchanged" in again.stderr
    assert first.stdout == again.stdout
    bare = tmp_path / "out/comfyui.git"
    tag = subprocess.run(
        ["git", "-C", bare, "rev-parse", "v0.3.64^{commit}"], capture_output=True, text=True, check=True
    )
    tip = subprocess.run(["git", "-C", bare, "rev-parse", "master"], capture_output=True, text=True, check=True)
    assert tag.stdout.strip() == first.stdout.strip() != tip.stdout.strip()
    assert (bare / "info/refs").is_file()  # dumb HTTP
