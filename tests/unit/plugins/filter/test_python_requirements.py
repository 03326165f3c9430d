# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
"""python_requirements_for: the lock lines a host's interpreter installs, judged by its markers."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.selfhosted.ai_stack.plugins.filter.python_requirements import (
    MARKER_NAMES,
    FilterModule,
    python_requirements_for,
    python_requirements_pinned,
)

ROOT = pathlib.Path(__file__).resolve().parents[4]
LOCK = ROOT / "roles/openwebui/files/requirements/open-webui-0.12.4-slim.txt"


def host(version: str = "3.11.2", **changes: str) -> dict[str, str]:
    """Marker values of CPython ``version`` on x86_64 Linux, as _common's probe reports them."""
    values = {
        "implementation_name": "cpython",
        "implementation_version": version,
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_release": "6.8.0-45-generic",
        "platform_system": "Linux",
        "platform_version": "#45-Ubuntu SMP",
        "python_full_version": version,
        "python_version": ".".join(version.split(".")[:2]),
        "sys_platform": "linux",
    }
    return values | changes


def lock_lines() -> list[str]:
    return [line.split("#")[0].strip() for line in LOCK.read_text().splitlines() if line.split("#")[0].strip()]


def test_the_host_version_decides_not_the_controllers() -> None:
    lines = [
        "soupsieve==2.10 ; python_full_version < '3.11.5'",
        "soupsieve==4.1.3 ; python_full_version >= '3.11.5'",
        "async-timeout==5.0.1 ; python_full_version < '3.11.3'",
        "aiohttp==3.14.5",
    ]
    old = ["soupsieve==2.10", "async-timeout==5.0.1", "aiohttp==3.14.5"]
    assert python_requirements_for(lines, host("3.11.2")) == old
    assert python_requirements_for(lines, host("3.11.13")) == ["soupsieve==4.1.3", "aiohttp==3.14.5"]


def test_platform_markers_drop_what_linux_does_not_install() -> None:
    lines = ["pywin32==312 ; sys_platform == 'win32'", "colorama==0.4.6 ; os_name == 'nt' or sys_platform == 'win32'"]
    assert python_requirements_for(lines, host()) == []
    windows = host(sys_platform="win32", os_name="nt")
    assert python_requirements_for(lines, windows) == ["pywin32==312", "colorama==0.4.6"]


def test_the_shipped_lock_gives_one_pin_per_package_for_each_supported_python() -> None:
    for version in ("3.11.2", "3.11.13", "3.12.3"):
        selected = python_requirements_for(lock_lines(), host(version))
        names = [line.split("==")[0].lower() for line in selected]
        assert len(names) == len(set(names)), version
        assert all(";" not in line and "==" in line for line in selected)
        assert "open-webui==0.12.4" in selected
        assert not {"torch", "triton"} & set(names)


def test_the_probe_reports_every_marker_name() -> None:
    probe = yaml.safe_load((ROOT / "roles/_common/vars/main.yml").read_text())["__common_python_probe"]
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout)
    assert set(report["markers"]) == set(MARKER_NAMES)
    # What the probe reports for this interpreter is what packaging itself would evaluate with.
    from packaging.markers import default_environment

    assert report["markers"] == {name: default_environment()[name] for name in MARKER_NAMES}
    assert python_requirements_for(["x==1 ; python_version >= '3'"], report["markers"]) == ["x==1"]


@pytest.mark.parametrize(
    ("requirements", "environment", "message"),
    [
        ("x==1", host(), "a list of requirement strings"),
        (["x==1"], "3.11", "marker values as a dict"),
        (["x==1"], {"python_version": "3.11"}, "lack implementation_name"),
        (["x==1 ; python_version >>> '3'"], host(), "bad marker"),
    ],
)
def test_bad_input_is_refused_clearly(requirements, environment, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        python_requirements_for(requirements, environment)


def test_registered() -> None:
    assert FilterModule().filters()["python_requirements_for"] is python_requirements_for


def test_pinned_pins_the_named_projects_and_drops_comments() -> None:
    text = "# ComfyUI\ntorch\ntorchsde\nTorchAudio>=2  # audio nodes\n\ntransformers>=4.37.2\n"
    pins = {"torch": "2.13.0+cpu", "torchaudio": "2.13.0+cpu"}
    assert python_requirements_pinned(text, pins, ["requests"]) == [
        "torch==2.13.0+cpu",
        "torchsde",
        "TorchAudio==2.13.0+cpu",
        "transformers>=4.37.2",
        "requests",
    ]


def test_pinned_keeps_a_line_once_and_accepts_lines() -> None:
    assert python_requirements_pinned(["requests", "pyyaml"], {}, ["requests"]) == ["requests", "pyyaml"]
    assert python_requirements_pinned("", {}) == []


def test_pinned_keeps_pip_options_for_the_caller_to_refuse() -> None:
    assert python_requirements_pinned("-r other.txt\ntorch\n", {"torch": "2.13.0"}) == ["-r other.txt", "torch==2.13.0"]


@pytest.mark.parametrize(
    ("requirements", "pins", "extra", "message"),
    [
        (3, {}, [], "the requirements"),
        ("torch", {"torch": ""}, [], "pins"),
        ("torch", ["torch"], [], "pins"),
        ("torch", {}, "requests", "extra"),
    ],
)
def test_pinned_refuses_bad_input(requirements, pins, extra, message) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        python_requirements_pinned(requirements, pins, extra)


def test_pinned_is_registered() -> None:
    assert FilterModule().filters()["python_requirements_pinned"] is python_requirements_pinned
