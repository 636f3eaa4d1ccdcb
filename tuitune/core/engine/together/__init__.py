"""Several LoRA recipes trained together on one copy of their base model (`tuitune train A B --together`).

One process loads the base once and gives each recipe a named peft adapter (`job0`, `job1`, ...).
Each recipe stays a run of its own: its folder, events, status, checkpoints, optimizer and
scheduler, written by the same engine code as a run trained alone (`engine.session`), so every
command and screen that reads a run works on it unchanged. status.json names the group.

- plan.py      what may train together (same base, dtype, quantization; LoRA/QLoRA), the schedule,
               the group's run folders (light: the CLI and the TUI call it)
- turns.py     one job at a time: the turn passes after a step (round-robin) or when every job has
               handed in its batch (fused)
- model.py     the shared base with one adapter per job; each job's RNG, gradients and active adapter
- routing.py   a LoRA forward that sends each row of a fused batch through its own job's adapter
- fused.py     one forward and backward for every job's batch
- trainer.py   the job's Trainer (saves its own adapter; hands its batch to the fused step)
- session.py   the group process: own every run, train each in its own thread, report each outcome
- launch.py    start (or resume) a group's trainer process;  worker.py: its entry point
- measure.py   `estimate --measure --together`: the real memory of two steps of every job together
"""
