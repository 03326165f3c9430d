"""Fail when a role's defaults/main.yml and meta/argument_specs.yml drift apart.

Every public default must be documented as an option of the ``main`` entry point with the
same default value, and every documented option must have a default (or be required).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"


def check_role(role: Path) -> list[str]:
    defaults_file = role / "defaults" / "main.yml"
    specs_file = role / "meta" / "argument_specs.yml"
    if not specs_file.exists():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    options = yaml.safe_load(specs_file.read_text())["argument_specs"]["main"].get("options", {})
    problems = []
    for name in sorted(set(defaults) - set(options)):
        problems.append(f"{role.name}: default {name} is not in argument_specs")
    for name, spec in sorted(options.items()):
        if name not in defaults:
            if not spec.get("required"):
                problems.append(f"{role.name}: option {name} has no default and is not required")
        elif spec.get("default") != defaults[name]:
            problems.append(
                f"{role.name}: {name} defaults to {defaults[name]!r} but argument_specs says {spec.get('default')!r}"
            )
    return problems


def main() -> int:
    problems = [p for role in sorted(ROLES.iterdir()) if role.is_dir() for p in check_role(role)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
