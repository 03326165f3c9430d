# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""site.yml's tags: a run limited to any tag of a Python service still gets its interpreter."""

from __future__ import annotations

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
PYTHON_SERVICES = ("searxng", "comfyui", "openwebui")


def role_tags(role: str) -> set[str]:
    """Every tag the role's table of contents gives its steps (``always`` is not one to select)."""
    text = (ROOT / "roles" / role / "tasks" / "main.yml").read_text()
    tags = {tag for group in re.findall(r"tags: \[([^\]]*)\]", text) for tag in re.split(r",\s*", group)}
    return tags - {"always"}


def play_tags(play_name: str) -> set[str]:
    [play] = [play for play in yaml.safe_load((ROOT / "playbooks/site.yml").read_text()) if play["name"] == play_name]
    return {tag for role in play["roles"] for tag in role.get("tags", [])}


def test_the_cpython_play_runs_under_every_tag_of_the_python_services() -> None:
    # The roles build their venvs from python311_interpreter, which the python311 role publishes.
    cpython = play_tags("CPython 3.11 for the Python services")
    for service in PYTHON_SERVICES:
        tags = role_tags(service)
        assert service in tags and len(tags) > 3, tags
        assert tags <= cpython, f"--tags {sorted(tags - cpython)} would run {service} without its interpreter"
