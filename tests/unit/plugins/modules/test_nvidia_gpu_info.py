# Copyright: selfhosted.ai_stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Tests for the GPU detection logic (module_utils/_nvidia_gpu.py) and the nvidia_gpu_info module.

No GPU is needed: NVML is a fake object, nvidia-smi is canned XML and sysfs is built in tmp_path.
"""

from __future__ import annotations

import json
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic

from ansible_collections.selfhosted.ai_stack.plugins.module_utils import _nvidia_gpu
from ansible_collections.selfhosted.ai_stack.plugins.modules import nvidia_gpu_info

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nvidia"
UUID_0 = "GPU-1f0c7d3b-2a4e-6c1d-8e9f-0a1b2c3d4e5f"
UUID_1 = "GPU-8a9b0c1d-2e3f-4a5b-6c7d-8e9f0a1b2c3d"
MIB = 1024 * 1024


# --------------------------------------------------------------------------- fake NVML


class FakeNVMLError(Exception):
    def __init__(self, value: int = 999) -> None:
        super().__init__(value)
        self.value = value


class FakeNotSupported(FakeNVMLError):
    def __init__(self) -> None:
        super().__init__(3)


class FakeDriverNotLoaded(FakeNVMLError):
    def __init__(self) -> None:
        super().__init__(9)


class FakeGpuLost(FakeNVMLError):
    def __init__(self) -> None:
        super().__init__(15)


@dataclass
class FakeGpu:
    name: str = "NVIDIA GeForce RTX 2080 Ti"
    uuid: str = UUID_0
    bus_id: str = "00000000:01:00.0"
    total_mib: int = 22528
    used_mib: int = 1
    capability: tuple[int, int] = (7, 5)
    persistence: int = 1
    # link number -> remote PCI bus id; links not listed are down (state 0).
    links: dict[int, str] = field(default_factory=dict)
    nvlink_supported: bool = True
    unsupported: set[str] = field(default_factory=set)  # NVML function names raising NotSupported
    lost: bool = False


@dataclass
class Struct:
    busId: t.Any = None  # NVML's field name
    total: int = 0
    used: int = 0


class FakeNvml:
    """Just enough of pynvml's module-level API, with call bookkeeping."""

    NVMLError = FakeNVMLError
    NVML_FEATURE_ENABLED = 1

    def __init__(
        self,
        gpus: list[FakeGpu],
        driver: t.Any = "550.54.15",
        cuda: int = 12040,
        init_error: type[FakeNVMLError] | None = None,
        as_bytes: bool = False,
        max_links: int | None = 18,
    ) -> None:
        if max_links is not None:  # old bindings lack the constant
            self.NVML_NVLINK_MAX_LINKS = max_links
        self.gpus = gpus
        self.driver = driver
        self.cuda = cuda
        self.init_error = init_error
        self.as_bytes = as_bytes
        self.initialised = False
        self.shutdowns = 0
        self.link_probes = 0

    def _text(self, value: str) -> t.Any:
        return value.encode() if self.as_bytes else value

    def _gpu(self, handle: FakeGpu, func: str) -> FakeGpu:
        assert self.initialised, f"{func} called before nvmlInit"
        if func in handle.unsupported:
            raise FakeNotSupported()
        return handle

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error()
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> t.Any:
        return self._text(self.driver)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        if self.gpus[index].lost:
            raise FakeGpuLost()
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> t.Any:
        return self._text(self._gpu(handle, "nvmlDeviceGetName").name)

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> t.Any:
        return self._text(self._gpu(handle, "nvmlDeviceGetUUID").uuid)

    def nvmlDeviceGetPciInfo(self, handle: FakeGpu) -> Struct:
        return Struct(busId=self._text(self._gpu(handle, "nvmlDeviceGetPciInfo").bus_id))

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> Struct:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return Struct(total=gpu.total_mib * MIB, used=gpu.used_mib * MIB)

    def nvmlDeviceGetCudaComputeCapability(self, handle: FakeGpu) -> tuple[int, int]:
        return self._gpu(handle, "nvmlDeviceGetCudaComputeCapability").capability

    def nvmlDeviceGetPersistenceMode(self, handle: FakeGpu) -> int:
        return self._gpu(handle, "nvmlDeviceGetPersistenceMode").persistence

    def nvmlDeviceGetNvLinkState(self, handle: FakeGpu, link: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetNvLinkState")
        self.link_probes += 1
        if not gpu.nvlink_supported:
            raise FakeNotSupported()
        return 1 if link in gpu.links else 0

    def nvmlDeviceGetNvLinkRemotePciInfo(self, handle: FakeGpu, link: int) -> Struct:
        gpu = self._gpu(handle, "nvmlDeviceGetNvLinkRemotePciInfo")
        return Struct(busId=self._text(gpu.links[link]))


def two_linked_2080ti(as_bytes: bool = False) -> FakeNvml:
    """The guide's server: two 22 GiB RTX 2080 Ti joined by a 2-link NVLink bridge.

    The remote ids use the legacy 4-digit, lower case form on purpose: peers must still map.
    """
    return FakeNvml(
        [
            FakeGpu(uuid=UUID_0, bus_id="00000000:01:00.0", links={0: "0000:02:00.0", 1: "0000:02:00.0"}),
            FakeGpu(
                uuid=UUID_1, bus_id="00000000:02:00.0", used_mib=6144, links={0: "0000:01:00.0", 1: "0000:01:00.0"}
            ),
        ],
        as_bytes=as_bytes,
    )


# --------------------------------------------------------------------------- fake host


def fake_sysfs(root: Path, devices: dict[str, tuple[str, str, str]]) -> Path:
    """Build <root>/bus/pci/devices/<bdf>/{vendor,class,device}."""
    base = root / "bus" / "pci" / "devices"
    base.mkdir(parents=True)
    for bdf, (vendor, pci_class, device) in devices.items():
        entry = base / bdf
        entry.mkdir()
        (entry / "vendor").write_text(f"{vendor}\n")
        (entry / "class").write_text(f"{pci_class}\n")
        (entry / "device").write_text(f"{device}\n")
    return root


HOST_DEVICES = {
    "0000:00:02.0": ("0x8086", "0x030000", "0x3e92"),  # Intel iGPU: not NVIDIA
    "0000:01:00.0": ("0x10de", "0x030000", "0x1e07"),  # RTX 2080 Ti VGA function
    "0000:01:00.1": ("0x10de", "0x040300", "0x10f7"),  # its HDMI audio function
    "0000:41:00.0": ("0x10de", "0x030200", "0x26b9"),  # unknown 3D controller
}


class Runner:
    """A ``module.run_command`` stand-in that records argv."""

    def __init__(self, rc: int = 0, out: str = "", err: str = "") -> None:
        self.result = (rc, out, err)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], **_kwargs: t.Any) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.result


def smi_xml(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture
def no_sysfs(tmp_path: Path) -> str:
    return str(tmp_path / "no-sysfs")


@pytest.fixture
def proc_nvidia() -> str:
    return str(FIXTURES / "proc-modules-nvidia")


def run_detect(nvml: t.Any = None, runner: Runner | None = None, sysfs: str = "/nonexistent", **kwargs: t.Any):
    return _nvidia_gpu.detect(
        nvml=nvml,
        run_command=runner or Runner(rc=127, err="should not run"),
        sysfs_root=sysfs,
        proc_modules=kwargs.pop("proc_modules", "/nonexistent/modules"),
        **kwargs,
    )


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00000000:01:00.0", "00000000:01:00.0"),
        ("0000:3b:00.0", "00000000:3B:00.0"),
        (b"00000000:3B:00.0\x00", "00000000:3B:00.0"),
        ("1:0.1", "00000000:01:00.1"),
        ("0001:af:1f.7", "00000001:AF:1F.7"),
        ("garbage", "garbage"),
    ],
)
def test_normalize_pci_bus_id(raw: t.Any, expected: str) -> None:
    assert _nvidia_gpu.normalize_pci_bus_id(raw) == expected


@pytest.mark.parametrize(("value", "expected"), [(12040, "12.4"), (12080, "12.8"), (11020, "11.2"), (13000, "13.0")])
def test_cuda_version_from_int(value: int, expected: str) -> None:
    assert _nvidia_gpu.cuda_version_from_int(value) == expected


@pytest.mark.parametrize(
    ("fixture", "driver", "nouveau"),
    [("proc-modules-nvidia", True, False), ("proc-modules-nouveau", False, True), ("missing", False, False)],
)
def test_kernel_modules(fixture: str, driver: bool, nouveau: bool) -> None:
    result = run_detect(nvml=FakeNvml([]), proc_modules=str(FIXTURES / fixture))
    assert (result["driver_loaded"], result["nouveau_loaded"]) == (driver, nouveau)


def test_nvidia_helper_modules_alone_are_not_the_driver(tmp_path: Path) -> None:
    modules = tmp_path / "modules"
    modules.write_text("nvidia_uvm 4956160 0 - Live 0x0\nnouveau_helper 1 0 - Live 0x0\n")
    result = run_detect(nvml=FakeNvml([]), proc_modules=str(modules))
    assert (result["driver_loaded"], result["nouveau_loaded"]) == (False, False)


# --------------------------------------------------------------------------- NVML


@pytest.mark.parametrize("count", [0, 1, 2])
def test_nvml_counts(count: int) -> None:
    gpus = [FakeGpu(uuid=f"GPU-{i}", bus_id=f"00000000:0{i + 1}:00.0") for i in range(count)]
    nvml = FakeNvml(gpus)
    result = run_detect(nvml=nvml)
    assert result["source"] == "nvml"
    assert result["gpu_count"] == count
    assert [gpu["index"] for gpu in result["gpus"]] == list(range(count))
    assert result["nvlink"] == {"pairs": [], "links": {str(i): 0 for i in range(count)}}
    assert nvml.shutdowns == 1


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_nvml_guide_server_with_nvlink(as_bytes: bool) -> None:
    result = run_detect(nvml=two_linked_2080ti(as_bytes=as_bytes))
    assert result["source"] == "nvml"
    assert result["driver_version"] == "550.54.15"
    assert result["cuda_driver_version"] == "12.4"
    assert result["nvlink"] == {"pairs": [[0, 1]], "links": {"0": 2, "1": 2}}
    assert result["errors"] == []
    assert result["gpus"][0] == {
        "index": 0,
        "uuid": UUID_0,
        "name": "NVIDIA GeForce RTX 2080 Ti",
        "pci_bus_id": "00000000:01:00.0",
        "memory_total_mib": 22528,
        "memory_used_mib": 1,
        "compute_capability": "7.5",
        "persistence_mode": True,
        "nvlink_active_links": 2,
    }
    assert result["gpus"][1]["memory_used_mib"] == 6144


def test_nvml_link_to_non_gpu_is_not_a_pair() -> None:
    # An NVSwitch (or anything that is not one of our GPUs) at the far end counts as a link only.
    nvml = FakeNvml([FakeGpu(links={0: "00000000:C1:00.0"})])
    result = run_detect(nvml=nvml)
    assert result["nvlink"] == {"pairs": [], "links": {"0": 1}}


def test_nvml_loopback_link_is_not_a_pair() -> None:
    nvml = FakeNvml([FakeGpu(links={0: "00000000:01:00.0"}, persistence=0)])
    result = run_detect(nvml=nvml)
    assert result["nvlink"] == {"pairs": [], "links": {"0": 1}}
    assert result["gpus"][0]["persistence_mode"] is False


def test_nvml_gpu_without_nvlink_support_is_still_reported() -> None:
    nvml = FakeNvml([FakeGpu(nvlink_supported=False)])
    result = run_detect(nvml=nvml)
    assert result["gpu_count"] == 1
    assert result["gpus"][0]["nvlink_active_links"] == 0
    assert result["gpus"][0]["memory_total_mib"] == 22528
    assert result["nvlink"] == {"pairs": [], "links": {"0": 0}}
    # every link is probed on its own, none of the failures escapes
    assert nvml.link_probes == 18


@pytest.mark.parametrize(
    ("unsupported", "key", "fallback"),
    [
        ("nvmlDeviceGetPersistenceMode", "persistence_mode", None),
        ("nvmlDeviceGetCudaComputeCapability", "compute_capability", None),
        ("nvmlDeviceGetMemoryInfo", "memory_total_mib", None),
        ("nvmlDeviceGetUUID", "uuid", None),
        ("nvmlDeviceGetPciInfo", "pci_bus_id", None),
        ("nvmlDeviceGetName", "name", "NVIDIA GPU"),
        ("nvmlDeviceGetNvLinkRemotePciInfo", "nvlink_active_links", 2),
    ],
)
def test_nvml_unsupported_feature_never_loses_the_gpu(unsupported: str, key: str, fallback: t.Any) -> None:
    nvml = two_linked_2080ti()
    nvml.gpus[0].unsupported = {unsupported}
    result = run_detect(nvml=nvml)
    assert result["gpu_count"] == 2
    assert result["gpus"][0][key] == fallback
    assert result["gpus"][1]["uuid"] == UUID_1


def test_nvml_lost_gpu_is_skipped_and_reported() -> None:
    nvml = FakeNvml([FakeGpu(lost=True), FakeGpu(uuid=UUID_1, bus_id="00000000:02:00.0")])
    result = run_detect(nvml=nvml)
    assert [gpu["uuid"] for gpu in result["gpus"]] == [UUID_1]
    assert result["errors"] == ["nvml: GPU 0 could not be read: 15"]
    assert nvml.shutdowns == 1


def test_nvml_old_bindings_without_optional_functions() -> None:
    # Old pynvml releases lack some functions and the NVLink constant entirely.
    class OldNvml(FakeNvml):
        nvmlDeviceGetCudaComputeCapability = None
        nvmlSystemGetCudaDriverVersion = None

    nvml = OldNvml([FakeGpu(links={3: "0000:02:00.0", 12: "0000:02:00.0"})], max_links=None)
    result = run_detect(nvml=nvml)
    assert result["source"] == "nvml"
    assert result["cuda_driver_version"] is None
    assert result["gpus"][0]["compute_capability"] is None
    # links 0..11 are probed (the old constant), so link 12 is not seen
    assert result["gpus"][0]["nvlink_active_links"] == 1
    assert nvml.link_probes == 12


def test_nvml_shutdown_even_when_reading_fails() -> None:
    class Broken(FakeNvml):
        def nvmlDeviceGetCount(self) -> int:
            raise FakeDriverNotLoaded()

    nvml = Broken([])
    result = run_detect(nvml=nvml, sources=["nvml"])
    assert result["source"] == "none"
    assert nvml.shutdowns == 1
    assert "nvmlDeviceGetCount failed" in result["errors"][0]


# --------------------------------------------------------------------------- fallbacks


def test_driver_not_loaded_falls_through_to_nvidia_smi() -> None:
    runner = Runner(out=smi_xml("nvidia-smi-2x-rtx2080ti.xml"))
    nvml = FakeNvml([], init_error=FakeDriverNotLoaded)
    result = run_detect(nvml=nvml, runner=runner, nvidia_smi="/usr/bin/nvidia-smi")
    assert result["source"] == "nvidia-smi"
    assert runner.calls == [["/usr/bin/nvidia-smi", "-q", "-x"]]
    assert nvml.shutdowns == 0  # never initialised, so nothing to shut down
    assert result["errors"] == ["nvml: nvmlInit failed: FakeDriverNotLoaded: 9"]


def test_driver_not_loaded_and_smi_failing_falls_through_to_pci(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, HOST_DEVICES)
    runner = Runner(rc=9, err="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")
    result = run_detect(nvml=FakeNvml([], init_error=FakeDriverNotLoaded), runner=runner, sysfs=str(sysfs))
    assert result["source"] == "pci"
    assert result["gpu_count"] == 2
    assert result["errors"] == [
        "nvml: nvmlInit failed: FakeDriverNotLoaded: 9",
        "nvidia-smi: exit code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    ]


def test_missing_pynvml_is_not_an_error_when_smi_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_nvidia_gpu, "pynvml", None)
    monkeypatch.setattr(_nvidia_gpu, "PYNVML_IMPORT_ERROR", "No module named 'pynvml'")
    runner = Runner(out=smi_xml("nvidia-smi-1x-h200.xml"))
    result = run_detect(runner=runner)
    assert result["source"] == "nvidia-smi"
    assert result["gpu_count"] == 1
    assert "not importable: No module named 'pynvml'" in result["errors"][0]


def test_no_source_can_run(monkeypatch: pytest.MonkeyPatch, no_sysfs: str) -> None:
    monkeypatch.setattr(_nvidia_gpu, "pynvml", None)
    result = run_detect(nvidia_smi=None, sysfs=no_sysfs)
    assert result["source"] == "none"
    assert result["gpu_count"] == 0
    assert [error.split(":")[0] for error in result["errors"]] == ["nvml", "nvidia-smi", "pci"]


def test_sources_are_tried_in_the_given_order(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, HOST_DEVICES)
    runner = Runner(out=smi_xml("nvidia-smi-2x-rtx2080ti.xml"))
    result = run_detect(nvml=two_linked_2080ti(), runner=runner, sysfs=str(sysfs), sources=["pci", "nvml"])
    assert result["source"] == "pci"
    assert runner.calls == []


# --------------------------------------------------------------------------- nvidia-smi


def test_nvidia_smi_two_2080ti() -> None:
    result = run_detect(nvml=None, sources=["nvidia-smi"], runner=Runner(out=smi_xml("nvidia-smi-2x-rtx2080ti.xml")))
    assert result["driver_version"] == "550.54.15"
    assert result["cuda_driver_version"] == "12.4"
    assert result["gpus"] == [
        {
            "index": 0,
            "uuid": UUID_0,
            "name": "NVIDIA GeForce RTX 2080 Ti",
            "pci_bus_id": "00000000:01:00.0",
            "memory_total_mib": 22528,
            "memory_used_mib": 1,
            "compute_capability": None,  # this nvidia-smi does not print it
            "persistence_mode": True,
            "nvlink_active_links": 0,
        },
        {
            "index": 1,
            "uuid": UUID_1,
            "name": "NVIDIA GeForce RTX 2080 Ti",
            "pci_bus_id": "00000000:02:00.0",
            "memory_total_mib": 22528,
            "memory_used_mib": 6144,
            "compute_capability": None,
            "persistence_mode": True,
            "nvlink_active_links": 0,
        },
    ]
    assert result["nvlink"] == {"pairs": [], "links": {"0": 0, "1": 0}}


def test_nvidia_smi_h200() -> None:
    result = run_detect(sources=["nvidia-smi"], runner=Runner(out=smi_xml("nvidia-smi-1x-h200.xml")))
    (gpu,) = result["gpus"]
    assert (gpu["name"], gpu["pci_bus_id"], gpu["memory_total_mib"]) == ("NVIDIA H200", "00000000:1B:00.0", 143771)
    assert (gpu["compute_capability"], gpu["persistence_mode"]) == ("9.0", False)
    assert (result["driver_version"], result["cuda_driver_version"]) == ("570.133.20", "12.8")


def test_nvidia_smi_not_available_values_become_none() -> None:
    xml = """<?xml version="1.0" ?>
<nvidia_smi_log>
  <driver_version>535.183.01</driver_version>
  <cuda_version>N/A</cuda_version>
  <gpu id="0000:03:00.0">
    <product_name>Tesla T4</product_name>
    <persistence_mode>N/A</persistence_mode>
    <uuid>GPU-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d</uuid>
    <fb_memory_usage><total>N/A</total><used>[N/A]</used></fb_memory_usage>
  </gpu>
</nvidia_smi_log>
"""
    result = run_detect(sources=["nvidia-smi"], runner=Runner(out=xml))
    (gpu,) = result["gpus"]
    assert result["cuda_driver_version"] is None
    # no <pci> block: the id attribute is used, normalised
    assert gpu["pci_bus_id"] == "00000000:03:00.0"
    assert (gpu["persistence_mode"], gpu["memory_total_mib"], gpu["memory_used_mib"]) == (None, None, None)


@pytest.mark.parametrize(
    ("runner", "message"),
    [
        (Runner(rc=6, out="No devices were found\n"), "nvidia-smi: exit code 6: No devices were found"),
        (Runner(out="<nvidia_smi_log><gpu>"), "nvidia-smi: output is not valid XML"),
        (Runner(out="<html/>"), "nvidia-smi: unexpected XML root element <html>"),
    ],
)
def test_nvidia_smi_failures(runner: Runner, message: str, no_sysfs: str) -> None:
    result = run_detect(sources=["nvidia-smi"], runner=runner, sysfs=no_sysfs)
    assert result["source"] == "none"
    assert result["errors"][0].startswith(message)


# --------------------------------------------------------------------------- PCI scan


def test_pci_scan_ignores_audio_and_other_vendors(tmp_path: Path, proc_nvidia: str) -> None:
    sysfs = fake_sysfs(tmp_path, HOST_DEVICES)
    (tmp_path / "module" / "nvidia").mkdir(parents=True)
    (tmp_path / "module" / "nvidia" / "version").write_text("550.54.15\n")
    result = run_detect(sources=["pci"], sysfs=str(sysfs), proc_modules=proc_nvidia)
    assert result["source"] == "pci"
    assert [(gpu["index"], gpu["pci_bus_id"], gpu["name"]) for gpu in result["gpus"]] == [
        (0, "00000000:01:00.0", "NVIDIA GeForce RTX 2080 Ti"),
        (1, "00000000:41:00.0", "NVIDIA device 0x26b9"),
    ]
    assert all(gpu["uuid"] is None and gpu["memory_total_mib"] is None for gpu in result["gpus"])
    assert result["driver_version"] == "550.54.15"
    assert result["driver_loaded"] is True


def test_pci_scan_without_gpus_is_a_valid_answer(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, {"0000:00:02.0": ("0x8086", "0x030000", "0x3e92")})
    result = run_detect(sources=["pci"], sysfs=str(sysfs))
    assert (result["source"], result["gpu_count"], result["driver_version"]) == ("pci", 0, None)


def test_pci_scan_skips_unreadable_entries(tmp_path: Path) -> None:
    sysfs = fake_sysfs(tmp_path, {"0000:01:00.0": ("0x10de", "0x030000", "0x2335")})
    (tmp_path / "bus" / "pci" / "devices" / "0000:02:00.0").mkdir()  # no attribute files
    result = run_detect(sources=["pci"], sysfs=str(sysfs))
    assert [gpu["name"] for gpu in result["gpus"]] == ["NVIDIA H200"]


# --------------------------------------------------------------------------- module main()


class ExitJson(Exception):
    pass


class FailJson(Exception):
    pass


def _exit_json(self: basic.AnsibleModule, **kwargs: t.Any) -> None:
    raise ExitJson(kwargs)


def _fail_json(self: basic.AnsibleModule, **kwargs: t.Any) -> None:
    raise FailJson(kwargs)


try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    import contextlib

    from ansible.module_utils.common.text.converters import to_bytes

    @contextlib.contextmanager
    def patch_module_args(args: dict[str, t.Any] | None = None) -> t.Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}})))
            yield


@pytest.fixture
def module_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, t.Any]:
    """Redirect the module's host access (NVML, nvidia-smi, sysfs, /proc) to fakes."""
    env: dict[str, t.Any] = {"nvml": two_linked_2080ti(), "runner": Runner(rc=1, err="unused"), "smi": None}
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: env["runner"](argv))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, arg, **kw: env["smi"])
    monkeypatch.setattr(_nvidia_gpu, "pynvml", None)
    real_detect = _nvidia_gpu.detect

    def detect(**kwargs: t.Any) -> dict[str, t.Any]:
        return real_detect(
            nvml=env["nvml"],
            sysfs_root=str(env.get("sysfs", tmp_path / "no-sysfs")),
            proc_modules=str(FIXTURES / "proc-modules-nvidia"),
            **kwargs,
        )

    monkeypatch.setattr(nvidia_gpu_info, "detect", detect)
    return env


def run_main(args: dict[str, t.Any]) -> tuple[str, dict[str, t.Any]]:
    with patch_module_args(args), pytest.raises((ExitJson, FailJson)) as outcome:
        nvidia_gpu_info.main()
    return type(outcome.value).__name__, outcome.value.args[0]


@pytest.mark.parametrize(
    "extra",
    [{}, {"_ansible_check_mode": True}, {"_ansible_diff": True}, {"_ansible_check_mode": True, "_ansible_diff": True}],
    ids=["normal", "check", "diff", "check+diff"],
)
def test_main_reports_gpus_unchanged(module_env: dict[str, t.Any], extra: dict[str, t.Any]) -> None:
    kind, result = run_main(extra)
    assert kind == "ExitJson"
    assert result["changed"] is False
    assert result["source"] == "nvml"
    assert result["gpu_count"] == 2
    assert result["nvlink"]["pairs"] == [[0, 1]]
    assert result["driver_loaded"] is True


def test_main_no_gpu_is_not_a_failure(module_env: dict[str, t.Any]) -> None:
    module_env["nvml"] = FakeNvml([])
    kind, result = run_main({})
    assert (kind, result["gpu_count"], result["changed"]) == ("ExitJson", 0, False)


def test_main_uses_resolved_nvidia_smi(module_env: dict[str, t.Any]) -> None:
    module_env["nvml"] = None  # pynvml missing
    module_env["smi"] = "/opt/nvidia/bin/nvidia-smi"
    module_env["runner"] = Runner(out=smi_xml("nvidia-smi-2x-rtx2080ti.xml"))
    kind, result = run_main({"nvidia_smi_path": "/opt/nvidia/bin/nvidia-smi"})
    assert (kind, result["source"]) == ("ExitJson", "nvidia-smi")
    assert module_env["runner"].calls == [["/opt/nvidia/bin/nvidia-smi", "-q", "-x"]]


def test_main_pci_only_host(module_env: dict[str, t.Any], tmp_path: Path) -> None:
    module_env["nvml"] = None
    module_env["sysfs"] = fake_sysfs(tmp_path / "sys", HOST_DEVICES)
    kind, result = run_main({})
    assert (kind, result["source"], result["gpu_count"]) == ("ExitJson", "pci", 2)


def test_main_fails_with_hint_when_no_source_runs(module_env: dict[str, t.Any]) -> None:
    module_env["nvml"] = None
    kind, result = run_main({})
    assert kind == "FailJson"
    assert _nvidia_gpu.HINT in result["msg"]
    assert "nvidia-smi: not found" in result["msg"]
    assert result["source"] == "none"


def test_main_fails_when_the_only_selected_source_cannot_run(module_env: dict[str, t.Any], tmp_path: Path) -> None:
    # A PCI tree exists, but the user asked for the driver only.
    module_env["nvml"] = None
    module_env["sysfs"] = fake_sysfs(tmp_path / "sys", HOST_DEVICES)
    kind, result = run_main({"sources": ["nvml"]})
    assert kind == "FailJson"
    assert _nvidia_gpu.HINT in result["msg"]


def test_main_rejects_unknown_source(module_env: dict[str, t.Any]) -> None:
    kind, result = run_main({"sources": ["lspci"]})
    assert kind == "FailJson"
    assert "lspci" in result["msg"]


def test_argument_spec_matches_documentation() -> None:
    options = yaml.safe_load(nvidia_gpu_info.DOCUMENTATION)["options"]
    spec = nvidia_gpu_info._argument_spec()
    assert set(options) == set(spec)
    for name, option in spec.items():
        assert options[name]["type"] == option["type"]
        assert options[name]["default"] == option["default"]
        assert options[name].get("choices") == option.get("choices")


def test_return_documents_every_key(module_env: dict[str, t.Any]) -> None:
    documented = set(yaml.safe_load(nvidia_gpu_info.RETURN))
    _kind, result = run_main({})
    assert set(result) - {"changed", "invocation"} == documented
