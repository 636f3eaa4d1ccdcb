"""`tuitune slurm`: the sbatch script parses (bash -n), says what it should, and when srun runs it
(a stand-in srun/scontrol that start each machine's task here, behind the real command line) every
machine's `tuitune train` gets its rank, the main machine's address and its GPUs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from engine_support import tuitune

RECIPE = """name = "big-run"
[model]
name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
[train]
max_steps = 10
"""

# srun OPTIONS bash -c CMD: run CMD once per machine, as Slurm would, with that machine's variables;
# the test appends --dry-run --json so each machine prints its launch plan instead of training.
FAKE_SRUN = """#!/bin/bash
nodes=1
while [ "$1" != "bash" ]; do
  case "$1" in --nodes=*) nodes="${1#--nodes=}";; esac
  shift
done
shift 2  # bash -c
for ((i = 0; i < nodes; i++)); do
  SLURM_NODEID=$i SLURM_NNODES=$nodes bash -c "$1 --dry-run --json" > "$OUT_DIR/node-$i.json" || exit $?
done
"""
FAKE_SCONTROL = """#!/bin/bash
[ "$1 $2" = "show hostnames" ] && [ "$3" = "gpu-[07-08]" ] && printf 'gpu-07\\ngpu-08\\n'
"""


def write(path: Path, text: str, executable: bool = False) -> Path:
    path.write_text(text)
    if executable:
        path.chmod(0o755)
    return path


def slurm(tmp_path: Path, *args: str):
    recipe = write(tmp_path / "big.toml", RECIPE)
    return tuitune("slurm", str(recipe), *args, cwd=tmp_path)


def test_the_script_parses_and_says_what_slurm_needs(tmp_path):
    res = slurm(tmp_path, "--nodes", "2", "--gpus-per-node", "8", "--partition", "a100", "--time", "12:00:00",
                "--set", "train.epochs=1")
    assert res.returncode == 0, res.stderr
    script = write(tmp_path / "job.sh", res.stdout)
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = res.stdout
    assert text.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=8",
                 "#SBATCH --partition=a100", "#SBATCH --time=12:00:00", "#SBATCH --job-name=tuitune-big-run",
                 f"#SBATCH --output={tmp_path}/tuitune-big-run-%j.out", f"cd {tmp_path}"):
        assert line in text.splitlines(), line
    assert 'MAIN_ADDRESS=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)' in text
    srun = next(line for line in text.splitlines() if line.startswith("srun "))
    assert srun.startswith("srun --nodes=2 --ntasks-per-node=1 ")
    for part in ("-m tuitune train", str(tmp_path / "big.toml"), "--set train.epochs=1", '--node-rank "$SLURM_NODEID"',
                 '--nnodes "$SLURM_NNODES"', '--main-address "$MAIN_ADDRESS"', "--gpus 0,1,2,3,4,5,6,7",
                 f"--run-dir {tmp_path / 'runs' / 'big-run'}"):
        assert part in srun, part
    # All SBATCH lines come before the first command, or sbatch ignores them.
    lines = text.splitlines()
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert max(i for i, line in enumerate(lines) if line.startswith("#SBATCH")) < first_command


def test_srun_starts_one_train_per_machine_with_its_rank(tmp_path):
    res = slurm(tmp_path, "--nodes", "2", "--gpus-per-node", "2", "--main-port", "29411")
    assert res.returncode == 0, res.stderr
    script = write(tmp_path / "job.sh", res.stdout)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write(bin_dir / "srun", FAKE_SRUN, executable=True)
    write(bin_dir / "scontrol", FAKE_SCONTROL, executable=True)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT_DIR": str(out),
           "SLURM_JOB_NODELIST": "gpu-[07-08]", "TUITUNE_FAKE_GPU": "2xH100",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for rank in (0, 1):
        plan = json.loads((out / f"node-{rank}.json").read_text())
        assert (plan["nnodes"], plan["node_rank"], plan["world_size"]) == (2, rank, 4)
        assert plan["gpus"] == [0, 1] and plan["env"]["CUDA_VISIBLE_DEVICES"] == "0,1"
        command = " ".join(plan["command"])
        want = f"--num_processes 4 --num_machines 2 --machine_rank {rank} --main_process_ip gpu-07 --main_process_port 29411"
        assert want in command, command
        assert plan["log"].endswith(f"big-run/train.node-{rank}.log")


def test_wrong_options_are_one_line(tmp_path):
    res = slurm(tmp_path, "--nodes", "2", "--gpus-per-node", "8", "--time", "12h")
    assert res.returncode == 2 and "--time '12h' is not a Slurm time limit" in res.stderr
    res = slurm(tmp_path, "--nodes", "0", "--gpus-per-node", "8")
    assert res.returncode == 2 and "Traceback" not in res.stderr
