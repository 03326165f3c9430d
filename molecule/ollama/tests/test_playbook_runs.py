"""Runs of the role with other variables against the converged host: failures, GPUs, prune.

Each run is limited with the role's tags to the steps it exercises, which keeps the scenario fast
and also proves that the tags work on their own (set_vars carries every ollama_* tag).
"""

from __future__ import annotations

GUIDE_MODELS = {"deepseek-r1:8b-0528-qwen3-q4_K_M", "qwen2.5vl:7b", "snowflake-arctic-embed2:latest"}

# Two GPUs as selfhosted.ai_stack.nvidia_gpu_info reports them (the guide's RTX 2080 Ti pair).
# Extra variables outrank the role's registered detection result, so the GPU code paths run
# in --check mode on a host without GPUs.
GPU0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
TWO_GPUS = {
    "gpu_count": 2,
    "gpus": [
        {
            "index": index,
            "uuid": uuid,
            "name": "NVIDIA GeForce RTX 2080 Ti",
            "memory_total_mib": 22528,
            "pci_bus_id": f"00000000:0{index + 1}:00.0",
        }
        for index, uuid in enumerate([GPU0, "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"])
    ],
}


def test_mid_stream_pull_error_fails_the_role_with_ollamas_message(converge):
    run = converge("--tags", "ollama_models", extra_vars={"ollama_models": ["fail-midstream-x"]})
    assert run.returncode != 0, run.tail()
    assert "failed to pull model 'fail-midstream-x:latest' from http://127.0.0.1:11434" in run.output, run.tail()
    assert "digest mismatch" in run.output, run.tail()


def test_gpu_host_gets_a_uuid_pinned_unit_with_nvidia_devices(converge):
    run = converge("--check", "--diff", "--tags", "ollama_configure", extra_vars={"__ollama_gpu_info": TWO_GPUS})
    assert run.returncode == 0, run.tail()
    # The default selection puts the LLMs on GPU0, by UUID, and the unit waits for it.
    assert f'+Environment="CUDA_VISIBLE_DEVICES={GPU0}"' in run.stdout, run.tail()
    assert f"+ExecStartPre=+/usr/local/libexec/ai_stack/gpu-ready wait 60 {GPU0}" in run.stdout
    # ...and proves inside the sandbox (as ollama, no "+") that it reaches the GPU.
    assert f"+ExecStartPre=/usr/local/libexec/ai_stack/gpu-ready sandbox {GPU0}" in run.stdout
    # No PrivateDevices (it would hide /dev/nvidia*); a closed device policy instead.
    assert "-PrivateDevices=yes" in run.stdout
    assert "+DevicePolicy=closed" in run.stdout
    assert "+DeviceAllow=char-nvidia-uvm rwm" in run.stdout
    # Current drivers (550.40 and later) register "nvidia" and "nvidiactl", older ones "nvidia-frontend".
    for device in ("nvidia", "nvidiactl", "nvidia-frontend", "nvidia-uvm", "nvidia-caps"):
        assert f"+DeviceAllow=char-{device} rwm" in run.stdout
    # nvidia-uvm is loaded at boot, before the unit's device policy is resolved.
    assert "TASK [selfhosted.ai_stack._common : Load nvidia-uvm at every boot]" in run.stdout
    assert "\n+nvidia-uvm\n" in run.stdout


def test_unit_path_has_no_empty_entry_without_the_cuda_toolkit(converge):
    # An empty PATH entry is the working directory: never build one when the toolkit is skipped.
    run = converge("--check", "--diff", "--tags", "ollama_configure", extra_vars={"ollama_cuda_bin_dir": ""})
    assert run.returncode == 0, run.tail()
    assert '+Environment="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' in run.stdout, run.tail()
    assert "PATH=:" not in run.stdout


def test_unknown_gpu_in_ollama_gpus_is_refused(converge):
    run = converge(
        "--check", "--tags", "ollama_preflight", extra_vars={"__ollama_gpu_info": TWO_GPUS, "ollama_gpus": [3]}
    )
    assert run.returncode != 0
    assert "ollama_gpus: no GPU matches 3" in run.output, run.tail()


def test_vram_check_fails_when_the_models_do_not_fit(converge):
    models = [
        {"name": "qwen2.5vl:7b", "size_mib": 16000},
        {"name": "deepseek-r1:8b-0528-qwen3-q4_K_M", "size_mib": 9000},
    ]
    run = converge(
        "--check",
        "--tags",
        "ollama_preflight",
        extra_vars={"__ollama_gpu_info": TWO_GPUS, "ollama_models": models, "ollama_vram_check": "fail"},
    )
    assert run.returncode != 0, run.tail()
    assert "need 25000 MiB of VRAM" in run.output, run.tail()
    assert "GPU 0 (NVIDIA GeForce RTX 2080 Ti) has 22528 MiB" in run.output


def test_prune_removes_unlisted_models_only(converge, ollama_api):
    ollama_api("/api/pull", {"model": "tinyllama", "stream": False})
    assert "tinyllama:latest" in {m["name"] for m in ollama_api("/api/tags")["models"]}

    run = converge("--tags", "ollama_models", extra_vars={"ollama_models_prune": True})
    assert run.returncode == 0, run.tail()
    assert run.changed == 1, run.tail()
    assert {m["name"] for m in ollama_api("/api/tags")["models"]} == GUIDE_MODELS


def test_proxy_password_never_in_verbose_diff_output(host, converge):
    # Remove the environment file, so this run writes it again: the password is in its content.
    host.check_output("rm -f /etc/ai_stack/env/ollama.env")
    run = converge("-vvv", "--diff", "--tags", "ollama_configure")
    assert run.returncode == 0, run.tail()
    assert "Write the service's environment file" in run.stdout, run.tail()
    assert "Ollama-proxy-S3cret" not in run.output
    assert host.file("/etc/ai_stack/env/ollama.env").mode == 0o600
    assert host.service("ollama").is_running


def test_action_group_sets_the_ollama_url_once(playbook):
    # Only the group's default names port 1; the module's own default is 127.0.0.1:11434.
    run = playbook("module_defaults.yml", extra_vars={"module_defaults_ollama_url": "http://127.0.0.1:1"})
    assert run.returncode != 0, run.tail()
    assert "http://127.0.0.1:1" in run.output, run.tail()
    run = playbook("module_defaults.yml", extra_vars={"module_defaults_ollama_url": "http://127.0.0.1:11434"})
    assert run.returncode == 0, run.tail()
