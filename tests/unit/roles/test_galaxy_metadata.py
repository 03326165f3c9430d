"""galaxy.yml advertises only what the collection ships: every component its description or tags
name must exist as a role (the planned ones join once their role lands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
# How the README and the guide name each component, and the role that provides it.
COMPONENTS = {
    r"open[ -]?webui": "openwebui",
    r"searxng": "searxng",
    r"comfy[ -]?ui": "comfyui",
    r"ollama": "ollama",
    r"nginx": "nginx",
    r"cuda": "nvidia_cuda",
    r"cpython|python ?3\.11": "python311",
}


@pytest.mark.parametrize(("pattern", "role"), COMPONENTS.items(), ids=COMPONENTS.values())
def test_advertised_components_exist(pattern: str, role: str) -> None:
    advertised = " ".join([GALAXY["description"], *GALAXY["tags"]])
    if re.search(rf"\b(?:{pattern})\b", advertised, re.I):
        assert (ROOT / "roles" / role / "tasks" / "main.yml").is_file(), (
            f"galaxy.yml advertises {pattern!r}, but roles/{role} does not exist yet"
        )


def test_galaxy_tags_are_valid() -> None:
    # Galaxy: lowercase letters, digits and underscores, at most 20 tags.
    assert len(GALAXY["tags"]) <= 20
    assert all(re.fullmatch(r"[a-z0-9_]+", tag) for tag in GALAXY["tags"])
