#!/usr/bin/env python3
"""Regenerate screenshots/*.svg and *.png: every screen at 100x30, plus 80x24, 200x60 and Chinese.

Each picture is taken by driving the real app headless (App.run_test) and exporting the screen as SVG
(App.export_screenshot). PNGs are rendered from the SVGs with librsvg's `rsvg-convert`.

Needs (Debian): librsvg2-bin (rsvg-convert), fonts-dejavu-core (box drawing), fonts-noto-cjk (Chinese):
    apt-get install -y --no-install-recommends librsvg2-bin fonts-dejavu-core fonts-noto-cjk
CI does not run this; it is for the README and for looking at the screens. The app sees one faked
24 GB GPU (TUITUNE_FAKE_GPU=24GB, core's fake GpuProbe) so the pictures do not depend on the machine.

    PYTHONPATH=. python scripts/screenshots.py [--only NAME ...] [--svg-only]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "screenshots"


@dataclass
class Shot:
    name: str
    mode: str
    size: tuple[int, int] = (100, 30)
    lang: str = "en"
    steps: list[Callable[..., Awaitable[None]]] = field(default_factory=list)
    app_kwargs: Callable[[], dict] | None = None  # extra TuituneApp arguments, made just before the shot
    runs: bool = False  # in a folder holding real tiny runs (demo_runs()), not the repository's runs/
    after: Callable[..., Awaitable[None]] | None = None  # once the picture is taken (end what it started)


# ---------------------------------------------------------------------------- steps


async def load_quickstart(pilot) -> None:
    pilot.app.screen.load_file(Path("recipes/quickstart.toml"))
    await pilot.pause()


async def edit_rank(pilot) -> None:
    editor = pilot.app.screen.query_one("#field-lora-r").editor
    editor.focus()
    await pilot.press("end", "ctrl+u", "1", "6")


async def bad_rank(pilot) -> None:
    editor = pilot.app.screen.query_one("#field-lora-r").editor
    editor.focus()
    await pilot.press("end", "ctrl+u", "0")


async def focus_method(pilot) -> None:
    pilot.app.screen.query_one("#field-method-type").editor.focus()


async def open_picker(pilot) -> None:
    await pilot.press("ctrl+o")
    await pilot.pause(0.3)


async def llama_qlora(pilot) -> None:
    """Hardware: will Llama-3-8B with QLoRA fit the (faked) 24 GB card? Typed as a user would."""
    await wait_settled(pilot)
    pilot.app.screen.query_one("#field-model-name_or_path").editor.focus()
    await pilot.press("end", "ctrl+u", *"llama-3-8b")
    method = pilot.app.screen.query_one("#field-method-type").editor
    method.focus()
    await pilot.press("enter", "down", "enter")  # lora -> qlora, the next choice
    await pilot.pause(0.5)


async def choose_gpus(pilot) -> None:
    """Hardware on a shared 4-GPU machine (GPU 1 busy with another user's job): mark GPUs 0 and 2."""
    from tuitune.core.hardware import FakeGpuProbe

    pilot.app.gpu_probe = FakeGpuProbe("4xA100,busy=1:38GB")
    await wait_settled(pilot)
    screen = pilot.app.screen
    # Read the (faked) machine again; a live refresh of the first reading still in flight on a busy
    # machine can bring back the one 24 GB GPU, so read again until the four stay.
    for _ in range(10):
        screen._probe()
        await wait_for(pilot, lambda: screen.report is not None and len(screen.report.gpus) == 4, limit=30)
        await pilot.pause(1.0)
        if len(screen.report.gpus) == 4:
            break
    await wait_settled(pilot)
    pilot.app.screen.query_one("#machine").focus()
    await pilot.press("space", "down", "down", "space")
    await pilot.pause(0.5)


async def open_third_row(pilot) -> None:
    """Dataset: the third row as the model is trained on it."""
    await wait_settled(pilot)
    await pilot.press("down", "down", "enter")
    for _ in range(400):
        if pilot.app.screen.query_one("#masked").preview is not None:
            break
        await pilot.pause(0.05)


async def type_data_path(pilot, path: str) -> None:
    editor = pilot.app.screen.field("data.path").editor
    editor.focus()
    await pilot.press("end", "ctrl+u", *path, "enter")
    await pilot.pause(0.6)
    await wait_settled(pilot)


async def llamafactory_tools(pilot) -> None:
    """Dataset: a LLaMA-Factory folder, its entry with tool calls picked from the list."""
    await type_data_path(pilot, "tests/data/llamafactory")
    select = pilot.app.screen.query_one("#ds-entries Select")
    select.focus()
    await pilot.press("enter", "home", "down", "down", "enter")  # prompt, qa, weather_tools
    await pilot.pause(0.3)
    await wait_settled(pilot)


async def open_first_row_end(pilot) -> None:
    """The first row as trained, scrolled to its end: the tool call (trained) and the tool's answer."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: pilot.app.screen.query_one("#masked").preview is not None)
    await pilot.pause(0.2)
    pilot.app.screen.query_one("#row-scroll").scroll_end(animate=False)


async def real_world_problems(pilot) -> None:
    """Dataset: wrong types, a multimodal row and a row far longer than cutoff_len, in the Problems tab."""
    await type_data_path(pilot, "tests/data/mixed_problems.jsonl")
    await pilot.press("4")


async def wait_for(pilot, condition, limit: float = 120.0) -> None:
    for _ in range(int(limit / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)


async def diff_runs(pilot) -> None:
    """Runs: alpha marked, then beta: their recipes' differences."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.is_settled and screen.table.row_count)
    await pilot.press("down", "m", "up", "m")


async def chat_side_by_side(pilot) -> None:
    """Chat: one prompt answered by the base and the tuned run, greedy, on one seed."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.listed)
    await pilot.press("enter")  # load the run offered in the field
    await wait_for(pilot, lambda: screen.session is not None)
    screen.query_one("#chat-settings").set_values(temperature=0, max_new_tokens=32, seed=1)
    await pilot.press("ctrl+t", *"Who made you?", "enter")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.generating)


async def chat_once(pilot) -> None:
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.listed)
    await pilot.press("enter")
    await wait_for(pilot, lambda: screen.session is not None)
    screen.query_one("#chat-settings").set_values(temperature=0, max_new_tokens=32, seed=1)
    await pilot.press(*"Write a short poem about the sea.", "enter")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.generating)


async def evaluate_run(pilot) -> None:
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.listed)
    await pilot.press("ctrl+r")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.evaluating, limit=300)


async def benchmark_run(pilot) -> None:
    """Benchmarks through lm-eval on tasks over the facts the demo runs learned (task YAMLs by path)."""
    from benchmark_tasks import write_fact_tasks

    screen = pilot.app.screen
    write_fact_tasks(Path("tasks"))
    screen.query_one("#bench-tasks").value = "tasks/facts_mc.yaml, tasks/facts_gen.yaml"
    screen.query_one("#bench-limit").value = ""
    await pilot.press("ctrl+b")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.evaluating, limit=300)


async def merge_run(pilot) -> None:
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.is_settled and screen.checked is not None)
    shutil.rmtree("exports", ignore_errors=True)
    await pilot.press("ctrl+s")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.exporting, limit=300)


async def gguf_run(pilot) -> None:
    """A real GGUF export of the tiny run (q8_0 + Modelfile), ending with its parity check."""
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.is_settled and screen.checked is not None)
    screen.query_one("#export-kind").value = "gguf"
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: screen.is_settled and screen.checked is not None)
    shutil.rmtree("exports", ignore_errors=True)
    await pilot.press("ctrl+s")
    await pilot.pause(0.2)
    await wait_for(pilot, lambda: not screen.exporting, limit=600)


async def open_palette(pilot) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause(0.5)


FINISHED_RUN = REPO / "tests" / "data" / "runs" / "finished-demo"  # a recorded tiny run


def _run_folder(name: str, upto_step: int | None) -> Path:
    """A copy of the recorded run in a temporary runs folder, cut after `upto_step` (still training)."""
    import atexit
    import json
    import tempfile

    tmp = tempfile.mkdtemp(prefix="tuitune-shots-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    runs = Path(tmp) / "runs"
    run = runs / name
    shutil.copytree(FINISHED_RUN, run)
    if upto_step is not None:
        lines = []
        for line in (FINISHED_RUN / "events.jsonl").read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event["type"] in ("step", "eval", "checkpoint") and event["step"] > upto_step:
                break
            lines.append(line)
        (run / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        status = json.loads((run / "status.json").read_text(encoding="utf-8"))
        status.update(status="training", step=upto_step, finished=None)
        (run / "status.json").write_text(json.dumps(status), encoding="utf-8")
    return runs


_held_locks: list = []


def run_in_progress() -> dict:
    """A run that a trainer holds (this process takes its lock), 70 of 120 steps done."""
    from tuitune.core.runs import RunDirectory

    runs = _run_folder("quickstart", upto_step=70)
    _held_locks.append(RunDirectory(runs / "quickstart").acquire_lock())
    return {"runs_dir": runs, "run": "quickstart"}


def finished_run() -> dict:
    return {"runs_dir": _run_folder("finished-demo", upto_step=None), "run": "finished-demo"}


def group_in_progress() -> dict:
    """Three runs trained together (tests/group_runs.py: written events, made-up numbers), 70 steps in;
    this process holds their locks as the group's trainer would."""
    import tempfile

    sys.path.insert(0, str(REPO / "tests"))
    from group_runs import write_group

    runs = Path(tempfile.mkdtemp(prefix="tuitune-shots-")) / "runs"
    _held_locks.extend(run.acquire_lock() for run in write_group(runs, upto=70))
    return {"runs_dir": runs, "run": "qa-r8"}


async def pick_two_recipes(pilot) -> None:
    """Train: g, then the quickstart and its Chinese twin picked in the train-together dialog."""
    await pilot.press("g")
    await pilot.pause(0.3)
    await pilot.press("down", "down", "space", "down", "space")
    await pilot.pause(0.3)


# ---------------------------------------------------------------------------- a model from a hub

HUB_MODEL = "tuitune-test/tiny-llama"  # the tests' 15 MB model, served by tests/hub_server.py
_hub: list = []  # the local hub of these pictures, started once


def local_hub():
    """The tests' local hub (127.0.0.1) serving HUB_MODEL at 2.5 MB/s, with an empty hub cache for each
    picture; it holds the weights part way (at 12 MB) so a picture catches the download in progress."""
    import atexit
    import tempfile

    sys.path[:0] = [str(REPO / "tests")]
    from hub_server import FakeHub, build_hub_model

    if not _hub:
        base = Path(tempfile.gettempdir()) / "tuitune-screenshots"
        model = base / "hub-model"
        if not (model / "config.json").exists():
            build_hub_model(model)
        hub = FakeHub().__enter__()
        hub.add(HUB_MODEL, model)
        hub.rate = 2.5e6  # bytes/s: speed and ETA as on a modest link
        atexit.register(hub.__exit__)
        _hub.append(hub)
    hub = _hub[0]
    home = Path(tempfile.mkdtemp(prefix="tuitune-shots-hf-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    hub.stall_after("model.safetensors", 12_000_000)
    return hub, home


_restore: list[Callable[[], None]] = []  # undoes the pointing at the local hub once a picture is taken


def point_at_hub(hub, home: Path, this_process: bool) -> None:
    """The environment (for the processes the app starts) and, with `this_process`, this process's
    huggingface_hub settings (read at import) aimed at the local hub; the picture's `after` undoes it."""
    from hub_server import client_constants
    from huggingface_hub import constants

    saved_env = {k: os.environ.get(k) for k in [*hub.env(home), "HF_TOKEN"]}
    os.environ.update(hub.env(home))
    os.environ.pop("HF_TOKEN", None)
    names = client_constants(hub, home) if this_process else {}
    saved = {name: getattr(constants, name) for name in names}
    for name, value in names.items():
        setattr(constants, name, value)

    def restore() -> None:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for name, value in saved.items():
            setattr(constants, name, value)

    _restore.append(restore)


def downloading_run() -> dict:
    """Train: a real trainer (started by `t`) downloading its model from the local hub."""
    hub, home = local_hub()
    point_at_hub(hub, home, this_process=False)
    return {"runs_dir": Path(home) / "runs"}


async def start_download_training(pilot) -> None:
    """The quickstart recipe on the hub model, started with `t`; wait for the bytes and the estimate."""
    from tuitune.core.recipe import load_recipe

    path = Path("recipes/quickstart.toml")
    recipe = load_recipe(path)[0]
    recipe.model.name_or_path = HUB_MODEL
    recipe.name = "tiny-from-hub"
    recipe.train.max_steps = 3
    pilot.app.set_recipe(recipe, path)
    await pilot.press("t")
    screen = pilot.app.screen
    bar = screen.query_one("#progress")
    await wait_for(pilot, lambda: (bar.progress or 0) > 11 * 2**20 and "estimate" in str(screen.query_one("#stats").render()))


async def stop_download_training(pilot) -> None:
    from tuitune.core.runs import RunDirectory

    RunDirectory(Path(pilot.app.runs_dir) / "tiny-from-hub").request_stop()  # it ends at the next chunk
    _hub[0].release()
    await wait_for(pilot, lambda: not pilot.app.follower.attached.live)
    _restore.pop()()


def online_here() -> dict:
    """Hardware: this process's huggingface_hub talks to the local hub."""
    hub, home = local_hub()
    point_at_hub(hub, home, this_process=True)
    return {}


async def pull_hub_model(pilot) -> None:
    """Hardware: the hub model typed in, its download size shown, ctrl+l pulling it."""
    await wait_settled(pilot)
    pilot.app.screen.query_one("#field-model-name_or_path").editor.focus()
    await pilot.press("end", "ctrl+u", *HUB_MODEL)
    status = pilot.app.screen.query_one("#hub-status")
    await wait_for(pilot, lambda: status.name_shown == HUB_MODEL and pilot.app.screen.is_settled)
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: (status.query_one("ProgressBar").progress or 0) > 11 * 2**20)
    await pilot.pause(0.6)


async def stop_pull(pilot) -> None:
    status = pilot.app.screen.query_one("#hub-status")
    status.cancel_pull()
    _hub[0].release()
    await wait_for(pilot, lambda: not status.pulling)
    _restore.pop()()


SHOTS = [
    Shot("hardware", "hardware", steps=[llama_qlora]),
    Shot("dataset", "dataset"),
    Shot("dataset-row", "dataset", steps=[open_third_row]),
    Shot("dataset-tools", "dataset", steps=[llamafactory_tools]),
    Shot("dataset-tool-row", "dataset", steps=[llamafactory_tools, open_first_row_end]),
    Shot("dataset-problems", "dataset", steps=[real_world_problems]),
    Shot("recipe", "recipe", steps=[load_quickstart, edit_rank]),
    Shot("train", "train", app_kwargs=run_in_progress),
    Shot("train-done", "train", app_kwargs=finished_run),
    Shot("train-80x24", "train", size=(80, 24), app_kwargs=run_in_progress),
    Shot("train-new", "train", app_kwargs=lambda: {"first_recipe": Path("recipes/quickstart.toml")}),  # as `tuitune` opens
    Shot("train-download", "train", app_kwargs=downloading_run, steps=[start_download_training],
         after=stop_download_training),
    Shot("hardware-download", "hardware", app_kwargs=online_here, steps=[pull_hub_model], after=stop_pull),
    Shot("train-group", "train", app_kwargs=group_in_progress),
    Shot("train-group-80x24", "train", size=(80, 24), app_kwargs=group_in_progress),
    Shot("train-together", "train", steps=[pick_two_recipes]),
    Shot("runs", "runs", runs=True, steps=[diff_runs]),
    Shot("chat", "chat", runs=True, steps=[chat_side_by_side]),
    Shot("chat-eval", "chat", runs=True, steps=[evaluate_run, benchmark_run]),
    Shot("chat-eval-80x24", "chat", size=(80, 24), runs=True, steps=[evaluate_run, benchmark_run]),
    Shot("export", "export", runs=True, steps=[merge_run]),
    Shot("export-gguf", "export", runs=True, steps=[gguf_run]),
    Shot("recipe-zh", "recipe", lang="zh", steps=[load_quickstart, focus_method]),
    Shot("recipe-error", "recipe", steps=[load_quickstart, bad_rank]),
    Shot("recipe-open", "recipe", steps=[open_picker]),
    Shot("palette", "hardware", steps=[open_palette]),
    Shot("recipe-80x24", "recipe", size=(80, 24), steps=[load_quickstart, edit_rank]),
    Shot("hardware-80x24", "hardware", size=(80, 24), steps=[llama_qlora]),
    Shot("hardware-gpus", "hardware", steps=[choose_gpus]),
    Shot("hardware-gpus-80x24", "hardware", size=(80, 24), steps=[choose_gpus]),
    Shot("dataset-80x24", "dataset", size=(80, 24)),
    Shot("dataset-tools-80x24", "dataset", size=(80, 24), steps=[llamafactory_tools]),
    Shot("runs-80x24", "runs", size=(80, 24), runs=True, steps=[diff_runs]),
    Shot("chat-80x24", "chat", size=(80, 24), runs=True, steps=[chat_once]),
    Shot("export-80x24", "export", size=(80, 24), runs=True),
    Shot("export-gguf-80x24", "export", size=(80, 24), runs=True, steps=[gguf_run]),
    Shot("recipe-200x60", "recipe", size=(200, 60), steps=[load_quickstart, edit_rank]),
]


# ---------------------------------------------------------------------------- taking pictures


async def wait_settled(pilot) -> None:
    """Screens with background work (Hardware, Dataset) say when it is done with `is_settled`."""
    for _ in range(600):
        if getattr(pilot.app.screen, "is_settled", True):
            break
        await pilot.pause(0.05)


async def settle(pilot) -> None:
    await wait_settled(pilot)
    app = pilot.app
    for _ in range(200):  # the memory panel answers after its debounce
        memory, form = app.screen.query("#memory"), app.screen.query("#recipe-form")
        if not memory or (memory.first().last_requested == form.first().recipe and memory.first().is_current):
            break
        await pilot.pause(0.05)
    # Not the workers waiting on an open dialog: they finish when the user answers.
    # Nor the ones following a live run or group: they end with the run.
    # Nor a model download in progress (a picture of it is the point).
    busy = [w for w in app.workers
            if not w.group.endswith("-dialog") and w.group not in ("run-tail", "group-tail", "hub-pull")]
    if busy:  # (an empty list would mean "all workers" to wait_for_complete)
        await app.workers.wait_for_complete(busy)
    await pilot.pause(0.2)


def demo_runs() -> Path:
    """Two real runs of the tests' tiny model (trained by `tuitune train`, ~15 s once), in a folder
    of their own so the pictures show `runs/NAME`. As in the snapshots, what differs from machine to
    machine is pinned: times, model name and training figures (pin_for_pictures), the replies
    (script_replies), the evaluation's report and an export's duration (picture_stand_ins)."""
    import tempfile

    sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "tui")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tiny_model import build_tiny_llama
    from trained_runs import pin_for_pictures, trained_runs

    picture_stand_ins()

    class Temp:  # what trained_runs() needs of pytest's tmp_path_factory
        def __init__(self, root: Path) -> None:
            self.root = root

        def getbasetemp(self) -> Path:
            return self.root

    base = Path(tempfile.gettempdir()) / "tuitune-screenshots"
    base.mkdir(exist_ok=True)
    tiny = base / "tiny-llama"
    if not (tiny / "config.json").exists():
        build_tiny_llama(tiny)
    runs = trained_runs(tiny, Temp(base))
    pin_for_pictures(runs)
    for name in ("alpha", "beta"):  # an evaluation from an earlier picture would show up
        shutil.rmtree(runs / name / "eval", ignore_errors=True)
    return runs


def picture_stand_ins() -> None:
    """The model's replies, `tuitune eval`'s report and how long an export took differ per CPU and per
    run: the pictures get fixed ones through the same functions the screens call."""
    from dataclasses import replace

    from trained_runs import pictured_eval_command, script_replies

    from tuitune.core import export
    from tuitune.tui.screens import chat

    script_replies(setattr)
    chat.eval_command = pictured_eval_command
    for name in ("export_adapter", "merge_run"):
        real = getattr(export, name)
        if not getattr(real, "pictured", False):
            def fixed(*args, _real=real, **kwargs):
                return replace(_real(*args, **kwargs), seconds=0.4)

            fixed.pictured = True
            setattr(export, name, fixed)


async def take(shot: Shot) -> str:
    from tuitune.tui.app import TuituneApp

    extra = shot.app_kwargs() if shot.app_kwargs else {}
    if shot.runs:
        os.chdir(demo_runs().parent)  # the app shows runs/NAME, as for a user in their project
    else:
        os.chdir(REPO)
    recipes = REPO / "recipes" if shot.runs else "recipes"
    app = TuituneApp(lang=shot.lang, start_mode=shot.mode, recipes_dir=recipes, blink=False, **extra)
    async with app.run_test(size=shot.size) as pilot:
        await pilot.pause()
        for step in shot.steps:
            await step(pilot)
            await pilot.pause()
        await settle(pilot)
        svg = app.export_screenshot(title=f"tuitune — {shot.name}")
        if shot.after is not None:
            await shot.after(pilot)
        return svg


TEXT = re.compile(r'<text ([^>]*?)x="([\d.]+)" y="([\d.]+)" textLength="([\d.]+)"([^>]*)>([^<]*)</text>')
# Rich lays text out on a grid of 0.61 x 20 px cells and relies on textLength to fit the font to it;
# librsvg ignores textLength. DejaVu Sans Mono advances 0.602 em, so at 12.2 / 0.602 px its glyphs
# land exactly on the grid (box drawing joins up); Noto CJK supplies the Chinese glyphs.
RASTER_FONT = "font-family: DejaVu Sans Mono, Noto Sans Mono CJK SC, monospace;\n        font-size: 20.27px;"


def for_raster(svg: str) -> str:
    """Make Rich's SVG render on the terminal grid in librsvg (the SVG files themselves stay as exported).

    Runs that contain wide (CJK) characters are split into one element per character at its cell,
    because a CJK glyph is narrower than its two cells and the rest of the run would drift left.
    """
    from rich.cells import cell_len

    svg = re.sub(r"font-family: Fira Code, monospace;\s*font-size: 20px;", RASTER_FONT, svg)

    def split(m: re.Match[str]) -> str:
        before, x, y, length, after, content = m.groups()
        text = html.unescape(content)
        if cell_len(text) == len(text):
            return m.group(0)
        width = float(length) / len(text)  # Rich's textLength counts characters, its x counts cells
        out, pos = [], float(x)
        for ch in text:
            cells = cell_len(ch)
            if not ch.isspace():
                nudge = 1.5 if cells == 2 else 0.0  # centre a CJK glyph (20.3 px) in its two cells (24.4 px)
                out.append(f'<text {before}x="{pos + nudge:.1f}" y="{y}"{after}>{html.escape(ch)}</text>')
            pos += width * cells
        return "".join(out)

    return TEXT.sub(split, svg).replace("<svg ", '<svg xml:space="preserve" ', 1)


def to_png(svg_path: Path, png_path: Path) -> None:
    raster = svg_path.with_suffix(".raster.svg")
    raster.write_text(for_raster(svg_path.read_text(encoding="utf-8")), encoding="utf-8")
    try:
        subprocess.run(["rsvg-convert", "--format=png", "-o", str(png_path), str(raster)], check=True)
    finally:
        raster.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="names of the shots to take")
    parser.add_argument("--svg-only", action="store_true", help="skip the PNG conversion")
    args = parser.parse_args()
    if not args.svg_only and shutil.which("rsvg-convert") is None:
        print("rsvg-convert not found: apt-get install librsvg2-bin (or use --svg-only)", file=sys.stderr)
        return 2
    os.chdir(REPO)  # the app shows paths relative to the repository, as a user would see them
    # The same pictures on every machine: one faked 24 GB GPU behind core's GpuProbe interface.
    os.environ.setdefault("TUITUNE_FAKE_GPU", "24GB")
    # and no hub: "in the hub cache" lines say offline wherever they are taken (the two pictures of a
    # download aim at the tests' local hub for their own time).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    OUT.mkdir(exist_ok=True)
    for shot in SHOTS:
        if args.only and shot.name not in args.only:
            continue
        svg = asyncio.run(take(shot))
        os.chdir(REPO)
        svg_path = OUT / f"{shot.name}.svg"
        svg_path.write_text(svg, encoding="utf-8")
        if not args.svg_only:
            to_png(svg_path, svg_path.with_suffix(".png"))
        print(f"{svg_path.relative_to(REPO)}  {shot.size[0]}x{shot.size[1]}  {shot.lang}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
