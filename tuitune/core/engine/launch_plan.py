"""How a run will be launched, decided before anything starts: GPUs, processes, environment, command.

`plan_launch(recipe, run_path, ...)` reads the GPUs (core.hardware's probe: NVML, or the fake one),
estimates the memory per GPU (core.memory, from the architecture alone), chooses the GPUs
(core.gpu_choice: the recipe's `train.gpus` or --gpus), refuses a run that would not fit a chosen
GPU's free memory (unless forced) and builds the trainer's command and environment:

- one process per chosen GPU (`nproc` defaults to their number), CUDA_DEVICE_ORDER=PCI_BUS_ID and
  CUDA_VISIBLE_DEVICES set in the child's environment, so nothing in it can touch another GPU;
- one process: `python -m tuitune.core.engine.worker RUN`; several, or several machines:
  `python -m tuitune.core.engine.distributed` (accelerate's launcher, torchrun underneath) with the
  machine count, this machine's rank and the main machine's address;
- a single-machine job keeps its sockets on the loopback interface (the launcher's store, gloo's
  and NCCL's bootstrap): nothing of it listens on the network of a shared server.

`tuitune train --dry-run --json` prints `LaunchPlan.to_dict()`. Light: standard library at import.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuitune.core.errors import UserError
from tuitune.core.gpu_choice import AUTO, GpuChoice, choose_gpus
from tuitune.core.recipe import Recipe
from tuitune.core.units import format_bytes

WORKER = "tuitune.core.engine.worker"
DISTRIBUTED = "tuitune.core.engine.distributed"
LOOPBACK_STORE_ENV = "TUITUNE_LOOPBACK_STORE"  # read by engine.distributed


@dataclass(frozen=True)
class Nodes:
    """This machine's place in a job over several machines (nnodes 1: a single-machine job)."""

    nnodes: int = 1
    node_rank: int = 0
    main_address: str | None = None
    main_port: int | None = None

    @property
    def multi(self) -> bool:
        return self.nnodes > 1

    def check(self) -> None:
        if self.nnodes < 1:
            raise UserError(f"--nnodes {self.nnodes}: must be 1 or more")
        if not 0 <= self.node_rank < self.nnodes:
            raise UserError(f"--node-rank {self.node_rank}: must be 0..{self.nnodes - 1} with --nnodes {self.nnodes}")
        if self.multi and (not self.main_address or not self.main_port):
            raise UserError(f"--nnodes {self.nnodes} needs --main-address HOST and --main-port PORT",
                            "the address and a free port of the machine with --node-rank 0, the same on every machine")
        if self.main_port is not None and not 1 <= self.main_port <= 65535:
            raise UserError(f"--main-port {self.main_port}: must be 1..65535")


@dataclass
class LaunchPlan:
    run_path: Path
    gpus: list[int]  # as `tuitune hw` numbers them; [] when no GPU was found (the CPU trains)
    nproc: int  # processes on this machine
    env: dict[str, str]  # set in the trainer's environment on top of this one's
    command: list[str]
    estimate_bytes: int | None  # training peak per GPU (per process on the CPU), from the estimator
    warnings: list[str] = field(default_factory=list)
    reason: str = ""  # how auto chose, in one sentence
    nodes: Nodes = field(default_factory=Nodes)
    physical: list[int] = field(default_factory=list)  # the same GPUs in PCI bus order (CUDA_VISIBLE_DEVICES)

    @property
    def log_path(self) -> Path:
        """train.log, or train.node-R.log for each machine of a job over several."""
        return self.run_path / (f"train.node-{self.nodes.node_rank}.log" if self.nodes.multi else "train.log")

    @property
    def world_size(self) -> int:
        return self.nproc * self.nodes.nnodes

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpus": list(self.gpus),
            "nproc": self.nproc,
            "env": {"CUDA_VISIBLE_DEVICES": self.env.get("CUDA_VISIBLE_DEVICES"),
                    "CUDA_DEVICE_ORDER": self.env.get("CUDA_DEVICE_ORDER"), **self.env},
            "command": list(self.command),
            "estimate_bytes": self.estimate_bytes,
            "warnings": list(self.warnings),
            "reason": self.reason,
            "run": str(self.run_path),
            "log": str(self.log_path),
            "nnodes": self.nodes.nnodes,
            "node_rank": self.nodes.node_rank,
            "world_size": self.world_size,
        }


def trainer_command(run_path: Path, *, resume: bool, nproc: int, nodes: Nodes = Nodes(), port: int | None = None) -> list[str]:
    """The worker module, under accelerate's launcher for several processes or machines."""
    worker_args = [str(run_path)] + (["--resume"] if resume else [])
    if nproc <= 1 and not nodes.multi:
        return [sys.executable, "-m", WORKER, *worker_args]
    # --multi_gpu makes accelerate start torchrun with nproc workers per machine; without CUDA the
    # workers use the gloo backend on the CPU (which is how the tests run it). --num_processes
    # counts the processes of every machine.
    where = (
        ["--num_machines", str(nodes.nnodes), "--machine_rank", str(nodes.node_rank),
         "--main_process_ip", str(nodes.main_address), "--main_process_port", str(nodes.main_port)]
        if nodes.multi
        else ["--num_machines", "1", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port or free_port())]
    )
    return [
        sys.executable, "-m", DISTRIBUTED,
        "--multi_gpu", "--num_processes", str(nproc * nodes.nnodes), *where,
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", WORKER, *worker_args,
    ]  # fmt: skip


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loopback_interface() -> str:
    """The name of the interface holding 127.0.0.1 ("lo" on Linux)."""
    try:
        import psutil

        for name, addresses in psutil.net_if_addrs().items():
            if any(a.address == "127.0.0.1" for a in addresses):
                return name
    except Exception:  # noqa: BLE001 - psutil missing or no permission: the usual name
        pass
    return "lo"


def _estimator(recipe: Recipe, warnings: list[str]) -> Any:
    """need_for(n, device, bf16) -> training peak bytes per process, or None without a model spec."""
    from tuitune.core.memory import estimate
    from tuitune.core.models.spec import model_spec

    try:
        spec = model_spec(recipe.model_path)
    except Exception as e:  # noqa: BLE001 - an unknown model fails later, with its own message
        message = e.message if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
        warnings.append(f"no memory estimate for {recipe.model.name_or_path} ({message}): GPU memory is not checked")
        return lambda n, device="cuda", bf16=True: None

    def need_for(n: int, device: str = "cuda", bf16: bool = True) -> int:
        return estimate(spec, recipe, n_gpus=n, device=device, bf16=bf16).train_peak_bytes

    need_for.spec = spec  # type: ignore[attr-defined]
    return need_for


def plan_launch(
    recipe: Recipe,
    run_path: str | Path,
    *,
    gpus: str | list[int] | None = None,
    nproc: int | None = None,
    force: bool = False,
    nodes: Nodes = Nodes(),
    resume: bool = False,
    gpu_reading: Any = None,
) -> LaunchPlan:
    """The launch of `recipe` into `run_path` (see the module docstring). UserError for a wrong GPU
    index, a process count that does not match the GPUs, or a run that does not fit (without force)."""
    nodes.check()
    if nproc is not None and nproc < 1:
        raise UserError(f"--nproc {nproc}: must be at least 1")
    request = gpus if gpus is not None else recipe.train.gpus
    if request != AUTO and nproc is not None and nproc != len(request):
        listed = ",".join(map(str, request))
        raise UserError(f"--nproc {nproc} but {len(request)} GPU(s) chosen ({listed}): one process per GPU",
                        f"leave --nproc out, or choose {nproc} GPUs (--gpus auto --nproc {nproc})")
    if gpu_reading is None:
        from tuitune.core.hardware import select_gpu_probe

        gpu_reading = select_gpu_probe().read()
    warnings = list(gpu_reading.problems)
    need_for = _estimator(recipe, warnings)
    n_nodes = nodes.nnodes
    bf16 = all(g.bf16 is not False for g in gpu_reading.gpus)
    choice = choose_gpus(
        gpu_reading.gpus, request, count=nproc,
        need_for=lambda n: need_for(n * n_nodes, "cuda", bf16),
        grow=recipe.distributed.strategy == "fsdp",
        flag="--gpus" if gpus is not None else "train.gpus",
    )  # fmt: skip
    warnings += choice.warnings
    if choice.gpus:
        count = len(choice.gpus)
        need = need_for(count * n_nodes, "cuda", choice.bf16)
        _check_memory(choice, need, recipe, need_for, count * n_nodes, force, warnings, gpu_reading.gpus)
    else:
        count = nproc or 1
        need = need_for(count * n_nodes, "cpu", False)
    env = dict(choice.env())
    if count > 1 and not nodes.multi:
        lo = loopback_interface()
        env.update({"GLOO_SOCKET_IFNAME": lo, "NCCL_SOCKET_IFNAME": lo, LOOPBACK_STORE_ENV: "1"})
    path = Path(run_path).expanduser().absolute()
    return LaunchPlan(
        run_path=path,
        gpus=choice.indices,
        nproc=count,
        env=env,
        command=trainer_command(path, resume=resume, nproc=count, nodes=nodes),
        estimate_bytes=need,
        warnings=warnings,
        reason=choice.reason if choice.auto and choice.gpus else "",
        nodes=nodes,
        physical=choice.physical,
    )


def _check_memory(choice: GpuChoice, need: int | None, recipe: Recipe, need_for: Any, world: int, force: bool,
                  warnings: list[str], gpus: list[Any]) -> None:
    """Refuse (or, forced, warn about) chosen GPUs whose free memory is below the estimate."""
    short = choice.short_of_memory(need)
    if not short or need is None:
        tight = [g for g in choice.gpus if need and g.free_bytes and need > 0.9 * g.free_bytes]
        for g in tight:
            warnings.append(f"GPU {g.index} is tight: the run needs about {format_bytes(need)} of its "
                            f"{format_bytes(g.free_bytes)} free")
        return
    names = ", ".join(f"GPU {g.index} has {format_bytes(g.free_bytes)} free" for g in short)
    problem = f"the run needs about {format_bytes(need)} per GPU (estimate) but {names}"
    if force:
        warnings.append(problem + " (started anyway: --force)")
        return
    hint = "; ".join(_what_would_fit(choice, need, recipe, need_for, world, gpus))
    raise UserError(problem, hint + "; or --force to start anyway")


def _what_would_fit(choice: GpuChoice, need: int, recipe: Recipe, need_for: Any, world: int, gpus: list[Any]) -> list[str]:
    """Other GPUs with room, and the planner's changes that fit the chosen GPUs."""
    out: list[str] = []
    others = [g for g in gpus if g.free_bytes is not None and g.free_bytes >= need]
    if others and len(others) >= len(choice.gpus):
        pick = ",".join(str(g.index) for g in others[: len(choice.gpus)])
        out.append(f"GPUs with room: {', '.join(str(g.index) for g in others)} (--gpus {pick})")
    spec = getattr(need_for, "spec", None)
    available = choice.min_free_bytes
    if spec is not None and available:
        from tuitune.core.memory.fit_plan import plan

        fitting = [s for s in plan(spec, recipe, available, bf16=choice.bf16, n_gpus=world).suggestions
                   if s.verdict != "does not fit"]
        out += [f"{s.text} ({format_bytes(s.total_bytes)})" for s in fitting[:2]]
    return out or ["choose GPUs with more free memory (tuitune hw)"]
