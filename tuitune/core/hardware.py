"""What this machine has for training: GPUs, CPU, RAM, disk, libraries, flash-attention.

`probe()` is cheap and never initializes CUDA: GPU facts come from NVML (nvidia-ml-py), which reads
the driver without creating a CUDA context (torch.cuda would hold ~500 MiB per process on every
visible GPU). Library versions come from package metadata, without importing the libraries.
Every part that fails degrades to what could be read, with the reason in `problems`.

GPUs are read through a `GpuProbe`: `NvmlGpuProbe` on real machines, `FakeGpuProbe` for tests,
snapshots and screenshots (`TUITUNE_FAKE_GPU=24GB`, `2x80GB`, `RTX4090`, `2xA100`).
`live_refresh(report)` re-reads only what changes (memory, utilization, temperature, processes),
for the TUI to call about once a second off its event loop.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "textual", "flash-attn")
FAKE_GPU_ENV = "TUITUNE_FAKE_GPU"


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    name: str
    used_bytes: int | None  # None when the driver does not say (e.g. another container's process)


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as CUDA will number it in this process (index honours CUDA_VISIBLE_DEVICES)."""

    index: int
    name: str
    total_bytes: int | None
    free_bytes: int | None
    compute_capability: tuple[int, int] | None
    bf16: bool | None
    utilization_pct: int | None = None
    temperature_c: int | None = None
    processes: tuple[GpuProcess, ...] = ()
    physical_index: int | None = None  # NVML's index (PCI bus order)
    uuid: str = ""

    @property
    def used_bytes(self) -> int | None:
        if self.total_bytes is None or self.free_bytes is None:
            return None
        return self.total_bytes - self.free_bytes


@dataclass(frozen=True)
class CpuInfo:
    model: str
    physical_cores: int | None
    logical_cores: int | None


@dataclass(frozen=True)
class RamInfo:
    total_bytes: int | None
    available_bytes: int | None


@dataclass(frozen=True)
class DiskInfo:
    path: str
    total_bytes: int | None
    free_bytes: int | None


@dataclass(frozen=True)
class FlashAttnInfo:
    usable: bool
    reason: str
    version: str | None = None


@dataclass
class GpuReading:
    """What a GpuProbe returns."""

    gpus: list[GpuInfo]
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class HardwareReport:
    gpus: list[GpuInfo]
    cpu: CpuInfo
    ram: RamInfo
    disk: DiskInfo
    libraries: dict[str, str | None]
    flash_attn: FlashAttnInfo
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    torch_cuda_version: str | None = None
    gpu_probe: str = "nvml"
    problems: list[str] = field(default_factory=list)
    # The probe that read the GPUs, reused by live_refresh (its NVML handles); not serialized.
    probe_used: Any = field(default=None, repr=False, compare=False)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def best_free_bytes(self) -> int | None:
        """Free memory of the emptiest visible GPU (what a single-GPU run can use), or None."""
        frees = [g.free_bytes for g in self.gpus if g.free_bytes is not None]
        return max(frees) if frees else None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "probe_used"}
        for g in d["gpus"]:
            cc = g["compute_capability"]
            g["compute_capability"] = f"{cc[0]}.{cc[1]}" if cc else None
            g["processes"] = list(g["processes"])
            g["used_bytes"] = None if g["total_bytes"] is None or g["free_bytes"] is None else g["total_bytes"] - g["free_bytes"]
        d["has_gpu"] = self.has_gpu
        return d


def _plain(v: Any) -> Any:
    if is_dataclass(v) and not isinstance(v, type):
        return asdict(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------- CUDA_VISIBLE_DEVICES


def visible_devices(env_value: str | None, uuids: list[str]) -> tuple[list[int], list[str]]:
    """Which physical GPUs CUDA exposes, in CUDA's numbering order, and any problems.

    Follows the CUDA runtime's rules: unset = every GPU; a comma-separated list of indices or UUID
    prefixes ("GPU-3b5c..." or the bare hex); "" or an invalid entry hides that entry and every
    one after it; a repeated device stops the list too.
    """
    n = len(uuids)
    if env_value is None:
        return list(range(n)), []
    problems: list[str] = []
    out: list[int] = []
    for raw in env_value.split(","):
        item = raw.strip()
        idx: int | None = None
        if re.fullmatch(r"-?\d+", item):
            value = int(item)
            idx = value if 0 <= value < n else None
        elif item:
            key = item.lower()
            key = key if key.startswith(("gpu-", "mig-")) else "gpu-" + key
            matches = [i for i, u in enumerate(uuids) if u.lower().startswith(key)]
            idx = matches[0] if len(matches) == 1 else None
        if idx is None or idx in out:
            if idx is not None:
                problems.append(f"CUDA_VISIBLE_DEVICES repeats '{item}'; it and later entries are ignored")
            elif item and item != "-1":
                problems.append(
                    f"CUDA_VISIBLE_DEVICES entry '{item}' matches no GPU (there are {n}); it and later entries are ignored"
                )
            break
        out.append(idx)
    return out, problems


# --------------------------------------------------------------------------- GPU probes


class GpuProbe:
    """Reads the GPUs. `read()` once for the full picture, `refresh()` for the live numbers."""

    kind = "none"

    def read(self) -> GpuReading:  # pragma: no cover - interface
        raise NotImplementedError

    def refresh(self, gpus: list[GpuInfo]) -> list[GpuInfo]:  # pragma: no cover - interface
        raise NotImplementedError


class NvmlGpuProbe(GpuProbe):
    """NVIDIA's management library (nvidia-ml-py): no CUDA context, works while GPUs are busy."""

    kind = "nvml"

    def __init__(self, env: dict[str, str] | None = None, nvml: Any = None) -> None:
        self._env = os.environ if env is None else env
        self._handles: dict[int, Any] = {}  # logical index -> NVML handle
        # The pynvml module; tests on GPU-less machines pass a stand-in with the same functions.
        self._nvml = nvml

    def _init(self) -> Any:
        if self._nvml is None:
            import pynvml

            self._nvml = pynvml
        self._nvml.nvmlInit()
        return self._nvml

    def read(self) -> GpuReading:
        try:
            nv = self._init()
        except ImportError:
            return GpuReading([], problems=["nvidia-ml-py is not installed: GPUs cannot be read (pip install nvidia-ml-py)"])
        except Exception as e:  # noqa: BLE001 - no driver, no GPU: a CPU-only machine
            return GpuReading([], problems=[] if _no_driver(e) else [f"NVML could not start: {e}"])
        reading = GpuReading([])
        reading.driver_version = _try(lambda: _text(nv.nvmlSystemGetDriverVersion()), reading.problems, "driver version")
        cuda = _try(lambda: nv.nvmlSystemGetCudaDriverVersion_v2(), reading.problems, "CUDA driver version")
        if cuda:
            reading.cuda_driver_version = f"{cuda // 1000}.{cuda % 1000 // 10}"
        count = _try(lambda: nv.nvmlDeviceGetCount(), reading.problems, "GPU count") or 0
        handles = []
        uuids = []
        for i in range(count):
            h = _try(lambda i=i: nv.nvmlDeviceGetHandleByIndex(i), reading.problems, f"GPU {i}")
            handles.append(h)
            uuids.append(_try(lambda h=h: _text(nv.nvmlDeviceGetUUID(h)), [], "") or "" if h is not None else "")
        order, problems = visible_devices(self._env.get("CUDA_VISIBLE_DEVICES"), uuids)
        reading.problems += problems
        if self._env.get("CUDA_DEVICE_ORDER", "FASTEST_FIRST") != "PCI_BUS_ID" and len(order) > 1:
            names = {_try(lambda h=handles[i]: _text(nv.nvmlDeviceGetName(h)), [], "") for i in order}
            if len(names) > 1:
                reading.problems.append(
                    "mixed GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA may number them "
                    "differently from this list (export CUDA_DEVICE_ORDER=PCI_BUS_ID)"
                )
        for logical, physical in enumerate(order):
            h = handles[physical]
            if h is None:
                continue
            self._handles[logical] = h
            p = reading.problems
            name = _try(lambda h=h: _text(nv.nvmlDeviceGetName(h)), p, f"GPU {logical} name") or "NVIDIA GPU"
            cc = _try(lambda h=h: tuple(nv.nvmlDeviceGetCudaComputeCapability(h)), p, f"GPU {logical} compute capability")
            gpu = GpuInfo(
                index=logical,
                name=name,
                total_bytes=None,
                free_bytes=None,
                compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
                bf16=(cc[0] >= 8) if cc else None,  # bfloat16 tensor cores: Ampere (8.0) and newer
                physical_index=physical,
                uuid=uuids[physical],
            )
            reading.gpus.append(self._live(nv, h, gpu, p))
        return reading

    def _live(self, nv: Any, h: Any, gpu: GpuInfo, problems: list[str]) -> GpuInfo:
        i = gpu.index
        mem = _try(lambda: nv.nvmlDeviceGetMemoryInfo(h), problems, f"GPU {i} memory")
        util = _try(lambda: nv.nvmlDeviceGetUtilizationRates(h).gpu, problems, f"GPU {i} utilization")
        temp = _try(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU), problems, f"GPU {i} temperature")
        procs = _try(lambda: _processes(nv, h), problems, f"GPU {i} processes") or ()
        return replace(
            gpu,
            total_bytes=int(mem.total) if mem else gpu.total_bytes,
            free_bytes=int(mem.free) if mem else None,
            utilization_pct=int(util) if util is not None else None,
            temperature_c=int(temp) if temp is not None else None,
            processes=tuple(procs),
        )

    def refresh(self, gpus: list[GpuInfo]) -> list[GpuInfo]:
        if not self._handles or self._nvml is None:
            return list(gpus)
        nv = self._nvml
        problems: list[str] = []
        return [self._live(nv, self._handles[g.index], g, problems) if g.index in self._handles else g for g in gpus]


def _no_driver(e: Exception) -> bool:
    name = type(e).__name__
    return "LibraryNotFound" in name or "DriverNotLoaded" in name


def _processes(nv: Any, h: Any) -> list[GpuProcess]:
    seen: dict[int, GpuProcess] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            items = getattr(nv, getter)(h)
        except Exception:  # noqa: BLE001 - graphics list unsupported on many datacenter GPUs
            continue
        for p in items:
            used = getattr(p, "usedGpuMemory", None)
            used = int(used) if isinstance(used, int) and used >= 0 and used < 1 << 50 else None
            seen[int(p.pid)] = GpuProcess(int(p.pid), _process_name(int(p.pid)), used)
    me = os.getpid()
    return [p for pid, p in sorted(seen.items()) if pid != me]


def _process_name(pid: int) -> str:
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:  # noqa: BLE001 - another container's or user's process
        return "?"


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _try(fn: Any, problems: list[str], what: str) -> Any:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - degrade to what could be read
        if what:
            problems.append(f"{what}: cannot be read ({type(e).__name__}: {e})")
        return None


# Cards a fake GPU can name: (marketing name, memory in GiB, compute capability).
KNOWN_CARDS: dict[str, tuple[str, int, tuple[int, int]]] = {
    "T4": ("Tesla T4", 16, (7, 5)),
    "V100": ("Tesla V100-SXM2-32GB", 32, (7, 0)),
    "RTX3060": ("NVIDIA GeForce RTX 3060", 12, (8, 6)),
    "RTX3090": ("NVIDIA GeForce RTX 3090", 24, (8, 6)),
    "RTX4090": ("NVIDIA GeForce RTX 4090", 24, (8, 9)),
    "A10G": ("NVIDIA A10G", 24, (8, 6)),
    "L4": ("NVIDIA L4", 24, (8, 9)),
    "A6000": ("NVIDIA RTX A6000", 48, (8, 6)),
    "L40S": ("NVIDIA L40S", 48, (8, 9)),
    "A100": ("NVIDIA A100-SXM4-80GB", 80, (8, 0)),
    "A100-40GB": ("NVIDIA A100-SXM4-40GB", 40, (8, 0)),
    "H100": ("NVIDIA H100 80GB HBM3", 80, (9, 0)),
    "H200": ("NVIDIA H200", 141, (9, 0)),
}
_FAKE_RE = re.compile(r"^\s*(?:(\d+)\s*[x×]\s*)?(.+?)\s*$", re.IGNORECASE)
# What the driver keeps for itself on an idle card (fake GPUs report total minus this as free).
FAKE_RESERVED_BYTES = 400 * 2**20


class FakeGpuProbe(GpuProbe):
    """Made-up GPUs from a spec such as "24GB", "2x80GB", "RTX4090", "2xA100" ("none": no GPU).

    Deterministic (free = total - 400 MiB, idle, 35 °C), for tests, snapshots and screenshots.
    ",busy=I:SIZE" (repeatable) puts another user's process on GPU I: "4xA100,busy=1:38GB" gives
    GPU 1 a python3 process (pid 40001) holding 38 GiB at 97% utilization.
    """

    kind = "fake"

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._gpus, self._problems = self._parse(spec)

    @staticmethod
    def _parse(spec: str) -> tuple[list[GpuInfo], list[str]]:
        card_spec, *extras = (spec or "").split(",")
        gpus, problems = FakeGpuProbe._cards(card_spec)
        for extra in extras:
            m = re.fullmatch(r"\s*busy\s*=\s*(\d+)\s*:\s*(.+?)\s*", extra)
            size = _fake_size(m.group(2)) if m else None
            if m is None or size is None or int(m.group(1)) >= len(gpus):
                problems.append(f"{FAKE_GPU_ENV}={spec!r}: '{extra.strip()}' not understood (busy=INDEX:SIZE, e.g. busy=1:38GB)")
                continue
            i = int(m.group(1))
            g = gpus[i]
            used = min(size, g.free_bytes or 0)
            gpus[i] = replace(g, free_bytes=(g.free_bytes or 0) - used, utilization_pct=97, temperature_c=71,
                              processes=(*g.processes, GpuProcess(40000 + i, "python3", used)))
        return gpus, problems

    @staticmethod
    def _cards(spec: str) -> tuple[list[GpuInfo], list[str]]:
        if spec.strip().lower() in ("0", "none"):
            return [], []  # a machine without GPUs
        m = _FAKE_RE.match(spec or "")
        count = int(m.group(1)) if m and m.group(1) else 1
        what = m.group(2) if m else ""
        card = KNOWN_CARDS.get(what.upper().replace(" ", "").replace("GEFORCE", ""))
        if card is None:
            size = _fake_size(what)
            if size is None:
                cards = ", ".join(KNOWN_CARDS)
                return [], [f"{FAKE_GPU_ENV}={spec!r} not understood: use 24GB, 2x80GB or a card name ({cards})"]
            card = (f"Fake GPU {what.upper()}", 0, (8, 9))
            total = size
        else:
            total = card[1] * 2**30
        if not 1 <= count <= 64:
            return [], [f"{FAKE_GPU_ENV}={spec!r}: GPU count must be 1..64"]
        gpus = [
            GpuInfo(
                index=i,
                name=card[0],
                total_bytes=total,
                free_bytes=total - FAKE_RESERVED_BYTES,
                compute_capability=card[2],
                bf16=card[2][0] >= 8,
                utilization_pct=0,
                temperature_c=35,
                processes=(),
                physical_index=i,
                uuid=f"GPU-fake-{i}",
            )
            for i in range(count)
        ]
        return gpus, []

    def read(self) -> GpuReading:
        return GpuReading(list(self._gpus), "fake", "12.4", list(self._problems))

    def refresh(self, gpus: list[GpuInfo]) -> list[GpuInfo]:
        return list(gpus)


def _fake_size(text: str) -> int | None:
    from tuitune.core.units import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError:
        return None


def select_gpu_probe(env: dict[str, str] | None = None) -> GpuProbe:
    """The fake probe when TUITUNE_FAKE_GPU is set, else NVML."""
    env = os.environ if env is None else env
    fake = env.get(FAKE_GPU_ENV, "").strip()
    if fake:
        return FakeGpuProbe(fake)
    return NvmlGpuProbe(env)


# --------------------------------------------------------------------------- the rest of the machine


def cpu_info() -> CpuInfo:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    try:
        import psutil

        return CpuInfo(model, psutil.cpu_count(logical=False), psutil.cpu_count(logical=True))
    except Exception:  # noqa: BLE001
        return CpuInfo(model, None, os.cpu_count())


def ram_info() -> RamInfo:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return RamInfo(int(vm.total), int(vm.available))
    except Exception:  # noqa: BLE001
        return RamInfo(None, None)


def disk_info(path: str | os.PathLike[str]) -> DiskInfo:
    """Free space where runs will be written (the nearest existing folder of `path`)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        usage = shutil.disk_usage(p)
        return DiskInfo(str(Path(path)), int(usage.total), int(usage.free))
    except OSError:
        return DiskInfo(str(Path(path)), None, None)


def library_versions() -> dict[str, str | None]:
    """Installed versions from package metadata (no imports, so no CUDA initialization)."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def torch_cuda_version() -> str | None:
    """The CUDA version torch was built with ("12.4"), or None for CPU builds; read without importing torch."""
    from importlib import metadata

    try:
        dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).endswith("torch/version.py"):
            try:
                text = Path(str(dist.locate_file(f))).read_text()
            except OSError:
                return None
            m = re.search(r"^cuda\s*(?::\s*[^=]+)?=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
            return m.group(1) if m else None
    return None


def flash_attention_status(gpus: list[GpuInfo], libraries: dict[str, str | None], torch_cuda: str | None) -> FlashAttnInfo:
    """Whether model.attn_implementation = "flash_attention_2" can work here, and why not."""
    version = libraries.get("flash-attn")
    if not gpus:
        return FlashAttnInfo(False, "no CUDA GPU (FlashAttention-2 runs only on NVIDIA GPUs)", version)
    if torch_cuda is None and libraries.get("torch"):
        return FlashAttnInfo(False, "torch is a CPU-only build (install a CUDA build of torch)", version)
    old = [g for g in gpus if g.compute_capability and g.compute_capability < (8, 0)]
    if len(old) == len(gpus):
        g = old[0]
        cc = f"{g.compute_capability[0]}.{g.compute_capability[1]}" if g.compute_capability else "?"
        return FlashAttnInfo(
            False, f"GPU {g.index} ({g.name}) is compute capability {cc}; FlashAttention-2 needs 8.0+ (Ampere or newer)", version
        )
    if version is None:
        return FlashAttnInfo(False, "flash-attn is not installed (pip install flash-attn --no-build-isolation); sdpa is used", None)
    return FlashAttnInfo(True, f"flash-attn {version} on a compute capability 8.0+ GPU", version)


# --------------------------------------------------------------------------- the report


def probe(runs_dir: str | os.PathLike[str] = ".", gpu_probe: GpuProbe | None = None) -> HardwareReport:
    """Read the machine. Never raises: what cannot be read is None, with the reason in problems."""
    gp = gpu_probe or select_gpu_probe()
    try:
        reading = gp.read()
    except Exception as e:  # noqa: BLE001 - a broken probe still gives a CPU report
        reading = GpuReading([], problems=[f"GPU probe failed: {e}"])
    libs = library_versions()
    torch_cuda = torch_cuda_version() if gp.kind != "fake" else "12.4"
    return HardwareReport(
        gpus=reading.gpus,
        cpu=cpu_info(),
        ram=ram_info(),
        disk=disk_info(runs_dir),
        libraries=libs,
        flash_attn=flash_attention_status(reading.gpus, libs, torch_cuda),
        driver_version=reading.driver_version,
        cuda_driver_version=reading.cuda_driver_version,
        torch_cuda_version=torch_cuda,
        gpu_probe=gp.kind,
        problems=list(reading.problems),
        probe_used=gp,
    )


def live_refresh(report: HardwareReport, gpu_probe: GpuProbe | None = None) -> HardwareReport:
    """A copy of `report` with memory, utilization, temperature, processes and free RAM re-read.

    Cheap (a few NVML calls per GPU): meant for a TUI timer, run in a worker thread. The probe that
    made the report is reused (its NVML handles), unless another is given.
    """
    gp = gpu_probe or report.probe_used or select_gpu_probe()
    try:
        gpus = gp.refresh(report.gpus)
    except Exception:  # noqa: BLE001 - keep the last numbers
        gpus = report.gpus
    return replace(report, gpus=gpus, ram=ram_info())
