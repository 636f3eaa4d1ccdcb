"""An sbatch script that runs `tuitune train` over several machines of a Slurm cluster.

Slurm starts one task per machine (srun --ntasks-per-node=1); each runs the same `tuitune train
RECIPE --nnodes N --node-rank $SLURM_NODEID --main-address FIRST_NODE --main-port PORT --gpus ...`,
so accelerate's launcher starts one process per GPU there and the machine with rank 0 prepares the
run folder. The runs folder must be on a filesystem every machine shares (as the working folder
usually is on a cluster): that is where the other machines find the recipe, where every machine
writes its log (train.node-R.log) and where `tuitune --run PATH` follows the run from a login node.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tuitune.core.errors import UserError

TIME_RE = re.compile(r"^(\d+-)?\d{1,3}:[0-5]\d:[0-5]\d$")
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class SlurmJob:
    recipe: Path  # absolute
    name: str  # the run's name (runs_dir/NAME)
    runs_dir: Path  # absolute
    nodes: int
    gpus_per_node: int
    partition: str | None = None
    time: str | None = None  # HH:MM:SS or D-HH:MM:SS
    port: int = DEFAULT_PORT
    cpus_per_task: int | None = None
    overrides: tuple[str, ...] = ()

    def check(self) -> None:
        if self.nodes < 1:
            raise UserError(f"--nodes {self.nodes}: must be 1 or more")
        if self.gpus_per_node < 1:
            raise UserError(f"--gpus-per-node {self.gpus_per_node}: must be 1 or more")
        if self.time is not None and not TIME_RE.match(self.time):
            raise UserError(f"--time {self.time!r} is not a Slurm time limit", "HH:MM:SS, e.g. 12:00:00, or D-HH:MM:SS")
        if self.partition is not None and not re.fullmatch(r"[A-Za-z0-9_.,-]+", self.partition):
            raise UserError(f"--partition {self.partition!r} is not a partition name", "letters, digits, - _ . (see sinfo -s)")
        if not 1 <= self.port <= 65535:
            raise UserError(f"--main-port {self.port}: must be 1..65535")


def sbatch_script(job: SlurmJob, python: str | None = None, workdir: str | Path | None = None) -> str:
    """The script's text; `python` defaults to this interpreter, `workdir` to the current folder."""
    job.check()
    python = python or sys.executable
    workdir = Path(workdir or Path.cwd()).absolute()
    run = job.runs_dir / job.name
    gpus = ",".join(str(i) for i in range(job.gpus_per_node))
    sbatch = [
        f"#SBATCH --job-name=tuitune-{job.name}",
        f"#SBATCH --nodes={job.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={job.gpus_per_node}",
        # Slurm opens the output file before the script runs: next to the job, not in the run folder
        # (node 0 creates that one, and refuses a folder that holds anything but a recipe).
        f"#SBATCH --output={workdir}/tuitune-{job.name}-%j.out",
    ]
    if job.cpus_per_task:
        sbatch.append(f"#SBATCH --cpus-per-task={job.cpus_per_task}")
    if job.partition:
        sbatch.append(f"#SBATCH --partition={job.partition}")
    if job.time:
        sbatch.append(f"#SBATCH --time={job.time}")
    sets = " ".join(f"--set {shlex.quote(o)}" for o in job.overrides)
    train = (
        f"{shlex.quote(python)} -m tuitune train {shlex.quote(str(job.recipe))}"
        + (f" {sets}" if sets else "")
        + f" --run-dir {shlex.quote(str(run))}"
        + ' --nnodes "$SLURM_NNODES" --node-rank "$SLURM_NODEID"'
        + ' --main-address "$MAIN_ADDRESS" --main-port "$MAIN_PORT"'
        + f" --gpus {gpus}"
    )
    lines = [
        "#!/bin/bash",
        f"# tuitune: {job.nodes} machine(s) x {job.gpus_per_node} GPU(s) training {job.recipe.name} into {run}",
        "# Submit: sbatch THIS_FILE.   Follow: tuitune --run " + shlex.quote(str(run)) + "   (any machine that sees the folder)",
        *sbatch,
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        "# The first machine of the allocation is the main one (node rank 0).",
        'MAIN_ADDRESS=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)',  # sed reads every line: no SIGPIPE under pipefail
        f"MAIN_PORT={job.port}",
        "export MAIN_ADDRESS MAIN_PORT",
        "# One task per machine; $SLURM_NODEID is expanded by each task, on its own machine.",
        "# Slurm's CUDA_VISIBLE_DEVICES numbers the allocated GPUs 0..G-1 for each task.",
        f"srun --nodes={job.nodes} --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c {shlex.quote('exec ' + train)}",
        "",
    ]
    return "\n".join(lines)
