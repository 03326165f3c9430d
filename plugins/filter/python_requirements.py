# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright: (c) selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Requirement lists for a host's interpreter, worked out on the controller.

Documentation: python_requirements_for.yml and python_requirements_pinned.yml next to this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
except ImportError:  # pragma: no cover - ansible-core depends on packaging
    Marker = None

# The names PEP 508 markers may use; the host's probe reports each of them.
MARKER_NAMES = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)


def python_requirements_for(requirements: Any, environment: Any) -> list[str]:
    """The requirement lines whose environment marker holds for ``environment`` (a host interpreter's
    marker values), without their markers; lines without a marker pass through.

    The controller's ``pip download`` judges markers by the controller's own Python, so a lock that
    says ``soupsieve==2.10 ; python_full_version < '3.11.5'`` would fill a wheelhouse with the wrong
    wheels for a host on 3.11.2. Given the host's values, the list names exactly what that host installs.
    """
    if Marker is None:  # pragma: no cover
        raise AnsibleFilterError("python_requirements_for needs the 'packaging' library on the controller")
    if not isinstance(requirements, (list, tuple)) or not all(isinstance(line, str) for line in requirements):
        raise AnsibleFilterError("python_requirements_for expects a list of requirement strings")
    if not isinstance(environment, Mapping):
        raise AnsibleFilterError("python_requirements_for expects the host's marker values as a dict")
    missing = [name for name in MARKER_NAMES if not isinstance(environment.get(name), str)]
    if missing:
        raise AnsibleFilterError(f"python_requirements_for: the host's marker values lack {', '.join(missing)}")
    values = {name: environment[name] for name in MARKER_NAMES}
    selected = []
    for line in requirements:
        requirement, sep, marker = line.partition(";")
        requirement = requirement.strip()
        if not requirement:
            continue
        if not sep:
            selected.append(requirement)
            continue
        try:
            holds = Marker(marker.strip()).evaluate(values)
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as error:
            raise AnsibleFilterError(f"python_requirements_for: bad marker in {line!r}: {error}") from error
        if holds:
            selected.append(requirement)
    return selected


# A requirement's project name (PEP 508), at the start of its line.
NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def canonical_name(name: str) -> str:
    """A project name as PEP 503 compares them: ``PyYAML`` is ``pyyaml``, ``a_b`` is ``a-b``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def python_requirements_pinned(requirements: Any, pins: Any, extra: Any = None) -> list[str]:
    """The requirement lines of a ``requirements.txt`` (its text, or a list of lines) plus ``extra``,
    without comments and blank lines, each line of a project in ``pins`` replaced by ``name==version``.

    ComfyUI's requirements name torch without a version; pinned to the build the role installed first,
    no requirement can make pip swap it for another build (PyPI's CUDA 13 one, say).
    """
    if isinstance(requirements, str):
        requirements = requirements.splitlines()
    extra = [] if extra is None else extra
    for value, what in ((requirements, "the requirements"), (extra, "extra")):
        if not isinstance(value, (list, tuple)) or not all(isinstance(line, str) for line in value):
            raise AnsibleFilterError(f"python_requirements_pinned expects {what} as text or a list of strings")
    if not isinstance(pins, Mapping) or not all(isinstance(v, str) and v for v in pins.values()):
        raise AnsibleFilterError("python_requirements_pinned expects pins as a dict of project name to version")
    versions = {canonical_name(str(name)): version for name, version in pins.items()}
    pinned: list[str] = []
    for raw in list(requirements) + list(extra):
        line = re.sub(r"(^|\s+)#.*$", "", raw).strip()
        if not line:
            continue
        match = NAME.match(line)
        name = canonical_name(match.group(0)) if match else ""
        if name in versions:
            line = f"{match.group(0)}=={versions[name]}"
        if line not in pinned:
            pinned.append(line)
    return pinned


class FilterModule:
    """Filters for Python requirement lists."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {
            "python_requirements_for": python_requirements_for,
            "python_requirements_pinned": python_requirements_pinned,
        }
