"""The output head and its cross-entropy in chunks: logits only at trained positions, one vocabulary
chunk at a time, never the whole (tokens x vocabulary) matrix.

A causal LM's loss normally projects every position onto the whole vocabulary (128k columns for
Llama-3: 4 GiB of fp32 logits at 8k tokens) and its backward keeps two more tensors that size.
Here (`chunked_head_loss`):
- only positions whose next token has a label are projected (prompts are masked: no loss there);
- the vocabulary is projected CHUNK_COLUMNS at a time, rows in blocks of at most CHUNK_ELEMENTS, with
  a running maximum and sum of exponentials (the online softmax of Milakov & Gimelshein 2018,
  arXiv:1805.02867, as FlashAttention uses it);
- the gradient for the hidden states is accumulated in that same pass and rescaled whenever the
  running maximum moves, so a frozen head (every adapter method) needs no second pass: the work is
  the plain head's forward + backward, and the memory one chunk;
- a trainable head (full fine-tuning) recomputes each chunk in the backward pass for its weight
  gradient, from the saved log-sum-exp.
On CUDA with liger-kernel installed its fused linear cross-entropy (Triton) is used instead. No CPU
library does this, hence the PyTorch version here (torch.autograd.Function).

`HeadLoss.for_model(model)` hooks any decoder whose output head is a plain Linear: the model's own
forward runs (so PEFT prompt methods, prefixes and adapters behave exactly as usual) with the head
swapped for a capture of its input; the loss is then formed from the captured hidden states. Logit
transforms after the head (Gemma's soft-capping, Cohere's and Granite's scaling) are applied per
chunk, and a one-off check at the first batch compares the transform with the model's own logits:
a model whose head does something else keeps the plain loss, with a note.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import torch

from tuitune.core.memory.head import HEAD_CHUNK_COLUMNS, HEAD_CHUNK_ELEMENTS, head_chunk_shape

IGNORE = -100
CHUNK_COLUMNS = HEAD_CHUNK_COLUMNS  # vocabulary columns projected at once
CHUNK_ELEMENTS = HEAD_CHUNK_ELEMENTS  # logits per chunk (rows x columns)


def chunk_shape(rows: int, vocab: int) -> tuple[int, int]:
    """(rows, columns) of one chunk of logits, by the rule the memory estimator counts (memory.head)."""
    return head_chunk_shape(rows, vocab, CHUNK_COLUMNS, CHUNK_ELEMENTS)


@dataclass(frozen=True)
class LogitTransform:
    """What a model does to lm_head's output: logits = softcap(scale * head(h))."""

    scale: float = 1.0  # Cohere multiplies by logit_scale, Granite divides by logits_scaling
    softcap: float | None = None  # Gemma 2/3: cap * tanh(logits / cap)

    @classmethod
    def of(cls, config: Any) -> LogitTransform:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        softcap = getattr(text, "final_logit_softcapping", None)
        scale = 1.0
        if getattr(text, "logit_scale", None) is not None:
            scale = float(text.logit_scale)
        elif getattr(text, "logits_scaling", None):
            scale = 1.0 / float(text.logits_scaling)
        return cls(scale=scale, softcap=float(softcap) if softcap else None)

    def apply(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(transformed fp32 logits, d transformed / d scaled logits or None), in place on `logits`."""
        if self.scale != 1.0:
            logits.mul_(self.scale)
        if self.softcap is None:
            return logits, None
        t = logits.div_(self.softcap).tanh_()
        slope = torch.square(t).neg_().add_(1)  # 1 - t^2, one chunk-sized tensor
        return t.mul_(self.softcap), slope


class ChunkedHeadLoss(torch.autograd.Function):
    """sum over rows of cross_entropy(transform(h @ W.T + b), targets), chunk by chunk (see the module doc).

    h: (rows, hidden) at trained positions only, in the compute dtype; targets: (rows,) all valid.
    """

    @staticmethod
    def forward(ctx, h, weight, bias, targets, transform, compute_dtype):  # noqa: ANN001
        need_input_grad = ctx.needs_input_grad[0]
        rows, vocab = h.shape[0], weight.shape[0]
        block, cols = chunk_shape(rows, vocab)
        lse = torch.empty(rows, dtype=torch.float32, device=h.device)
        picked = torch.zeros(rows, dtype=torch.float32, device=h.device)
        grad_h = torch.empty(h.shape, dtype=h.dtype, device=h.device) if need_input_grad else None
        with _no_autocast(h.device.type):
            for r0 in range(0, rows, block):
                r1 = min(rows, r0 + block)
                hb, tb = h[r0:r1].to(compute_dtype), targets[r0:r1]
                run_max = torch.full((r1 - r0,), -math.inf, dtype=torch.float32, device=h.device)
                run_sum = torch.zeros(r1 - r0, dtype=torch.float32, device=h.device)
                acc = torch.zeros((r1 - r0, h.shape[1]), dtype=torch.float32, device=h.device) if need_input_grad else None
                slope_t = torch.ones(r1 - r0, dtype=torch.float32, device=h.device)
                for c0 in range(0, vocab, cols):
                    c1 = min(vocab, c0 + cols)
                    w = weight[c0:c1].to(compute_dtype)
                    logits, slope = _chunk_logits(hb, w, bias, c0, c1, transform)
                    inside = ((tb >= c0) & (tb < c1)).nonzero().squeeze(1)
                    if inside.numel():
                        picked[r0 + inside] = logits[inside, tb[inside] - c0]
                        if slope is not None:
                            slope_t[inside] = slope[inside, tb[inside] - c0]
                    new_max = torch.maximum(run_max, logits.amax(dim=1))
                    rescale = torch.exp(run_max - new_max)
                    probs = logits.sub_(new_max[:, None]).exp_()  # unnormalized, in place
                    run_sum.mul_(rescale).add_(probs.sum(dim=1))
                    if acc is not None:
                        if slope is not None:
                            probs.mul_(slope)
                        acc.mul_(rescale[:, None]).add_((probs.to(compute_dtype) @ w).float())
                    run_max = new_max
                    del logits, probs, slope  # before the next chunk is formed: one chunk alive at a time
                lse[r0:r1] = run_max + run_sum.log()
                if grad_h is not None:
                    # d loss_i / d h_i = scale * (sum_j softmax_ij slope_ij W_j - slope_iy W_y)
                    w_target = weight[tb].to(compute_dtype).float()
                    g = acc.div_(run_sum[:, None]).sub_(w_target * slope_t[:, None])
                    grad_h[r0:r1] = g.mul_(transform.scale).to(h.dtype)
        ctx.transform, ctx.compute_dtype = transform, compute_dtype
        # A frozen head needs nothing but the input gradient; a trainable one recomputes from h.
        trainable = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        ctx.save_for_backward(*((h, weight, bias, targets, lse) if trainable else (None,) * 5), grad_h)
        return (lse - picked).sum()

    @staticmethod
    def backward(ctx, grad_out):  # noqa: ANN001
        h, weight, bias, targets, lse, grad_h = ctx.saved_tensors
        g_h = grad_h * grad_out.to(grad_h.dtype) if ctx.needs_input_grad[0] else None
        g_w = g_b = None
        if ctx.needs_input_grad[1] or (bias is not None and ctx.needs_input_grad[2]):
            g_w, g_b = _weight_grads(h, weight, bias, targets, lse, ctx.transform, ctx.compute_dtype, grad_out)
            g_w = g_w if ctx.needs_input_grad[1] else None
            g_b = g_b if bias is not None and ctx.needs_input_grad[2] else None
        return g_h, g_w, g_b, None, None, None


def _chunk_logits(hb, w, bias, c0, c1, transform):  # noqa: ANN001, ANN202
    z = hb @ w.T
    if bias is not None:
        z = z + bias[c0:c1].to(z.dtype)
    return transform.apply(z.float() if z.dtype != torch.float32 else z)


def _weight_grads(h, weight, bias, targets, lse, transform, compute_dtype, grad_out):  # noqa: ANN001, ANN202
    """A trainable head's gradients: each chunk recomputed, softmax from the saved log-sum-exp."""
    rows, vocab = h.shape[0], weight.shape[0]
    block, cols = chunk_shape(rows, vocab)
    g_w = torch.zeros_like(weight, dtype=torch.float32)
    g_b = torch.zeros(vocab, dtype=torch.float32, device=h.device) if bias is not None else None
    with _no_autocast(h.device.type):
        for r0 in range(0, rows, block):
            r1 = min(rows, r0 + block)
            hb, tb = h[r0:r1].to(compute_dtype), targets[r0:r1]
            for c0 in range(0, vocab, cols):
                c1 = min(vocab, c0 + cols)
                w = weight[c0:c1].to(compute_dtype)
                logits, slope = _chunk_logits(hb, w, bias, c0, c1, transform)
                grad = logits.sub_(lse[r0:r1, None]).exp_()
                inside = ((tb >= c0) & (tb < c1)).nonzero().squeeze(1)
                grad[inside, tb[inside] - c0] -= 1
                if slope is not None:
                    grad.mul_(slope)
                grad.mul_(transform.scale * grad_out.float())
                g_w[c0:c1] += (grad.to(compute_dtype).T @ hb).float()
                if g_b is not None:
                    g_b[c0:c1] += grad.sum(dim=0)
                del logits, grad, slope  # one chunk alive at a time
    return g_w.to(weight.dtype), (g_b.to(bias.dtype) if g_b is not None else None)


@contextlib.contextmanager
def _no_autocast(device_type: str):
    with torch.autocast(device_type=device_type, enabled=False):
        yield


def compute_dtype_for(h: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The dtype the plain head would multiply in: autocast's where it is on, else the weight's."""
    kind = h.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return weight.dtype


def liger_available(device_type: str) -> bool:
    if device_type != "cuda":
        return False
    try:
        import liger_kernel.transformers  # noqa: F401
    except ImportError:
        return False
    return True


def chunked_head_loss(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    targets: torch.Tensor,
    transform: LogitTransform = LogitTransform(),
) -> torch.Tensor:
    """Summed cross-entropy of `transform(h @ weight.T + bias)` against `targets` (rows: trained positions)."""
    dtype = compute_dtype_for(h, weight)
    if h.shape[0] == 0:
        return h.sum() * 0.0
    if transform.scale == 1.0 and liger_available(h.device.type):
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        loss = LigerFusedLinearCrossEntropyLoss(ignore_index=IGNORE, reduction="sum", softcap=transform.softcap)
        return loss(weight.to(dtype), h.to(dtype), targets, bias.to(dtype) if bias is not None else None).float()
    return ChunkedHeadLoss.apply(h, weight, bias, targets, transform, dtype)


# ------------------------------------------------------------------------------- the model hookup


def unwrap(model: Any) -> Any:
    """The model under DDP's (or accelerate's) wrapper."""
    while isinstance(model, torch.nn.parallel.DistributedDataParallel) or (
        hasattr(model, "module") and type(model).__name__ in ("DataParallel", "DistributedDataParallel")
    ):
        model = model.module
    return model


class HeadLoss:
    """The chunked loss for one model: its head, its logit transform, and the one-off check."""

    def __init__(self, model: Any, head: torch.nn.Linear, transform: LogitTransform) -> None:
        self.model = model
        self.head = head
        self.transform = transform
        self.checked: bool | None = None  # None: not yet; False: the model's logits are not ours
        self.note: str | None = None  # why the plain loss is used (set when the check fails)
        self._logits: Any = None

    @classmethod
    def for_model(cls, model: Any) -> HeadLoss | None:
        """None where the plain loss must stay: an output head that is not a plain Linear (LoRA or
        modules_to_save on lm_head). Not for FSDP, whose head weight is sharded outside the forward."""
        inner = unwrap(model)
        get = getattr(inner, "get_output_embeddings", None)
        head = get() if get is not None else None
        if not isinstance(head, torch.nn.Linear) or head.weight.dim() != 2 or head.weight.dtype in (torch.int8, torch.uint8):
            return None
        config = getattr(inner, "config", None)
        return cls(inner, head, LogitTransform.of(config) if config is not None else LogitTransform())

    def __call__(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor | None:
        """The mean loss over the trained positions of `inputs` (as the model's own loss), or None
        when this model's logits turned out to differ from lm_head + the transform."""
        if not self.usable(inputs):
            return None
        labels = inputs["labels"]
        model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        return self.loss_from_hidden(self._hidden(model, model_inputs), labels, num_items_in_batch)

    def hidden(self, model: Any, model_inputs: dict[str, Any]) -> torch.Tensor:
        """The output head's input for `model_inputs` (no labels): the model's forward, head skipped.
        A fused group step (engine.together.fused) runs it once for every job's rows."""
        return self._hidden(model, model_inputs)

    def loss_from_hidden(self, hidden: torch.Tensor, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        """The loss of __call__ from the head's input (its rows: those of `labels`)."""
        hidden = hidden[:, -labels.shape[1]:]  # prompt tuning / p-tuning prepend virtual tokens
        targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)  # position t predicts t+1
        keep = targets != IGNORE
        loss = chunked_head_loss(hidden[keep], self.head.weight, self.head.bias, targets[keep], self.transform)
        if num_items_in_batch is None:
            return loss / keep.sum().clamp(min=1)
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        return loss / num_items_in_batch

    def usable(self, inputs: dict[str, Any]) -> bool:
        """Whether the model's logits are lm_head + the transform (checked once, on these inputs)."""
        if self.checked is None:
            self.checked = self._check(inputs)
        return self.checked

    def _hidden(self, model: Any, model_inputs: dict[str, Any], keep_logits: bool = False) -> torch.Tensor:
        """Run the model with the head swapped for a capture of its input; the hidden states.

        The capture returns an empty tensor, so whatever the model does after its head costs nothing
        (keep_logits: the real logits, for the check)."""
        captured: list[torch.Tensor] = []
        head = self.head
        original = head.forward

        def capture(x: torch.Tensor) -> torch.Tensor:
            captured.append(x)
            return original(x) if keep_logits else x[..., :0]

        head.forward = capture
        try:
            out = model(**model_inputs)
        finally:
            del head.forward  # back to the class's forward
        if not captured:
            raise RuntimeError("the model's forward did not call its output head")
        if keep_logits:
            self._logits = out.logits if hasattr(out, "logits") else out[0]
        return captured[-1]

    def _check(self, inputs: dict[str, Any]) -> bool:
        """Compare the model's own logits with lm_head + transform on a few tokens of the first batch,
        in eval mode without gradients (no dropout, no random numbers drawn)."""
        model = self.model
        was_training = model.training
        sample = {k: (v[:1, :16] if torch.is_tensor(v) and v.dim() == 2 else v) for k, v in inputs.items() if k != "labels"}
        try:
            model.eval()
            with torch.no_grad(), _quantized_weights_kept(model):
                hidden = self._hidden(model, sample, keep_logits=True)
                want = self._logits.float()
                logits = torch.nn.functional.linear(hidden.to(self.head.weight.dtype), self.head.weight, self.head.bias)
                got, _ = self.transform.apply(logits.float().clone())
        finally:
            self._logits = None
            model.train(was_training)
        exact = compute_dtype_for(hidden, self.head.weight) == torch.float32
        tol = (1e-4 if exact else 3e-2) * max(1.0, float(want.abs().max()))
        ok = want.shape == got.shape and float((want - got).abs().max()) <= tol
        if not ok:
            kind = getattr(getattr(model, "config", None), "model_type", "?")
            self.note = (f"model type {kind}: its logits are not lm_head(hidden) with a known scaling or soft-capping, "
                         "so the loss uses the full logits (more memory)")
        return ok


@contextlib.contextmanager
def _quantized_weights_kept(model: Any):
    """bitsandbytes' 4-bit layers on a CPU with AVX512-BF16 repack their weights for another kernel the
    first time they run in eval mode without gradients (and unpack them when a state dict is saved);
    the two kernels round differently. The check must not switch the run's kernel (nor a group's,
    whose other jobs save while one trains), so a layer it repacked is unpacked again, as bnb's save does."""
    unpacked = [m.weight for m in model.modules() if _packed_for_cpu(getattr(m, "weight", None)) is False]
    try:
        yield
    finally:
        for weight in unpacked:
            if _packed_for_cpu(weight):
                from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

                weight.data, weight.quant_state = _convert_weight_packed_for_cpu_inverse(weight.data, weight.quant_state)


def _packed_for_cpu(weight: Any) -> bool | None:
    """None: not a 4-bit weight; else whether it is in bitsandbytes' CPU-packed layout."""
    state = getattr(weight, "quant_state", None)
    return None if state is None else bool(getattr(state, "packing_format_for_cpu", False))
