"""Export: a finished run's adapter, a merged model, a GGUF (+ Ollama Modelfile) or a vLLM command.

Whether the merge can work (and what to know about it: QLoRA's base, full runs being copied,
prompt-learning methods that cannot merge) is asked of core (check_adapter_export, check_merge)
as soon as a run is chosen, before anything is loaded; the export itself runs in a thread worker
(torch works outside the GIL) and reports its stages through core's progress callback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, ProgressBar, Select, Static

from tuitune.core.errors import UserError
from tuitune.core.gguf_export import STAGES
from tuitune.core.runs import RemoteCodeRefused
from tuitune.tui.screens.base import PaletteCommand, TuituneScreen
from tuitune.tui.widgets.runs_table import short_model

KINDS = ("adapter", "merge", "gguf", "vllm")

QLORA_BASES = ("quantized", "original")  # core.export.QLORA_BASES, the default first
EXPORTS_DIR = "exports"


def default_output(runs_dir: Path, run: str, kind: str) -> str:
    """exports/RUN-adapter or exports/RUN-merged next to the runs folder."""
    suffix = {"adapter": "adapter", "merge": "merged"}.get(kind, kind)
    return str(Path(runs_dir).parent / EXPORTS_DIR / f"{run}-{suffix}")


def stage_line(current: str, done: list[str], skipped: tuple[str, ...]) -> str:
    """merge ✓ · convert … · quantize – · ...: where a GGUF export stands."""
    marks = []
    for stage in STAGES:
        mark = "✓" if stage in done else "…" if stage == current else "–" if stage in skipped else "·"
        marks.append(f"{stage} {mark}")
    return "   ".join(marks)


class ExportScreen(TuituneScreen):
    MODE = "export"

    BINDINGS = [Binding("ctrl+s", "export", "export.start")]

    DEFAULT_CSS = """
    ExportScreen {
        #export-form { height: auto; padding: 1 1 0 1; }
        .export-row { height: 1; margin-bottom: 1; }
        .export-row Label { width: 14; color: $text-muted; }
        .export-row Input { width: 1fr; height: 1; border: none; padding: 0 1; background: $boost; }
        .export-row Input:focus { background: $primary 40%; }
        .export-row Select { width: 1fr; }
        #export-qlora-row, #export-gguf-row, #export-quants { display: none; }
        #export-qlora-row.-shown, #export-gguf-row.-shown, #export-quants.-shown { display: block; }
        #export-gguf-row Checkbox { width: auto; border: none; padding: 0 1; height: 1; }
        #export-quants { height: auto; padding: 0 2; color: $text-muted; margin-bottom: 1; }
        #export-stages { height: auto; padding: 0 2; }
        #export-check { height: auto; padding: 0 2; margin-bottom: 1; }
        #export-check.-error { color: $text-error; }
        #export-check.-ok { color: $text-success; }
        #export-warnings { height: auto; padding: 0 2; color: $text-warning; }
        #export-warnings.-empty, #export-stage.-empty, #export-stages.-empty { display: none; }
        &.-short #export-progress-row { margin-top: 0; }
        &.-short #export-check, &.-short .export-row { margin-bottom: 0; }
        #export-progress-row { height: auto; padding: 0 2; margin-top: 1; }
        #export-progress { width: 100%; display: none; }
        #export-progress.-shown { display: block; }
        #export-stage { height: auto; color: $text-muted; }
        #export-result-scroll { height: 1fr; }
        #export-result { height: auto; padding: 0 2; }
        #export-result.-error { color: $text-error; }
        #export-result.-ok { color: $text-success; }
    }
    """

    class Checked(Message):
        def __init__(self, request: int, run: Any = None, warnings: list[str] | None = None, error: str = "") -> None:
            super().__init__()
            self.request, self.run, self.warnings, self.error = request, run, warnings or [], error

    class Progressed(Message):
        def __init__(self, progress: Any) -> None:
            super().__init__()
            self.progress = progress

    class Exported(Message):
        def __init__(self, result: Any = None, error: str = "") -> None:
            super().__init__()
            self.result, self.error = result, error

    def __init__(self) -> None:
        super().__init__()
        self.listed = False
        self.checking = False
        self.exporting = False
        self.checked: Any = None  # the core RunDirectory that passed the check, for the current choice
        self.refused: RemoteCodeRefused | None = None  # the check wants the model's own code run: ctrl+s asks
        self.result: Any = None  # the last ExportResult
        self._check_request = 0
        self._default_out = ""  # the folder last filled in for the chosen run and kind
        self._stages_done: list[str] = []  # GGUF stages finished in the running export

    def compose_body(self) -> ComposeResult:
        with Vertical(id="export-form"):
            with Horizontal(classes="export-row"):
                yield Label(self.t("export.run"))
                yield Input(placeholder=self.t("export.run_placeholder"), id="export-run", compact=True)
            with Horizontal(classes="export-row"):
                yield Label(self.t("export.kind"))
                yield Select(
                    [(self.t(f"export.kind_{k}"), k) for k in KINDS], value="merge", allow_blank=False,
                    id="export-kind", compact=True,
                )
            with Horizontal(classes="export-row", id="export-qlora-row"):
                yield Label(self.t("export.qlora_base"))
                yield Select(
                    [(self.t(f"export.qlora_{b}"), b) for b in QLORA_BASES], value=QLORA_BASES[0], allow_blank=False,
                    id="export-qlora-base", compact=True,
                )
            with Horizontal(classes="export-row", id="export-gguf-row"):
                yield Label(self.t("export.quant"))
                yield Select(self._quant_options(), value="q8_0", allow_blank=False, id="export-quant", compact=True)
                yield Checkbox(self.t("export.ollama"), value=True, id="export-ollama", compact=True)
            with Horizontal(classes="export-row"):
                yield Label(self.t("export.out"))
                yield Input(id="export-out", compact=True)
        yield Static("", id="export-quants", markup=False)
        yield Static(self.t("export.check_none"), id="export-check", markup=False)
        yield Static("", id="export-warnings", markup=False, classes="-empty")
        with Vertical(id="export-progress-row"):
            yield ProgressBar(id="export-progress", show_eta=False)
            yield Static("", id="export-stages", markup=False, classes="-empty")
            yield Static("", id="export-stage", markup=False, classes="-empty")
        with VerticalScroll(id="export-result-scroll"):
            yield Static("", id="export-result", markup=False)

    def on_mount(self) -> None:
        self.find_runs()

    @property
    def is_settled(self) -> bool:
        return self.listed and not (self.checking or self.exporting)

    @property
    def run_name(self) -> str:
        return self.query_one("#export-run", Input).value.strip()

    @property
    def kind(self) -> str:
        return str(self.query_one("#export-kind", Select).value)

    @property
    def qlora_base(self) -> str:
        return str(self.query_one("#export-qlora-base", Select).value)

    @property
    def quant(self) -> str:
        return str(self.query_one("#export-quant", Select).value)

    @property
    def ollama(self) -> bool:
        return self.query_one("#export-ollama", Checkbox).value

    def _quant_options(self) -> list[tuple[str, str]]:
        from tuitune.core.gguf_convert import QUANT_TYPES, quant_availability

        rows = []
        for row in quant_availability():
            q = QUANT_TYPES[row.quant]
            rows.append((f"{q.name}  {self.t('export.quant_here') if row.available else self.t('export.quant_missing')}", q.name))
        return rows

    def _quants_text(self) -> str:
        """Which quant types can be written here, and what the others need."""
        from tuitune.core.gguf_convert import LLAMA_CPP_EXTRA, QUANT_TYPES, quant_availability

        rows = quant_availability()
        by = {r.quant: QUANT_TYPES[r.quant].by for r in rows}
        here = " ".join(r.quant for r in rows if r.available and by[r.quant] == "converter")
        k_here = " ".join(r.quant for r in rows if r.available and by[r.quant] != "converter")
        missing = " ".join(r.quant for r in rows if not r.available)
        text = self.t("export.quants_here", quants=here or "-")
        if k_here:
            text += "  " + self.t("export.quants_k_here", quants=k_here)
        if missing:
            text += "\n" + self.t("export.quants_missing", quants=missing, install=LLAMA_CPP_EXTRA)
        return text

    # ------------------------------------------------------------------ choosing a run

    def on_tuitune_screen_runs_found(self, message: TuituneScreen.RunsFound) -> None:
        self.listed = True
        run = self.query_one("#export-run", Input)
        if not message.names:
            self._say("#export-check", self.t("export.no_runs", folder=self.app.runs_dir.name))
        self.offer_runs(run, message)  # filling in the default starts the check (Input.Changed)
        run.focus()

    @on(Input.Changed, "#export-run")
    @on(Select.Changed, "#export-kind")
    @on(Select.Changed, "#export-qlora-base")
    @on(Select.Changed, "#export-quant")
    @on(Checkbox.Changed, "#export-ollama")
    def _choice_changed(self) -> None:
        gguf = self.kind == "gguf"
        self.query_one("#export-gguf-row").set_class(gguf, "-shown")
        quants = self.query_one("#export-quants", Static)
        quants.set_class(gguf, "-shown")
        if gguf:
            quants.update(self._quants_text())
        out = self.query_one("#export-out", Input)
        # The folder follows the choice until the user types one of their own.
        if self.run_name and out.value.strip() in ("", self._default_out):
            self._default_out = default_output(self.app.runs_dir, Path(self.run_name).name, self.kind)
            out.value = self._default_out
        self._check()

    @on(Input.Submitted, "#export-run")
    def _run_submitted(self) -> None:
        self.query_one("#export-kind").focus()

    def _check(self) -> None:
        self._check_request += 1
        self.checked = None
        self.refused = None
        if not self.run_name:
            self._say("#export-check", self.t("export.check_none"))
            self.query_one("#export-warnings", Static).update("")
            return
        self.checking = True
        self._say("#export-check", self.t("export.checking", run=self.run_name))
        out = self.query_one("#export-out", Input).value.strip()
        self._check_run(self._check_request, self.run_name, self.kind, self.qlora_base, self.quant, out)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export-check")
    def _check_run(self, request: int, name: str, kind: str, qlora_base: str, quant: str = "q8_0", out: str = "") -> None:
        """The up-front feasibility check: reads the run folder only, loads no weights."""
        from tuitune.core.export import check_adapter_export, check_merge
        from tuitune.core.runs import find_run, open_finished_run

        try:
            path = find_run(name, self.app.runs_dir).path
            if kind == "adapter":
                run, warnings = check_adapter_export(path), []
            elif kind == "gguf":
                from tuitune.core.gguf_export import check_gguf_export

                source, _ = check_gguf_export(str(path), out or ".", quant, runs_dir=self.app.runs_dir, overwrite=True)
                run, warnings = source.run, source.warnings
            elif kind == "vllm":
                from tuitune.core.vllm import plan_vllm

                run = open_finished_run(path)
                warnings = plan_vllm(run).notes
            else:
                run, warnings = check_merge(path, qlora_base)
        except RemoteCodeRefused as e:  # ctrl+s asks whether to allow it (tui.remote_code)
            checked = self.Checked(request, error=e.message + "\n" + self.t("remote.export_note"))
            checked.refused = e
            self.post_message(checked)
            return
        except UserError as e:
            self.post_message(self.Checked(request, error=e.message + (f"\n{e.hint}" if e.hint else "")))
            return
        self.post_message(self.Checked(request, run, warnings))

    def on_export_screen_checked(self, message: Checked) -> None:
        if message.request != self._check_request:
            return
        self.checking = False
        self.refused = getattr(message, "refused", None)
        warnings = self.query_one("#export-warnings", Static)
        if message.error:
            self._say("#export-check", self.t("export.cannot", error=message.error), "error")
            warnings.update("")
            warnings.add_class("-empty")
            return
        run = message.run
        self.checked = run
        self.query_one("#export-qlora-row").set_class(run.method == "qlora" and self.kind == "merge", "-shown")
        key = {"adapter": "export.can_adapter", "gguf": "export.can_gguf", "vllm": "export.can_vllm"}.get(self.kind, "export.can_merge")
        self._say("#export-check", self.t(key, run=run.name, method=run.method, model=short_model(run.recipe.model.name_or_path, 40),
                                          quant=self.quant), "ok")
        warnings.update("\n".join(self.t("export.warning", warning=w) for w in message.warnings))
        warnings.set_class(not message.warnings, "-empty")

    def _say(self, selector: str, text: str, kind: str = "") -> None:
        widget = self.query_one(selector, Static)
        widget.set_class(kind == "error", "-error")
        widget.set_class(kind == "ok", "-ok")
        widget.update(text)

    # ------------------------------------------------------------------ exporting

    def action_export(self) -> None:
        if self.exporting:
            self.notify(self.t("export.busy"), severity="warning")
            return
        if self.checked is None and self.refused is not None:
            self._allow_then_check(self.refused)
            return
        if self.checked is None:
            self.notify(self.t("export.check_none") if not self.run_name else self.query_one("#export-check", Static).content, severity="warning")
            return
        out = self.query_one("#export-out", Input).value.strip()
        if not out:
            self._say("#export-result", self.t("export.need_out"), "error")
            return
        self.exporting = True
        self._start(self.checked.path, out, self.kind, self.qlora_base)

    @work(exclusive=True, exit_on_error=False, group="export-dialog")
    async def _allow_then_check(self, refused: RemoteCodeRefused) -> None:
        from tuitune.tui.remote_code import ask_remote_code

        if await ask_remote_code(self.app, refused):
            self.refused = None
            self._check()

    @work(exclusive=True, exit_on_error=False, group="export-dialog")
    async def _start(self, run: Path, out: str, kind: str, qlora_base: str) -> None:
        self._stages_done = []
        """Ask before replacing a folder that holds something, then export in a thread."""
        from tuitune.tui.dialogs.confirm import ConfirmDialog

        folder = Path(out).expanduser()
        overwrite = False
        if folder.is_dir() and any(folder.iterdir()):
            title, ask = self.t("export.replace_title"), self.t("export.replace_ask", path=out)
            if not await self.app.push_screen_wait(ConfirmDialog(title, ask)):
                self.exporting = False
                return
            overwrite = True
        self._say("#export-result", "")
        bar = self.query_one("#export-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("-shown")
        self._export(run, folder, kind, qlora_base, overwrite, self.quant, self.ollama)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export-run")
    def _export(self, run: Path, out: Path, kind: str, qlora_base: str, overwrite: bool, quant: str = "q8_0",
                ollama: bool = True) -> None:
        import torch

        from tuitune.core import export
        from tuitune.core.tuned import quiet_libraries
        from tuitune.tui.screens.chat import generation_threads

        torch.set_num_threads(min(torch.get_num_threads(), generation_threads()))
        quiet_libraries()

        def progress(p: Any) -> None:
            self.post_message(self.Progressed(p))

        try:
            if kind == "adapter":
                result = export.export_adapter(run, out, overwrite=overwrite, progress=progress)
            elif kind == "gguf":
                from tuitune.core.gguf_export import export_gguf

                result = export_gguf(str(run), out, quant=quant, runs_dir=self.app.runs_dir, ollama=ollama,
                                     overwrite=overwrite, progress=progress)
            elif kind == "vllm":
                from tuitune.core.vllm import export_vllm

                result = export_vllm(run, out, overwrite=overwrite, progress=progress)
            else:
                result = export.merge_run(run, out, overwrite=overwrite, progress=progress, qlora_base=qlora_base)
        except UserError as e:
            self.post_message(self.Exported(error=e.message + (f"\n{e.hint}" if e.hint else "")))
            return
        except BaseException as e:
            self.post_message(self.Exported(error=f"{type(e).__name__}: {e}"))
            raise  # the worker's failure becomes the error dialog with the traceback
        self.post_message(self.Exported(result))

    def on_export_screen_progressed(self, message: Progressed) -> None:
        p = message.progress
        bar = self.query_one("#export-progress", ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
        stage_text = self.query_one("#export-stage", Static)
        stage_text.update(self.t("export.running", stage=p.stage, message=p.message))
        stage_text.remove_class("-empty")
        if self.kind == "gguf" and p.stage in STAGES:
            done = self._stages_done
            for stage in STAGES[: STAGES.index(p.stage)]:
                if stage not in done:
                    done.append(stage)
            stages = self.query_one("#export-stages", Static)
            stages.update(stage_line(p.stage, done, self._skipped()))
            stages.remove_class("-empty")

    def _skipped(self) -> tuple[str, ...]:
        from tuitune.core.gguf_convert import QUANT_TYPES

        skipped = () if QUANT_TYPES[self.quant].by == "llama.cpp" else ("quantize",)
        return skipped + (() if self.ollama else ("ollama",))

    def on_export_screen_exported(self, message: Exported) -> None:
        from tuitune.core.events import format_size

        self.exporting = False
        bar = self.query_one("#export-progress", ProgressBar)
        bar.remove_class("-shown")
        self.query_one("#export-stage", Static).update("")
        self.query_one("#export-stage", Static).add_class("-empty")
        if message.error:
            self._say("#export-result", self.t("export.failed", error=message.error), "error")
            return
        r = self.result = message.result
        if hasattr(r, "parity"):
            self.show_gguf_result(r)
            return
        if hasattr(r, "command"):
            notes = "".join("\n" + self.t("export.warning", warning=n) for n in r.plan.notes)
            self._say("#export-result", self.t("export.vllm_done", path=str(r.path), command=r.command) + notes, "ok")
            return
        text = self.t("export.done", kind=r.kind, path=str(r.path), files=len(r.files), size=format_size(r.size_bytes), seconds=r.seconds)
        self._say("#export-result", text + "".join("\n" + self.t("export.warning", warning=w) for w in r.warnings), "ok")

    def show_gguf_result(self, r: Any) -> None:
        """The file, the parity check per engine and the commands that run the model."""
        stages = self.query_one("#export-stages", Static)
        stages.update(stage_line("", [s for s in STAGES if s not in self._skipped()], self._skipped()))
        stages.remove_class("-empty")
        lines = [self.t("export.gguf_done", path=str(r.path), size=f"{r.size_bytes / 1e6:.1f} MB", quant=r.quant)]
        lines += [self.t("export.warning", warning=w) for w in r.warnings]
        p = r.parity
        if p is not None:
            lines.append(self.t("export.parity_head", prompts=len(p.engines[0].prompts) if p.engines else 0, source=p.prompt_source))
            for e in p.engines:
                lines.append(self.t(
                    "export.parity_engine", engine=e.engine, share=f"{e.share:.0%}", n=p.compared_tokens,
                    expected=f"{p.expected_share:.0%}", stopped=e.stops_kept, total=e.stops_expected,
                    verdict=self.t("export.parity_pass" if e.passed else "export.parity_fail"),
                ))
                lines += [f"    {problem}" for problem in e.problems]
            lines += [self.t("export.warning", warning=n) for n in p.notes]
        if r.modelfile:
            lines.append(self.t("export.modelfile", path=str(r.modelfile)))
        lines.append(self.t("export.commands"))
        lines += [f"  {c}" for c in r.commands]
        self._say("#export-result", "\n".join(lines), "ok" if r.passed else "error")

    def palette_commands(self):
        yield PaletteCommand(self.t("export.start"), self.t("export.start_help"), self.action_export)
