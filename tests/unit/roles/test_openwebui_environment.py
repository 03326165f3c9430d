# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""The environment the openwebui role gives Open WebUI, from what the searxng and comfyui roles publish:
its defaults and vars evaluated by ansible itself, as a play on a host would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[3] / "roles/openwebui"


def optional_environment(**published: object) -> dict[str, str]:
    """``__openwebui_optional_environment`` with the role's defaults and vars and ``published`` set."""
    command = [
        "ansible",
        "localhost",
        "--connection",
        "local",
        "-e",
        f"@{ROLE}/defaults/main.yml",
        "-e",
        f"@{ROLE}/vars/main.yml",
        "-e",
        json.dumps({"ai_stack_offline": False, **published}),
        "-m",
        "ansible.builtin.debug",
        "-a",
        "var=__openwebui_optional_environment",
    ]
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result["__openwebui_optional_environment"]


def test_nothing_published_turns_nothing_on() -> None:
    assert optional_environment() == {}


def test_comfyui_turns_image_generation_on_with_its_checkpoint() -> None:
    env = optional_environment(comfyui_base_url="http://127.0.0.1:8188", comfyui_checkpoint="sdxl.safetensors")
    assert env == {
        "ENABLE_IMAGE_GENERATION": "true",
        "IMAGE_GENERATION_ENGINE": "comfyui",
        "COMFYUI_BASE_URL": "http://127.0.0.1:8188",
        "IMAGE_GENERATION_MODEL": "sdxl.safetensors",
    }


def test_comfyui_without_a_checkpoint_leaves_the_model_to_open_webui() -> None:
    env = optional_environment(comfyui_base_url="http://127.0.0.1:8188", comfyui_checkpoint="")
    assert "IMAGE_GENERATION_MODEL" not in env and env["COMFYUI_BASE_URL"] == "http://127.0.0.1:8188"


def test_a_workflow_and_its_nodes_go_in_as_json() -> None:
    workflow = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}
    nodes = [{"type": "seed", "key": "seed", "node_ids": ["3"]}]
    env = optional_environment(
        comfyui_base_url="http://127.0.0.1:8188",
        openwebui_comfyui_workflow=workflow,
        openwebui_comfyui_workflow_nodes=nodes,
    )
    assert json.loads(env["COMFYUI_WORKFLOW"]) == workflow
    assert json.loads(env["COMFYUI_WORKFLOW_NODES"]) == nodes


@pytest.mark.parametrize("published", [{}, {"openwebui_searxng_query_url": ""}])
def test_searxng_turns_web_search_on_only_when_published(published: dict) -> None:
    assert "ENABLE_WEB_SEARCH" not in optional_environment(**published)
    env = optional_environment(searxng_query_url="http://127.0.0.1:8888/search?q=<query>")
    assert env == {
        "ENABLE_WEB_SEARCH": "true",
        "WEB_SEARCH_ENGINE": "searxng",
        "SEARXNG_QUERY_URL": "http://127.0.0.1:8888/search?q=<query>",
    }
