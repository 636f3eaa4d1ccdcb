"""train.offload_activations: the tensors a checkpointed forward saves for the backward (each decoder
layer's input, and little else) go to pinned host memory and come back when the backward needs them.

torch.autograd.graph.save_on_cpu does the moving, but it moves every saved tensor, weights included:
a frozen weight saved by a matmul outside the checkpointed layers (a full fine-tune's head, for one)
would cross PCIe twice a step. This is the same pair of saved-tensor hooks with two rules of its own:
tensors that share storage with the model's parameters stay where they are, and so do small ones
(a norm's statistics), whose copy costs more than it saves.

Non-reentrant checkpointing saves each layer's inputs through these hooks (torch's _NoopSaveInputs),
so the hooks see exactly the checkpoints. On a CPU the tensors already live in host memory: nothing
moves, but the hooks still count what they would move (the `offloaded_bytes` a run reports, and what
the CPU tests check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

MIN_BYTES = 1 << 16  # smaller saved tensors stay on the device


class ActivationOffload:
    """Context manager around a training forward; `offloaded_bytes`: moved (or, on a CPU, movable)
    during the last forward."""

    def __init__(self, model: Any, min_bytes: int = MIN_BYTES) -> None:
        self.min_bytes = min_bytes
        self.parameter_storage = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.offloaded_bytes = 0
        self._hooks: Any = None

    def __enter__(self) -> ActivationOffload:
        import torch

        self.offloaded_bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)
        self._hooks = None

    def _pack(self, tensor: torch.Tensor) -> Any:
        size = tensor.numel() * tensor.element_size()
        if size < self.min_bytes or tensor.untyped_storage().data_ptr() in self.parameter_storage:
            return tensor
        self.offloaded_bytes += size
        if tensor.device.type != "cuda":
            return tensor  # already in host memory
        import torch

        host = torch.empty(tensor.size(), dtype=tensor.dtype, layout=tensor.layout, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        return (tensor.device, host)

    @staticmethod
    def _unpack(packed: Any) -> torch.Tensor:
        if isinstance(packed, tuple):
            device, host = packed
            return host.to(device, non_blocking=True)
        return packed
