"""The training engine: from a frozen recipe in a run directory to a trained adapter or model.

Light modules (safe to import from the TUI and the CLI): `prepare` (freeze a recipe, check a run
folder), `launch` (start the trainer process, detached or followed), `report` (events + status).
Modules used only inside the trainer process: `session`, `build`, `collate`, `arguments`,
`callbacks`, `trainer`, `resources`, `failures`, `measure`, `worker` (torch and transformers at
import in `callbacks`, `collate` and `trainer`; inside functions elsewhere).
"""
