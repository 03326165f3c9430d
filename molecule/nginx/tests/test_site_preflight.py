"""The site playbook's preflight play on the converged nginx host: it passes where nginx holds its
own ports, and a host that cannot take the stack is refused with every problem, its check and its
fix in one message, before anything changes."""

from __future__ import annotations

import typing as t

import pytest
from playbook_runs import run_playbook, task_results

HOST = "ai-stack-nginx"
REFUSE = "Refuse a host that cannot take the stack"
PORT = 8089


def preflight(monkeypatch: pytest.MonkeyPatch, **extra_vars: t.Any) -> tuple[int, dict[str, t.Any]]:
    monkeypatch.setenv("ANSIBLE_RUN_TAGS", "preflight")
    # A container has no swap; the file system is the CI machine's. The scenario's stand-in for Open
    # WebUI holds 8080, so Open WebUI's port is another one here.
    settings = {"ai_stack_hosts": HOST, "preflight_min_swap_mb": 0, "preflight_min_free_gb": {"/var": 1}}
    settings["openwebui_port"] = PORT
    return run_playbook("site_preflight.yml", {**settings, "nvidia_cuda_require_gpu": False, **extra_vars})


def changed(report: dict[str, t.Any]) -> int:
    return report["stats"][HOST]["changed"]


def test_preflight_passes_where_nginx_holds_its_own_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, report = preflight(monkeypatch)
    assert rc == 0, report["stats"]
    (result,) = task_results(report, REFUSE, HOST)
    assert result["msg"] == f"{HOST} passed the preflight (OS, free space, swap, GPUs, ports)."
    assert changed(report) == 0
    # The other plays only ran their always-tagged steps (collection settings, the reboot guard).
    assert not task_results(report, "Install nginx", HOST)


@pytest.fixture(name="rogue_listener")
def rogue_listener_fixture(host) -> t.Iterator[None]:
    """Another program on Open WebUI's port. As root: in a container (no CAP_SYS_PTRACE) ss cannot
    name another user's process; the unit tests cover that case."""
    host.run(f"systemd-run --unit=rogue-{PORT} python3 -m http.server {PORT} --bind 127.0.0.1")
    host.run(f"for i in $(seq 50); do ss -ltn 'sport = :{PORT}' | grep -q LISTEN && break; sleep 0.1; done")
    try:
        yield
    finally:
        host.run(f"systemctl stop rogue-{PORT}")


@pytest.mark.usefixtures("rogue_listener")
def test_preflight_names_every_problem_and_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    rc, report = preflight(
        monkeypatch,
        preflight_min_swap_mb=4096,
        preflight_min_free_gb={"/var": 100000},
        preflight_supported_os=[{"distribution": "Plan9", "version": "4"}],
        nvidia_cuda_require_gpu=True,
        ollama_gpus=[1],
    )
    assert rc == 2
    (result,) = task_results(report, REFUSE, HOST)
    message = result["msg"]
    assert message.startswith(f"Preflight failed on {HOST}; nothing was changed.")
    checks = [line.split("]")[0] for line in message.splitlines()[1:]]
    assert checks == ["- [operating system", "- [free space", "- [swap", "- [GPUs", "- [GPU assignment", "- [ports"]
    assert "is not supported. Fix: use one of Plan9 4, or add it to preflight_supported_os" in message
    assert "needs 100000 GiB for /var (100000 GiB)" in message
    assert "0 MiB of swap, needs 4096 MiB" in message and "set preflight_min_swap_mb: 0" in message
    assert "ollama_gpus selects GPU 1, but the host has 0 GPU(s). Fix: set ollama_gpus: [] to run it" in message
    assert f"port {PORT} (for openwebui) is taken by python3 (pid " in message and "user root) on 127.0.0.1" in message
    assert changed(report) == 0
