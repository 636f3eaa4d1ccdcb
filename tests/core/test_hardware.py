"""Hardware probe: CPU-only reports, fake GPUs, CUDA_VISIBLE_DEVICES, degraded NVML reads, `tuitune hw`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tuitune.core import hardware as hw

GiB = 2**30


def test_cpu_only_report():
    report = hw.probe(".", hw.FakeGpuProbe("none"))
    assert report.gpus == [] and not report.has_gpu
    assert report.cpu.logical_cores and report.cpu.logical_cores >= 1 and report.cpu.model
    assert report.ram.total_bytes and report.ram.available_bytes and report.ram.available_bytes <= report.ram.total_bytes
    assert report.disk.free_bytes and report.disk.free_bytes > 0
    assert report.libraries["transformers"] and report.libraries["torch"]
    assert not report.flash_attn.usable and "no CUDA GPU" in report.flash_attn.reason
    assert report.best_free_bytes() is None


def test_real_probe_on_this_machine_never_raises():
    report = hw.probe("runs", hw.NvmlGpuProbe())
    assert report.cpu.model
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVIDIA driver here: a clean CPU-only report, nothing to complain about
        assert report.gpus == [] and report.problems == []


def test_disk_is_read_at_the_nearest_existing_folder(tmp_path):
    d = hw.disk_info(tmp_path / "not" / "yet" / "runs")
    assert d.free_bytes and d.path.endswith("runs")


@pytest.mark.parametrize(
    ("spec", "count", "total_gib", "cc", "bf16"),
    [
        ("24GB", 1, 24, (8, 9), True),
        ("2x80GB", 2, 80, (8, 9), True),
        ("RTX4090", 1, 24, (8, 9), True),
        ("2xA100", 2, 80, (8, 0), True),
        ("T4", 1, 16, (7, 5), False),
        ("4 x H100", 4, 80, (9, 0), True),
    ],
)
def test_fake_gpus(spec, count, total_gib, cc, bf16):
    reading = hw.FakeGpuProbe(spec).read()
    assert reading.problems == []
    assert len(reading.gpus) == count
    assert [g.index for g in reading.gpus] == list(range(count))
    g = reading.gpus[0]
    assert g.total_bytes == total_gib * GiB and g.free_bytes == g.total_bytes - hw.FAKE_RESERVED_BYTES
    assert g.compute_capability == cc and g.bf16 is bf16


def test_fake_gpu_spec_errors_are_explained():
    reading = hw.FakeGpuProbe("lots of memory").read()
    assert reading.gpus == [] and "TUITUNE_FAKE_GPU" in reading.problems[0] and "RTX4090" in reading.problems[0]


def test_probe_selection_by_environment():
    assert isinstance(hw.select_gpu_probe({"TUITUNE_FAKE_GPU": "24GB"}), hw.FakeGpuProbe)
    assert isinstance(hw.select_gpu_probe({}), hw.NvmlGpuProbe)


@pytest.mark.parametrize(
    ("env", "expected", "problem"),
    [
        (None, [0, 1, 2, 3], False),
        ("", [], False),
        ("-1", [], False),
        ("2", [2], False),
        ("1,0", [1, 0], False),
        ("0,7,1", [0], True),  # an invalid entry hides itself and everything after it
        ("1,1", [1], True),  # a repeated device stops the list too
        ("GPU-bbbb", [1], False),
        ("dddd", [3], False),  # bare UUID prefix
        ("GPU-", [], True),  # ambiguous prefix
        (" 3 , 2 ", [3, 2], False),
    ],
)
def test_cuda_visible_devices(env, expected, problem):
    uuids = ["GPU-aaaa-1", "GPU-bbbb-2", "GPU-cccc-3", "GPU-dddd-4"]
    order, problems = hw.visible_devices(env, uuids)
    assert order == expected
    assert bool(problems) is problem


class StandInNvml:
    """pynvml's functions over made-up GPUs: exercises NvmlGpuProbe on a machine without NVIDIA."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, gpus, broken=()):
        self.gpus = gpus
        self.broken = set(broken)
        self.util = [g["util"] for g in gpus]

    def _check(self, what):
        if what in self.broken:
            raise RuntimeError(f"{what} not supported")

    def nvmlInit(self):  # noqa: N802 - pynvml's names
        pass

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return b"550.54.15"

    def nvmlSystemGetCudaDriverVersion_v2(self):  # noqa: N802
        return 12040

    def nvmlDeviceGetCount(self):  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return i

    def nvmlDeviceGetUUID(self, h):  # noqa: N802
        return self.gpus[h]["uuid"]

    def nvmlDeviceGetName(self, h):  # noqa: N802
        return self.gpus[h]["name"]

    def nvmlDeviceGetCudaComputeCapability(self, h):  # noqa: N802
        return self.gpus[h]["cc"]

    def nvmlDeviceGetMemoryInfo(self, h):  # noqa: N802
        self._check("memory")
        g = self.gpus[h]
        return SimpleNamespace(total=g["total"], free=g["free"], used=g["total"] - g["free"])

    def nvmlDeviceGetUtilizationRates(self, h):  # noqa: N802
        return SimpleNamespace(gpu=self.util[h], memory=0)

    def nvmlDeviceGetTemperature(self, h, kind):  # noqa: N802
        self._check("temperature")
        return 50 + h

    def nvmlDeviceGetComputeRunningProcesses(self, h):  # noqa: N802
        return [SimpleNamespace(pid=os.getppid(), usedGpuMemory=3 * GiB), SimpleNamespace(pid=999999, usedGpuMemory=None)]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):  # noqa: N802
        raise RuntimeError("not supported")


def _gpus():
    return [
        {"uuid": "GPU-aaaa", "name": "NVIDIA A100-SXM4-80GB", "cc": (8, 0), "total": 80 * GiB, "free": 70 * GiB, "util": 5},
        {"uuid": "GPU-bbbb", "name": "Tesla T4", "cc": (7, 5), "total": 16 * GiB, "free": 15 * GiB, "util": 0},
    ]


def test_nvml_probe_reads_and_honours_cuda_visible_devices():
    nvml = StandInNvml(_gpus())
    reading = hw.NvmlGpuProbe({"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=nvml).read()
    assert reading.driver_version == "550.54.15" and reading.cuda_driver_version == "12.4"
    assert len(reading.gpus) == 1
    g = reading.gpus[0]
    assert (g.index, g.physical_index, g.name) == (0, 1, "Tesla T4")  # CUDA calls it 0
    assert g.bf16 is False and g.compute_capability == (7, 5)
    assert g.free_bytes == 15 * GiB and g.temperature_c == 51
    assert [p.pid for p in g.processes] == sorted([os.getppid(), 999999])
    assert {p.pid: p.used_bytes for p in g.processes}[999999] is None


def test_nvml_failures_degrade_with_reasons():
    nvml = StandInNvml(_gpus(), broken={"memory", "temperature"})
    reading = hw.NvmlGpuProbe({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=nvml).read()
    assert len(reading.gpus) == 2
    g = reading.gpus[0]
    assert g.name == "NVIDIA A100-SXM4-80GB" and g.free_bytes is None and g.temperature_c is None
    assert g.utilization_pct == 5
    assert any("GPU 0 memory" in p for p in reading.problems)
    assert any("temperature" in p for p in reading.problems)


def test_mixed_gpus_without_pci_order_are_flagged():
    reading = hw.NvmlGpuProbe({}, nvml=StandInNvml(_gpus())).read()
    assert any("CUDA_DEVICE_ORDER" in p for p in reading.problems)


def test_live_refresh_rereads_only_live_numbers():
    nvml = StandInNvml(_gpus())
    gp = hw.NvmlGpuProbe({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}, nvml=nvml)
    report = hw.probe(".", gp)
    assert report.gpus[0].utilization_pct == 5
    nvml.util[0] = 97
    nvml.gpus[0]["free"] = 10 * GiB
    fresh = hw.live_refresh(report)
    assert fresh.gpus[0].utilization_pct == 97 and fresh.gpus[0].free_bytes == 10 * GiB
    assert fresh.gpus[0].name == report.gpus[0].name and fresh.libraries is report.libraries
    assert report.gpus[0].utilization_pct == 5  # the old report is unchanged


def test_flash_attention_status():
    a100 = hw.FakeGpuProbe("A100").read().gpus
    t4 = hw.FakeGpuProbe("T4").read().gpus
    libs = {"torch": "2.5.0", "flash-attn": "2.7.0"}
    assert hw.flash_attention_status(a100, libs, "12.4").usable
    assert "8.0" in hw.flash_attention_status(t4, libs, "12.4").reason
    assert "not installed" in hw.flash_attention_status(a100, {"torch": "2.5.0", "flash-attn": None}, "12.4").reason
    assert "CPU-only build" in hw.flash_attention_status(a100, libs, None).reason
    assert not hw.flash_attention_status([], libs, "12.4").usable


def test_report_json_shape():
    d = hw.probe(".", hw.FakeGpuProbe("2x24GB")).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert {"gpus", "cpu", "ram", "disk", "libraries", "flash_attn", "problems", "has_gpu"} <= set(d)
    g = d["gpus"][1]
    assert g["index"] == 1 and g["compute_capability"] == "8.9" and g["used_bytes"] == hw.FAKE_RESERVED_BYTES


def _hw(*args, fake):
    env = dict(os.environ, TUITUNE_FAKE_GPU=fake)
    return subprocess.run([sys.executable, "-m", "tuitune", "hw", *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_hw_without_gpu():
    res = _hw(fake="none")
    assert res.returncode == 0, res.stderr
    assert "CPU-only" in res.stdout and "RAM" in res.stdout and "transformers" in res.stdout


def test_cli_hw_with_fake_gpus_json():
    res = _hw("--json", fake="2xRTX4090")
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    assert [g["name"] for g in d["gpus"]] == ["NVIDIA GeForce RTX 4090"] * 2
    assert d["gpu_probe"] == "fake"
    table = _hw(fake="RTX4090")
    assert "RTX 4090" in table.stdout and "fake GPUs" in table.stdout
