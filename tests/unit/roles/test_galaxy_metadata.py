"""galaxy.yml advertises only what the collection ships: every component its description or tags
name must exist as a role (the planned ones join once their role lands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

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


def test_requires_ansible_is_the_tested_range() -> None:
    """meta/runtime.yml claims exactly the ansible-core releases that are tested: those core-range.sh runs
    by default plus the main toolchain's (requirements.txt), no release more and no gap."""
    claimed = SpecifierSet(yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"])
    script = (ROOT / "tests" / "scripts" / "core-range.sh").read_text()
    default = re.search(r"releases=\(([\d. ]+)\)", script)
    assert default, "core-range.sh no longer lists its default releases as releases=(...)"
    main = re.search(r"^ansible-core==(\d+\.\d+)\.", (ROOT / "requirements.txt").read_text(), re.M)
    assert main, "requirements.txt pins no ansible-core"
    tested = sorted({*default.group(1).split(), main.group(1)}, key=lambda v: tuple(map(int, v.split("."))))
    minors = [int(v.split(".")[1]) for v in tested]
    assert minors == list(range(minors[0], minors[-1] + 1)), f"a release is skipped: {tested}"
    for minor in minors:
        assert f"2.{minor}.0" in claimed and f"2.{minor}.99" in claimed, f"2.{minor} is tested but not claimed"
    assert f"2.{minors[0] - 1}.99" not in claimed, f"{claimed} claims a release below the tested {tested[0]}"
    assert f"2.{minors[-1] + 1}.0" not in claimed, f"{claimed} claims a release above the tested {tested[-1]}"
