"""Fail a scenario whose dry run on the fresh host (molecule's ``check`` action) was not honest.

Usage: ``fresh_host_check.py LOG`` on a ``molecule test`` log. The ``check`` action runs the
converge playbook with ``--check`` right after prepare, on hosts that have none of the roles'
work yet. It must finish with return code 0, and every host must report changes in its recap:
a dry run that predicts nothing on a fresh host hides what converge is about to do.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "INFO     nginx ➜ check: Executing" (molecule 25.x and later); older releases said "nginx > check".
ACTION = re.compile(r"(?:➜|>)\s*(?P<action>[a-z_]+)\]?:?\s+(?P<state>Executing|Executed)(?::\s*(?P<result>\w+))?")
RECAP = re.compile(
    r"^[\s│|]*(?P<host>[^\s:│|]+)\s*:\s*ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.M,
)


def check_section(log: str) -> tuple[str, str | None]:
    """The output of the first ``check`` action in ``log`` and its result (``None`` when it never ended)."""
    lines = ANSI.sub("", log).splitlines()
    start = None
    for number, line in enumerate(lines):
        match = ACTION.search(line)
        if not match or match["action"] != "check":
            continue
        if match["state"] == "Executing" and start is None:
            start = number
        elif match["state"] == "Executed" and start is not None:
            return "\n".join(lines[start:number]), match["result"]
    if start is None:
        return "", None
    return "\n".join(lines[start:]), None


def problems(log: str) -> list[str]:
    """Why the fresh-host dry run in ``log`` does not count (empty when it does)."""
    section, result = check_section(log)
    if not section:
        return ["the scenario never ran molecule's check action (is it in the test_sequence after prepare?)"]
    found = []
    if result != "Successful":
        found.append("the dry run on the fresh host failed (converge --check must succeed on a fresh host)")
    recap = section.rsplit("PLAY RECAP", maxsplit=1)[-1] if "PLAY RECAP" in section else ""
    hosts = {m["host"]: m for m in RECAP.finditer(recap)}
    if not hosts:
        found.append("the dry run printed no play recap")
    for host, match in sorted(hosts.items()):
        if int(match["failed"]) or int(match["unreachable"]):
            found.append(f"{host}: failed={match['failed']} unreachable={match['unreachable']} in the dry run")
        # The controller (a play that only reports, like site.yml's reboot summary) converges nothing.
        if int(match["changed"]) == 0 and host != "localhost":
            found.append(f"{host}: the dry run on a fresh host predicted no changes (changed=0)")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(Path(argv[1]).read_text(errors="replace"))
    for problem in found:
        print(f"fresh-host check: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
