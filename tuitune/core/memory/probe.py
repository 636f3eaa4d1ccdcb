"""Measure the real memory of training steps, to check the estimator (and for `estimate --measure`).

`measure_training_peak(recipe)` builds the model with the training engine's `build_model` (base,
quantization, peft preparation, adapters), turns on gradient checkpointing as the Trainer does, runs a
few real steps (the engine's loss, backward, optimizer step) on random tokens with a label on every
token, and reports the peak of live tensor memory. (`tuitune estimate --measure` goes further and
runs the engine's Trainer on the recipe's data: tuitune.core.engine.measure.)

On CUDA the figure is `torch.cuda.max_memory_allocated`. On CPU there is no allocator counter, so a
TorchDispatchMode counts the storage of every tensor an operator creates until torch frees it: the
same quantity, live tensor bytes, not RSS (which also holds the allocator's cache and libraries).

Heavy imports stay inside functions: this module is imported by the CLI only when measuring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tuitune.core.errors import UserError
from tuitune.core.recipe.methods import trains_base_weights

if TYPE_CHECKING:
    from tuitune.core.recipe import Recipe

# Optimizers that run on CPU. The bitsandbytes 8-bit and paged optimizers need CUDA.
CPU_OPTIMIZERS = ("adamw_torch", "sgd", "adafactor")


@dataclass
class MeasuredPeak:
    """What a measured run used. Bytes are live tensor bytes (allocated, not reserved)."""

    peak_bytes: int
    device: str
    steps: int
    batch_size: int
    seq_len: int
    seconds: float
    trainable_params: int
    total_params: int
    # Live bytes at moments of the last step (after load, after forward, after backward, after step).
    moments: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "peak_bytes": self.peak_bytes,
            "device": self.device,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seq_len": self.seq_len,
            "seconds": round(self.seconds, 2),
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "moments": dict(self.moments),
        }


def enable_checkpointing(model: Any) -> None:
    """Gradient checkpointing the way the Trainer turns it on for the engine's TrainingArguments
    (activation_checkpointing with use_reentrant=False; a PeftModel passes it to its base)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:  # pragma: no cover - older transformers
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def make_optimizer(params: list[Any], recipe: Recipe, device: str) -> Any:
    """The recipe's optimizer over `params` (the trainable parameters), chosen by the Trainer itself
    from the engine's `optim` name for this device (engine.arguments.OPTIMIZERS)."""
    import tempfile

    from transformers import Trainer, TrainingArguments

    from tuitune.core.engine.arguments import OPTIMIZERS

    name = recipe.train.optimizer
    if device == "cpu" and name not in CPU_OPTIMIZERS:
        raise UserError(
            f"train.optimizer = \"{name}\" needs a CUDA GPU (bitsandbytes optimizers)",
            "measure on a GPU, or use one of " + ", ".join(CPU_OPTIMIZERS),
        )
    with tempfile.TemporaryDirectory(prefix="tuitune-probe-") as out:  # TrainingArguments wants one
        args = TrainingArguments(
            output_dir=out,
            optim=OPTIMIZERS[name][1 if device == "cuda" else 0],
            learning_rate=recipe.train.learning_rate,
            weight_decay=recipe.train.weight_decay,
            use_cpu=device == "cpu",
            report_to="none",
        )
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    return optimizer_cls(params, **kwargs)


class TrainingMemoryProbe:
    """A model loaded and prepared once for the recipe, measured under several batch shapes.

    Loading (and quantizing, for QLoRA) dominates the cost of a measurement, so a probe keeps the
    model and toggles gradient checkpointing and the batch shape between measurements.
    """

    def __init__(self, recipe: Recipe, *, device: str | None = None) -> None:
        import torch

        from tuitune.core.engine.build import build_model
        from tuitune.core.engine.head_loss import HeadLoss
        from tuitune.core.models.loading import pick_device

        self.recipe = recipe
        self.device = device or pick_device()
        torch.manual_seed(recipe.train.seed)
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        # The training engine's own model: base, quantization, peft preparation, adapters.
        self.model = build_model(recipe, self.device).model
        self.model.train()
        if recipe.train.gradient_checkpointing:
            enable_checkpointing(self.model)
        # The engine's loss (TuituneTrainer.compute_loss): the chunked head where it applies.
        self.head = HeadLoss.for_model(self.model)
        self.vocab = self.model.get_input_embeddings().weight.shape[0]
        self._checkpointing = bool(recipe.train.gradient_checkpointing)

    def _set_checkpointing(self, on: bool) -> None:
        if on == self._checkpointing:
            return
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        if on:
            enable_checkpointing(base)
        else:
            base.gradient_checkpointing_disable()
            if trains_base_weights(self.recipe.method.type):
                # Checkpointing made the embedding output require grad; without it the frozen
                # lower layers of freeze-tuning need no graph at all.
                base.disable_input_require_grads()
        self._checkpointing = on

    def measure(
        self,
        *,
        batch_size: int | None = None,
        seq_len: int | None = None,
        gradient_checkpointing: bool | None = None,
        steps: int = 1,
    ) -> MeasuredPeak:
        """Run `steps` real steps and report the peak of live tensor bytes of the last one.

        The optimizer states are created first by one update on zero gradients, so even a single
        measured step is a steady-state step (states exist, as from the second step of a run on).
        Earlier steps, when steps > 1, warm up (e.g. the CUDA allocator) untracked.
        """
        import torch

        from tuitune.core.engine.build import uses_packing

        recipe = self.recipe
        batch_size = batch_size or recipe.train.batch_size
        seq_len = seq_len or recipe.data.cutoff_len
        if gradient_checkpointing is not None:
            self._set_checkpointing(gradient_checkpointing)
        model = self.model
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(trainable, recipe, self.device)
        ids = torch.randint(0, self.vocab, (batch_size, seq_len), device=self.device)
        inputs: dict[str, Any] = {"input_ids": ids, "labels": ids}
        if uses_packing(recipe) and seq_len >= 4:
            # Packed rows as the engine's PackedCollator makes them: two examples per row, position
            # ids restarting at the second (a block-diagonal mask), no loss across the boundary.
            half = seq_len // 2
            pos = torch.cat([torch.arange(half), torch.arange(seq_len - half)]).to(self.device)
            labels = ids.clone()
            labels[:, half] = -100
            inputs = {"input_ids": ids, "labels": labels, "position_ids": pos.expand(batch_size, -1)}
        head_usable = self.head is not None and self.head.usable(inputs)  # its one-off check, before measuring
        start = time.perf_counter()

        def one_step(moments: dict[str, int], live: Any) -> None:
            # Like TuituneTrainer.compute_loss: keep the loss, drop the outputs (logits) before backward.
            loss = self.head(model, inputs) if head_usable else None
            if loss is None:
                loss = model(**inputs).loss
            moments["after_forward"] = live()
            loss.backward()
            del loss
            moments["after_backward"] = live()
            if recipe.train.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(trainable, recipe.train.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            moments["after_step"] = live()

        for p in trainable:
            p.grad = torch.zeros_like(p)
        optimizer.step()  # creates the states; zero gradients leave the weights as they were
        optimizer.zero_grad(set_to_none=True)
        moments: dict[str, int] = {}
        for _ in range(max(0, steps - 1)):
            one_step({}, lambda: 0)
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            moments["before_step"] = torch.cuda.memory_allocated()
            one_step(moments, torch.cuda.memory_allocated)
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _measure_cpu(model, optimizer, one_step, moments)
        return MeasuredPeak(
            peak_bytes=int(peak),
            device=self.device,
            steps=steps,
            batch_size=batch_size,
            seq_len=seq_len,
            seconds=time.perf_counter() - start,
            trainable_params=sum(p.numel() for p in trainable),
            total_params=sum(p.numel() for p in model.parameters()),
            moments=moments,
        )


def measure_training_peak(
    recipe: Recipe,
    *,
    device: str | None = None,
    steps: int = 1,
    batch_size: int | None = None,
    seq_len: int | None = None,
) -> MeasuredPeak:
    """Load the recipe's model, run `steps` real training steps, return the peak of live tensor memory.

    The batch is random token ids of `batch_size x seq_len` (default: the recipe's batch size and
    cutoff length) with labels on every token, like a packed batch.
    """
    probe = TrainingMemoryProbe(recipe, device=device)
    return probe.measure(batch_size=batch_size, seq_len=seq_len, steps=steps)


def _measure_cpu(model: Any, optimizer: Any, one_step: Any, moments: dict[str, int]) -> int:
    """Peak live tensor bytes of one step on CPU, counted by `LiveTensorBytes`."""
    tracker = LiveTensorBytes()
    # Weights, buffers, quantization constants and optimizer states exist before the step: count them.
    states = [t for st in optimizer.state.values() for t in st.values()]
    tracker.add_existing([*model.parameters(), *model.buffers(), *_quant_state_tensors(model), *states])
    moments["before_step"] = tracker.current
    with tracker:
        one_step(moments, lambda: tracker.current)
    return tracker.peak


def _live_tensor_bytes_class() -> type:
    """Build the tracker class on first use, so importing this module does not import torch."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class _LiveTensorBytes(TorchDispatchMode):
        """Live tensor bytes, counted per storage, with the running peak and where it happened.

        torch's MemTracker (torch.distributed._tools.mem_tracker) does the same but installs
        gradient hooks on every parameter, which fails on frozen ones (LoRA, QLoRA), so this
        keeps only its core: every operator's output storages are counted once, and a weakref
        finalizer uncounts each when torch frees it. Views share a storage and are counted once.
        """

        def __init__(self) -> None:
            super().__init__()
            self.current = 0
            self.peak = 0
            self.peak_op = ""
            self._sizes: dict[int, int] = {}

        def add_existing(self, tensors: Any) -> None:
            for t in tensors:
                self._count(t, "existing")

        def _count(self, t: Any, op: str) -> None:
            import torch

            if not isinstance(t, torch.Tensor) or t.device.type == "meta":
                return
            try:
                st = t.untyped_storage()
            except (NotImplementedError, RuntimeError):  # tensor subclasses without a storage
                return
            key = st._cdata
            size = st.nbytes()
            if key in self._sizes or size == 0:
                return
            self._sizes[key] = size
            weakref.finalize(st, self._free, key)
            self.current += size
            if self.current > self.peak:
                self.peak = self.current
                self.peak_op = op

        def _free(self, key: int) -> None:
            self.current -= self._sizes.pop(key, 0)

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            for t in tree_leaves(out):
                self._count(t, str(func))
            return out

    return _LiveTensorBytes


def LiveTensorBytes() -> Any:  # noqa: N802 - reads as the class it builds
    """A TorchDispatchMode counting live tensor bytes: `with tracker: ...`; then `.peak`, `.current`."""
    return _live_tensor_bytes_class()()


def _quant_state_tensors(model: Any) -> list[Any]:
    """The absmax and code tensors of bitsandbytes 4-bit weights (not parameters or buffers)."""
    import torch

    out: list[Any] = []
    for p in model.parameters():
        state = getattr(p, "quant_state", None)
        while state is not None:
            out += [t for t in (state.absmax, state.code, getattr(state, "offset", None)) if isinstance(t, torch.Tensor)]
            state = getattr(state, "state2", None)
    return out
