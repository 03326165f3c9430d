# SPDX-License-Identifier: GPL-3.0-or-later
"""TEST DOUBLE of nvidia-smi (not NVIDIA's tool): answers from an `nvidia-smi -q -x` XML file.

Installed as /usr/local/bin/nvidia-smi with a python3 shebang (molecule/nvidia_cuda_fake_gpu/prepare.yml).

Implements only what the collection uses:

  nvidia-smi -q -x                                  the XML file, unchanged
  nvidia-smi --query-gpu=<fields> --format=csv,...  one CSV line per GPU (noheader, nounits honoured)
  nvidia-smi topo --matrix | topo -m                a topology matrix; NV<n> between the GPU pairs in
                                                    FAKE_NVIDIA_SMI_NVLINK (default "0-1:2"), else PHB

The XML comes from FAKE_NVIDIA_SMI_XML (default /usr/local/share/fake-nvidia-smi/nvidia-smi.xml).
Anything else fails with exit code 1, like an unknown option does.

"Driver not loaded yet" mode, for a host between driver install and reboot: while the file
FAKE_NVIDIA_SMI_DRIVER_STATE (default /usr/local/share/fake-nvidia-smi/driver-state) says
"not-loaded", every call fails the way the real nvidia-smi does then (exit code 9, "couldn't
communicate with the NVIDIA driver"). A missing file or "loaded" means the driver answers. The
reboot test double (fake_reboot.sh) writes "loaded".
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET

XML_FILE = os.environ.get("FAKE_NVIDIA_SMI_XML", "/usr/local/share/fake-nvidia-smi/nvidia-smi.xml")
DRIVER_STATE_FILE = os.environ.get("FAKE_NVIDIA_SMI_DRIVER_STATE", "/usr/local/share/fake-nvidia-smi/driver-state")
# What nvidia-smi prints (on stdout) and its exit code when the kernel module is not loaded.
NOT_LOADED_MESSAGE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
NOT_LOADED_EXIT_CODE = 9

# --query-gpu field -> path in the XML (None: the GPU's position; "/x": below the root element).
FIELDS = {
    "index": None,
    "uuid": "uuid",
    "name": "product_name",
    "pci.bus_id": "pci/pci_bus_id",
    "driver_version": "/driver_version",
    "memory.total": "fb_memory_usage/total",
    "memory.used": "fb_memory_usage/used",
    "persistence_mode": "persistence_mode",
    "compute_cap": "compute_cap",
}


def query(root: ET.Element, fields: list[str], units: bool) -> list[str]:
    lines = []
    for index, gpu in enumerate(root.findall("gpu")):
        values = []
        for field in fields:
            if field not in FIELDS:
                raise SystemExit(f'Field "{field}" is not a valid field to query.')
            path = FIELDS[field]
            if path is None:
                value = str(index)
            else:
                element = root if path.startswith("/") else gpu
                value = (element.findtext(path.lstrip("/")) or "[N/A]").strip()
            values.append(value if units else value.removesuffix(" MiB"))
        lines.append(", ".join(values))
    return lines


def topology(count: int) -> list[str]:
    links = {}
    for spec in os.environ.get("FAKE_NVIDIA_SMI_NVLINK", "0-1:2").split(","):
        if spec.strip():
            pair, number = [*spec.split(":", 1), ""][:2]
            low, high = pair.split("-", 1)
            links[frozenset((int(low), int(high)))] = f"NV{number or 1}"
    header = "\t" + "\t".join(f"GPU{i}" for i in range(count))
    rows = [header]
    for i in range(count):
        cells = [" X " if i == j else links.get(frozenset((i, j)), "PHB") for j in range(count)]
        rows.append(f"GPU{i}\t" + "\t".join(cells))
    return rows


def driver_loaded() -> bool:
    try:
        with open(DRIVER_STATE_FILE, encoding="utf-8") as handle:
            return handle.read().strip() != "not-loaded"
    except FileNotFoundError:
        return True


def main(args: list[str]) -> int:
    if not driver_loaded():
        print(NOT_LOADED_MESSAGE)
        return NOT_LOADED_EXIT_CODE
    with open(XML_FILE, encoding="utf-8") as handle:
        text = handle.read()
    root = ET.fromstring(text)
    if args == ["-q", "-x"]:
        sys.stdout.write(text)
        return 0
    if args and args[0].startswith("--query-gpu="):
        options = next((a.split("=", 1)[1] for a in args[1:] if a.startswith("--format=")), "csv")
        fields = [f.strip() for f in args[0].split("=", 1)[1].split(",")]
        lines = query(root, fields, units="nounits" not in options)
        if "noheader" not in options:
            lines.insert(0, ", ".join(fields))
        print("\n".join(lines))
        return 0
    if args[:1] == ["topo"] and args[1:] in (["--matrix"], ["-m"]):
        print("\n".join(topology(len(root.findall("gpu")))))
        return 0
    print(f"nvidia-smi (test double): unsupported arguments {args}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
