# This module_utils is PRIVATE to the selfhosted.ai_stack collection. It may change or
# disappear in any release without notice; do not import it from outside this collection.
#
# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""NVIDIA GPU detection for the ``nvidia_gpu_info`` module.

Pure Python on purpose: no ``AnsibleModule`` in here, so every branch can be unit tested
against a fake NVML object, canned ``nvidia-smi`` XML and a fake sysfs tree.

Sources are tried in order and the first one that answers wins:

1. NVML through ``pynvml`` (the ``nvidia-ml-py`` package) - the richest data, incl. NVLink.
2. ``nvidia-smi -q -x`` - the same driver library, but needs no Python package.
3. A PCI scan of sysfs - works before any driver is installed, so a playbook can decide
   to install one.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import typing as t
import xml.etree.ElementTree as ET

try:
    import pynvml

    HAS_PYNVML = True
    PYNVML_IMPORT_ERROR: str | None = None
except ImportError as _exc:  # the driver and nvidia-smi may still answer
    pynvml = None
    HAS_PYNVML = False
    PYNVML_IMPORT_ERROR = str(_exc)

HINT = "install the NVIDIA driver (nvidia-smi) or the nvidia-ml-py Python package for the interpreter Ansible uses"

SOURCES = ("nvml", "nvidia-smi", "pci")
NVIDIA_VENDOR_ID = 0x10DE
PCI_CLASS_DISPLAY = 0x03  # base class; 0x0300 VGA and 0x0302 3D controller (datacenter GPUs)
MIB = 1024 * 1024
# Older bindings lack the constant; 12 was their value.
DEFAULT_NVLINK_MAX_LINKS = 12
NVML_FEATURE_ENABLED = 1

# Only for naming GPUs found by the PCI scan before a driver exists; kept small on purpose,
# the driver reports the real name once it is installed.
PCI_DEVICE_NAMES: dict[int, str] = {
    0x1E04: "NVIDIA GeForce RTX 2080 Ti",
    0x1E07: "NVIDIA GeForce RTX 2080 Ti",
    0x2204: "NVIDIA GeForce RTX 3090",
    0x2684: "NVIDIA GeForce RTX 4090",
    0x2330: "NVIDIA H100 80GB HBM3",
    0x2335: "NVIDIA H200",
}

_PCI_BUS_ID_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):(?P<device>[0-9a-fA-F]{1,2})\.(?P<function>[0-7])$"
)

if t.TYPE_CHECKING:
    # ``module.run_command``-compatible: argv in, (rc, stdout, stderr) out.
    RunCommand = t.Callable[[list[str]], tuple[int, str, str]]


class SourceUnavailable(Exception):
    """A source cannot run at all here (library, binary or sysfs missing)."""


class SourceFailed(Exception):
    """A source ran but could not answer (driver not loaded, bad output, ...)."""


# --------------------------------------------------------------------------- helpers


def to_text(value: t.Any) -> str:
    """Older pynvml bindings return bytes, newer ones str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def normalize_pci_bus_id(bus_id: t.Any) -> str:
    """Return the NVML form ``00000000:01:00.0`` (8 hex digit domain, upper case hex).

    sysfs and ``busIdLegacy`` use a 4 digit domain and lower case, NVML and nvidia-smi
    use 8 digits and upper case; one form lets NVLink peers and sources be compared.
    """
    text = to_text(bus_id).strip().rstrip("\x00")
    match = _PCI_BUS_ID_RE.match(text)
    if not match:
        return text
    domain = int(match.group("domain") or "0", 16)
    bus = int(match.group("bus"), 16)
    device = int(match.group("device"), 16)
    return f"{domain:08X}:{bus:02X}:{device:02X}.{match.group('function')}"


def cuda_version_from_int(value: int) -> str:
    """NVML encodes CUDA 12.4 as 12040."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def new_gpu(index: int, name: str, pci_bus_id: str | None) -> dict[str, t.Any]:
    """One GPU entry with every key present, so consumers never need ``default()``."""
    return {
        "index": index,
        "uuid": None,
        "name": name,
        "pci_bus_id": pci_bus_id,
        "memory_total_mib": None,
        "memory_used_mib": None,
        "compute_capability": None,
        "persistence_mode": None,
        "nvlink_active_links": 0,
    }


def empty_result() -> dict[str, t.Any]:
    return {
        "gpus": [],
        "gpu_count": 0,
        "driver_version": None,
        "cuda_driver_version": None,
        "nvlink": {"pairs": [], "links": {}},
        "driver_loaded": False,
        "nouveau_loaded": False,
        "source": "none",
        "errors": [],
    }


def loaded_kernel_modules(proc_modules: str) -> set[str]:
    """Module names from /proc/modules; empty when unreadable (containers, non-Linux)."""
    try:
        with open(proc_modules, encoding="utf-8") as handle:
            return {line.split()[0] for line in handle if line.strip()}
    except OSError:
        return set()


def nvlink_pairs(peer_bus_ids: dict[int, list[str]], gpus: list[dict[str, t.Any]]) -> list[list[int]]:
    """Turn each GPU's remote NVLink PCI ids into sorted, unique GPU index pairs.

    Remote ends that are not one of our GPUs (NVSwitch, another host's GPU) are ignored.
    """
    index_by_bus = {gpu["pci_bus_id"]: gpu["index"] for gpu in gpus if gpu["pci_bus_id"]}
    pairs: set[tuple[int, int]] = set()
    for index, bus_ids in peer_bus_ids.items():
        for bus_id in bus_ids:
            peer = index_by_bus.get(normalize_pci_bus_id(bus_id))
            if peer is not None and peer != index:
                low, high = sorted((index, peer))
                pairs.add((low, high))
    return [list(pair) for pair in sorted(pairs)]


# --------------------------------------------------------------------------- NVML


class _NvmlProbe:
    """Reads one GPU at a time; every optional feature is probed on its own."""

    def __init__(self, nvml: t.Any) -> None:
        self.nvml = nvml
        self.error = nvml.NVMLError

    def call(self, name: str, *args: t.Any) -> t.Any:
        """Call an NVML function, ``None`` when unsupported or absent from old bindings."""
        func = getattr(self.nvml, name, None)
        if func is None:
            return None
        try:
            return func(*args)
        except self.error:
            return None

    def gpu(self, index: int) -> tuple[dict[str, t.Any], list[str]]:
        """Return the GPU entry and the PCI bus ids at the far end of its active NVLinks."""
        handle = self.nvml.nvmlDeviceGetHandleByIndex(index)
        name = self.call("nvmlDeviceGetName", handle)
        pci = self.call("nvmlDeviceGetPciInfo", handle)
        gpu = new_gpu(
            index,
            to_text(name) if name is not None else "NVIDIA GPU",
            normalize_pci_bus_id(pci.busId) if pci is not None else None,
        )
        uuid = self.call("nvmlDeviceGetUUID", handle)
        gpu["uuid"] = to_text(uuid) if uuid is not None else None
        self._memory(handle, gpu)
        capability = self.call("nvmlDeviceGetCudaComputeCapability", handle)
        if capability is not None:
            gpu["compute_capability"] = f"{capability[0]}.{capability[1]}"
        persistence = self.call("nvmlDeviceGetPersistenceMode", handle)
        if persistence is not None:
            gpu["persistence_mode"] = persistence == self._enabled
        peers = self._nvlinks(handle, gpu)
        return gpu, peers

    @property
    def _enabled(self) -> int:
        return getattr(self.nvml, "NVML_FEATURE_ENABLED", NVML_FEATURE_ENABLED)

    def _memory(self, handle: t.Any, gpu: dict[str, t.Any]) -> None:
        memory = self.call("nvmlDeviceGetMemoryInfo", handle)
        if memory is not None:
            gpu["memory_total_mib"] = int(memory.total) // MIB
            gpu["memory_used_mib"] = int(memory.used) // MIB

    def _nvlinks(self, handle: t.Any, gpu: dict[str, t.Any]) -> list[str]:
        # GPUs without NVLink (and unused links) raise NotSupported/InvalidArgument per
        # link; each link is probed separately so that never loses the GPU or other links.
        peers: list[str] = []
        max_links = getattr(self.nvml, "NVML_NVLINK_MAX_LINKS", DEFAULT_NVLINK_MAX_LINKS)
        for link in range(max_links):
            if self.call("nvmlDeviceGetNvLinkState", handle, link) != self._enabled:
                continue
            gpu["nvlink_active_links"] += 1
            remote = self.call("nvmlDeviceGetNvLinkRemotePciInfo", handle, link)
            if remote is not None:
                peers.append(to_text(remote.busId))
        return peers

    def system(self, result: dict[str, t.Any]) -> None:
        driver = self.call("nvmlSystemGetDriverVersion")
        result["driver_version"] = to_text(driver) if driver is not None else None
        cuda = self.call("nvmlSystemGetCudaDriverVersion")
        result["cuda_driver_version"] = cuda_version_from_int(int(cuda)) if cuda is not None else None


def detect_nvml(nvml: t.Any, result: dict[str, t.Any]) -> None:
    """Fill ``result`` from NVML; raise SourceUnavailable/SourceFailed when it cannot."""
    if nvml is None:
        raise SourceUnavailable(f"nvml: the pynvml module (nvidia-ml-py) is not importable: {PYNVML_IMPORT_ERROR}")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:  # DriverNotLoaded, LibraryNotFound, ...
        raise SourceFailed(f"nvml: nvmlInit failed: {type(exc).__name__}: {exc}") from exc
    try:
        _read_nvml(_NvmlProbe(nvml), result)
    finally:
        # A failing shutdown changes nothing for the caller: the data is already read.
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def _read_nvml(probe: _NvmlProbe, result: dict[str, t.Any]) -> None:
    try:
        count = int(probe.nvml.nvmlDeviceGetCount())
    except probe.error as exc:
        raise SourceFailed(f"nvml: nvmlDeviceGetCount failed: {exc}") from exc
    probe.system(result)
    peers: dict[int, list[str]] = {}
    for index in range(count):
        try:
            gpu, peers[index] = probe.gpu(index)
        except probe.error as exc:  # e.g. GPU is lost: report the others
            result["errors"].append(f"nvml: GPU {index} could not be read: {exc}")
            continue
        result["gpus"].append(gpu)
    result["nvlink"]["pairs"] = nvlink_pairs(peers, result["gpus"])


# --------------------------------------------------------------------------- nvidia-smi


def _default_run_command(argv: list[str]) -> tuple[int, str, str]:
    """Used outside Ansible; the module passes ``module.run_command``."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def _xml_text(element: ET.Element, path: str) -> str | None:
    """Text of a child element; nvidia-smi writes ``N/A`` for unsupported values."""
    text = element.findtext(path)
    if text is None:
        return None
    text = text.strip()
    return None if text in ("", "N/A", "[N/A]") else text


def _mib(text: str | None) -> int | None:
    """``"22528 MiB"`` -> 22528."""
    if text is None:
        return None
    match = re.match(r"^(\d+)\s*MiB$", text)
    return int(match.group(1)) if match else None


def parse_nvidia_smi_xml(xml_text: str, result: dict[str, t.Any]) -> None:
    """Fill ``result`` from ``nvidia-smi -q -x``; nvidia-smi lists GPUs in index order."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise SourceFailed(f"nvidia-smi: output is not valid XML: {exc}") from exc
    if root.tag != "nvidia_smi_log":
        raise SourceFailed(f"nvidia-smi: unexpected XML root element <{root.tag}>")
    result["driver_version"] = _xml_text(root, "driver_version")
    result["cuda_driver_version"] = _xml_text(root, "cuda_version")
    for index, element in enumerate(root.findall("gpu")):
        result["gpus"].append(_smi_gpu(index, element))


def _smi_gpu(index: int, element: ET.Element) -> dict[str, t.Any]:
    bus_id = _xml_text(element, "pci/pci_bus_id") or element.get("id")
    gpu = new_gpu(
        index,
        _xml_text(element, "product_name") or "NVIDIA GPU",
        normalize_pci_bus_id(bus_id) if bus_id else None,
    )
    gpu["uuid"] = _xml_text(element, "uuid")
    gpu["memory_total_mib"] = _mib(_xml_text(element, "fb_memory_usage/total"))
    gpu["memory_used_mib"] = _mib(_xml_text(element, "fb_memory_usage/used"))
    # Only recent nvidia-smi versions print the compute capability in the XML.
    gpu["compute_capability"] = _xml_text(element, "compute_cap")
    persistence = _xml_text(element, "persistence_mode")
    gpu["persistence_mode"] = None if persistence is None else persistence == "Enabled"
    return gpu


def detect_nvidia_smi(nvidia_smi: str | None, run_command: RunCommand, result: dict[str, t.Any]) -> None:
    if not nvidia_smi:
        raise SourceUnavailable("nvidia-smi: not found")
    rc, out, err = run_command([nvidia_smi, "-q", "-x"])
    if rc != 0:
        # e.g. "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"
        message = (err or out).strip().splitlines()
        raise SourceFailed(f"nvidia-smi: exit code {rc}: {message[0] if message else 'no output'}")
    parse_nvidia_smi_xml(out, result)


# --------------------------------------------------------------------------- sysfs PCI scan


def _read_hex(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().strip(), 16)
    except (OSError, ValueError):
        return None


def _pci_gpu(device_dir: str) -> int | None:
    """The PCI device id when ``device_dir`` is an NVIDIA display function, else None.

    The class check drops the HDMI audio (0x0403) and USB-C functions of the same card.
    """
    if _read_hex(os.path.join(device_dir, "vendor")) != NVIDIA_VENDOR_ID:
        return None
    pci_class = _read_hex(os.path.join(device_dir, "class"))
    if pci_class is None or pci_class >> 16 != PCI_CLASS_DISPLAY:
        return None
    return _read_hex(os.path.join(device_dir, "device"))


def pci_device_name(device_id: int) -> str:
    return PCI_DEVICE_NAMES.get(device_id, f"NVIDIA device 0x{device_id:04x}")


def detect_pci(sysfs_root: str, result: dict[str, t.Any]) -> None:
    devices = os.path.join(sysfs_root, "bus", "pci", "devices")
    if not os.path.isdir(devices):
        raise SourceUnavailable(f"pci: {devices} does not exist")
    found: list[tuple[str, int]] = []
    for entry in os.listdir(devices):
        device_id = _pci_gpu(os.path.join(devices, entry))
        if device_id is not None:
            found.append((normalize_pci_bus_id(entry), device_id))
    # Bus order is the order NVML and nvidia-smi number GPUs in.
    for index, (bus_id, device_id) in enumerate(sorted(found)):
        result["gpus"].append(new_gpu(index, pci_device_name(device_id), bus_id))
    result["driver_version"] = _read_module_version(sysfs_root)


def _read_module_version(sysfs_root: str) -> str | None:
    """Version of the loaded nvidia kernel module, if any (it may predate a reboot)."""
    try:
        with open(os.path.join(sysfs_root, "module", "nvidia", "version"), encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


# --------------------------------------------------------------------------- entry point


def _run_source(
    source: str,
    result: dict[str, t.Any],
    nvml: t.Any,
    nvidia_smi: str | None,
    run_command: RunCommand,
    sysfs_root: str,
) -> None:
    if source == "nvml":
        detect_nvml(nvml, result)
    elif source == "nvidia-smi":
        detect_nvidia_smi(nvidia_smi, run_command, result)
    elif source == "pci":
        detect_pci(sysfs_root, result)
    else:
        raise SourceUnavailable(f"{source}: unknown source, expected one of {', '.join(SOURCES)}")


def detect(
    nvml: t.Any = None,
    run_command: RunCommand | None = None,
    sysfs_root: str = "/sys",
    proc_modules: str = "/proc/modules",
    sources: t.Sequence[str] = SOURCES,
    nvidia_smi: str | None = "nvidia-smi",
) -> dict[str, t.Any]:
    """Detect NVIDIA GPUs; the first source in ``sources`` that answers wins.

    ``nvml`` defaults to the imported ``pynvml`` (``None`` when it is not installed).
    ``source`` is ``none`` when no source could answer; the caller decides whether that
    is fatal. Failures of the sources tried are listed in ``errors`` for debugging.
    """
    nvml = pynvml if nvml is None else nvml
    runner = run_command or _default_run_command
    errors: list[str] = []
    result = empty_result()
    for source in sources:
        attempt = empty_result()
        try:
            _run_source(source, attempt, nvml, nvidia_smi, runner, sysfs_root)
        except (SourceUnavailable, SourceFailed) as exc:
            errors.append(str(exc))
            continue
        attempt["source"] = source
        result = attempt
        break
    modules = loaded_kernel_modules(proc_modules)
    result["driver_loaded"] = "nvidia" in modules
    result["nouveau_loaded"] = "nouveau" in modules
    result["gpu_count"] = len(result["gpus"])
    result["nvlink"]["links"] = {str(gpu["index"]): gpu["nvlink_active_links"] for gpu in result["gpus"]}
    result["errors"] = errors + result["errors"]
    return result


def any_source_ran(result: dict[str, t.Any]) -> bool:
    return result["source"] != "none"
