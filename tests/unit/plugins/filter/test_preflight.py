"""Unit tests for the preflight_problems filter."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.preflight import preflight_problems

GIB = 1024**3


def df(*mounts: tuple[str, int]) -> str:
    """``df -P -B1`` output for /opt, /usr/local and /var (sorted) on the given mounts (GiB free)."""
    lines = ["Filesystem 1-blocks Used Available Capacity Mounted on"]
    lines += [f"/dev/sda1 {1000 * GIB} 0 {gib * GIB} 1% {point}" for point, gib in mounts]
    return "\n".join(lines) + "\n"


GOOD = {
    "distribution": "Ubuntu",
    "distribution_version": "24.04",
    "df": df(("/", 500), ("/", 500), ("/var", 200)),
    "swaptotal_mb": 8192,
    "gpus": [{"index": 0, "uuid": "GPU-aaaa"}, {"index": 1, "uuid": "GPU-bbbb"}],
    "listeners": [{"port": 443, "name": "nginx", "user": "root", "pid": 10, "address": "0.0.0.0"}],
    "ss": "LISTEN 0      511          0.0.0.0:443        0.0.0.0:*\n",
}
NEEDS = {
    "supported_os": [{"distribution": "Ubuntu", "version": "24.04"}, {"distribution": "Debian", "version": "12"}],
    "min_free_gb": {"/usr/local": 8, "/opt": 12, "/var": 40},
    "min_swap_mb": 2048,
    "require_gpu": True,
    "gpu_selections": {"ollama_gpus": [0], "comfyui_gpus": [1]},
    "ports": [
        {"port": 443, "service": "nginx", "processes": ["nginx"]},
        {"port": 8080, "service": "openwebui", "users": ["openwebui"]},
    ],
}


def checks(host: dict, needs: dict | None = None) -> list[str]:
    return [p["check"] for p in preflight_problems(host, needs or NEEDS)]


def test_the_guides_server_passes() -> None:
    assert preflight_problems(GOOD, NEEDS) == []


@pytest.mark.parametrize(
    ("name", "version", "ok"), [("Debian", "12.8", True), ("Debian", "11.9", False), ("Ubuntu", "22.04", False)]
)
def test_operating_system_by_full_or_major_version(name: str, version: str, ok: bool) -> None:
    problems = preflight_problems({**GOOD, "distribution": name, "distribution_version": version}, NEEDS)
    assert (problems == []) is ok
    if not ok:
        assert problems[0]["fix"].startswith("use one of Ubuntu 24.04, Debian 12")


def test_paths_on_one_file_system_add_up() -> None:
    # /usr/local and /opt both live on / (15 GiB free, 20 needed); /var has its own.
    host = {**GOOD, "df": df(("/", 15), ("/", 15), ("/var", 50))}
    (problem,) = preflight_problems(host, NEEDS)
    assert problem["check"] == "free space"
    assert problem["problem"] == "/ has 15.0 GiB free, needs 20 GiB for /opt (12 GiB) + /usr/local (8 GiB)"
    assert "lower preflight_min_free_gb for /opt, /usr/local" in problem["fix"]


def test_each_path_on_its_own_file_system() -> None:
    (problem,) = preflight_problems({**GOOD, "df": df(("/", 500), ("/", 500), ("/var", 1))}, NEEDS)
    assert problem["problem"].startswith("/var has 1.0 GiB free, needs 40 GiB")
    # A mount point with a space in its name.
    (problem,) = preflight_problems({**GOOD, "df": df(("/", 500), ("/", 500), ("/srv/big disk", 1))}, NEEDS)
    assert problem["problem"].startswith("/srv/big disk has 1.0 GiB free")


def test_df_output_that_does_not_match_the_paths_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="df reported 1 file systems for 3 paths"):
        preflight_problems({**GOOD, "df": df(("/", 1))}, NEEDS)


def test_swap() -> None:
    (problem,) = preflight_problems({**GOOD, "swaptotal_mb": 0}, NEEDS)
    assert problem["check"] == "swap" and "set preflight_min_swap_mb: 0" in problem["fix"]
    assert preflight_problems({**GOOD, "swaptotal_mb": 0}, {**NEEDS, "min_swap_mb": 0}) == []


def test_no_gpu_is_a_problem_only_where_one_is_required() -> None:
    assert checks({**GOOD, "gpus": []}, {**NEEDS, "gpu_selections": {}}) == ["GPUs"]
    assert checks({**GOOD, "gpus": []}, {**NEEDS, "gpu_selections": {}, "require_gpu": False}) == []


def test_gpu_assignment_against_the_gpus_found() -> None:
    one_gpu = {**GOOD, "gpus": GOOD["gpus"][:1]}
    (problem,) = preflight_problems(one_gpu, NEEDS)
    assert problem["problem"] == "comfyui_gpus selects GPU 1, but the host has 1 GPU(s)"
    uuids = {**NEEDS, "gpu_selections": {"ollama_gpus": ["GPU-bb"], "comfyui_gpus": ["GPU-cccc"]}}
    (problem,) = preflight_problems(GOOD, uuids)
    assert problem["problem"] == "comfyui_gpus selects 'GPU-cccc', which matches none of the host's GPUs"
    assert "GPU-aaaa, GPU-bbbb" in problem["fix"]
    # all, the CPU ([]), and selections the inventory leaves to the roles (None) are always fine.
    assert preflight_problems(one_gpu, {**NEEDS, "gpu_selections": {"a": "all", "b": [], "c": None}}) == []


def test_port_held_by_another_program() -> None:
    host = {
        **GOOD,
        "listeners": [*GOOD["listeners"], {"port": 8080, "name": "java", "user": "tomcat", "pid": 7, "address": "::"}],
    }
    (problem,) = preflight_problems(host, NEEDS)
    assert problem["check"] == "ports"
    assert problem["problem"] == "port 8080 (for openwebui) is taken by java (pid 7, user tomcat) on ::"
    assert problem["fix"] == "stop or move that program (ss -ltnp 'sport = :8080'), or give openwebui another port"
    # The setting that moves the port, where the entry names it.
    needs = {**NEEDS, "ports": [{**NEEDS["ports"][1], "variable": "openwebui_port"}]}
    assert preflight_problems(host, needs)[0]["fix"].endswith("or give openwebui another port with openwebui_port")
    # The service itself, on a host that already runs it.
    host["listeners"][-1].update(name="python3.11", user="openwebui")
    assert preflight_problems(host, NEEDS) == []


def test_port_held_by_a_process_ss_cannot_name() -> None:
    host = {**GOOD, "ss": GOOD["ss"] + "LISTEN 0 5 127.0.0.1:8080 0.0.0.0:*\n"}
    (problem,) = preflight_problems(host, NEEDS)
    assert problem["problem"].startswith("port 8080 (for openwebui) is taken by a process this check cannot see")


def test_require_gpu_as_a_string_from_the_command_line() -> None:
    assert checks({**GOOD, "gpus": []}, {**NEEDS, "gpu_selections": {}, "require_gpu": "false"}) == []


def test_malformed_input_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="two dicts"):
        preflight_problems([], NEEDS)
    with pytest.raises(AnsibleFilterError, match="malformed input"):
        preflight_problems(GOOD, {"ports": [{"service": "x"}]})
