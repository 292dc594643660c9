"""Streaming backpropagation through time: exact gradients with autograd memory flat in length.

Plain BPTT keeps the whole graph of a length-L sequence alive until backward: memory grows as
L x (frame-head activations + LSTM activations). Streaming BPTT splits the sequence into chunks
of `chunk_len` steps and never holds more than one chunk's graph:

1. Forward, no graph: the frame-head embeds each chunk; the vectors are parked on the host
   (pinned memory when training on a GPU), so the device holds none of them.
2. Forward, no graph: the LSTM runs over those vectors chunk by chunk; only its state at each
   chunk boundary is kept (2 x layers x B x D floats per boundary).
3. Backward, chunks in reverse order: recompute chunk k with the graph (frame-head, LSTM from
   the boundary state, action head), backpropagate its share of the loss together with the
   gradient that chunk k+1 sent into the state at its start, and pass the gradient of the state
   at chunk k's own start on to chunk k-1.

The gradient is the same as plain BPTT's (the chain rule split at the boundary states); the
cost is one extra forward pass (about 4/3 of plain BPTT's compute). `plain_bptt` is the
reference that tests compare against, and the trainer's `--bptt plain` option.

Both functions take a batch (dict of tensors, see train.py; its colour planes fg, bg, attrs go
to the frame-head beside the frames, chunk by chunk like them) and the state to start from (None:
the learned initial state; a detached state: truncated BPTT across batches), accumulate
parameter gradients into `.grad`, and return a `StepOutput`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .model import ActionModel, State, colour_planes, num_valid, step_losses


@dataclass
class StepOutput:
    """What one training step learned about the batch, all detached."""

    loss: float  # mean cross-entropy over valid steps: the value whose gradient was taken
    step_loss: torch.Tensor  # float [B, T], 0 at invalid steps
    correct: torch.Tensor  # bool [B, T], argmax == action
    state: State  # (h, c) after the last step, detached: the next batch's start in TBPTT
    in_top_k: torch.Tensor | None = None  # bool [B, T], action among the k largest logits
    # (streaming_forward with top_k; training steps leave it None)


def autocast_for(device: torch.device, amp: torch.dtype | None):
    """bf16 autocast on a GPU (frame-head and action head; the LSTM opts out), else nothing."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp)


def plain_bptt(
    model: ActionModel, batch: dict, state: State | None = None, amp: torch.dtype | None = None
) -> StepOutput:
    """Forward the whole sequence with its graph, then one backward."""
    actions, mask = batch["actions"], batch["mask"]
    device = actions.device
    with autocast_for(device, amp):
        x = model.embed(batch["frames"], batch["cursor"], **colour_planes(batch))  # (B, T, D)
        y, new_state = model.core(x, state, batch["reset"])
        logits = model.head(y)  # (B, T, A)
    step_loss = step_losses(logits, actions, mask)
    loss = step_loss.sum() / num_valid(actions, mask)
    loss.backward()
    return StepOutput(
        loss.item(),
        step_loss.detach(),
        logits.detach().argmax(-1) == actions,
        (new_state[0].detach(), new_state[1].detach()),
    )


def streaming_bptt(
    model: ActionModel,
    batch: dict,
    state: State | None = None,
    chunk_len: int = 32,
    amp: torch.dtype | None = None,
) -> StepOutput:
    """Chunked forward without graph, then recompute-and-backward chunk by chunk in reverse."""
    frames, cursor, actions = batch["frames"], batch["cursor"], batch["actions"]
    reset, mask = batch["reset"], batch["mask"]
    device = actions.device
    seq_len = actions.shape[1]
    chunks = [slice(s, min(s + chunk_len, seq_len)) for s in range(0, seq_len, chunk_len)]
    # Every chunk's loss is divided by the whole sequence's count, so the chunk losses sum to
    # exactly the plain-BPTT loss.
    total = num_valid(actions, mask)

    # 1. No graph: every chunk's frame vectors, parked on the host.
    pin = device.type == "cuda"
    parked = []
    with torch.no_grad():
        for c in chunks:
            with autocast_for(device, amp):
                x = model.embed(frames[:, c], cursor[:, c], **colour_planes(batch, c))  # (B, C, D)
            host = torch.empty(x.shape, dtype=x.dtype, pin_memory=pin)
            parked.append(host.copy_(x, non_blocking=pin))
        # 2. No graph: the LSTM over the parked vectors; keep the state at each chunk boundary.
        boundary: list[State | None] = [state]
        for c, host in zip(chunks, parked, strict=True):
            _, state = model.core(host.to(device, non_blocking=pin), state, reset[:, c])
            boundary.append(state)
    del parked  # phase 3 recomputes the vectors, with the graph

    # 3. Reverse order: recompute with graph, backward, hand the state gradient back.
    grad_out: State | None = None  # d loss / d (state at the end of the current chunk)
    chunk_losses, chunk_correct = [], []  # per chunk, last chunk first
    for k in reversed(range(len(chunks))):
        c = chunks[k]
        start = boundary[k]
        # The boundary state is a leaf whose .grad we read, except at the start of the batch:
        # there it is either a constant (TBPTT carry) or the learned initial state (start=None,
        # built inside core so the gradient reaches its parameters).
        if k > 0:
            start = (start[0].detach().requires_grad_(), start[1].detach().requires_grad_())
        with autocast_for(device, amp):
            x = model.embed(frames[:, c], cursor[:, c], **colour_planes(batch, c))  # (B, C, D)
            y, end = model.core(x, start, reset[:, c])
            logits = model.head(y)  # (B, C, A)
        chunk_loss = step_losses(logits, actions[:, c], mask[:, c])  # (B, C)
        loss = chunk_loss.sum() / total
        outputs, grads = [loss], [None]
        for tensor, grad in zip(end, grad_out or (None, None), strict=True):
            if grad is not None:
                outputs.append(tensor)
                grads.append(grad)
        torch.autograd.backward(outputs, grads)
        if k > 0:
            # None where no gradient reaches the start (every row reset on the chunk's first step)
            start_grads = (start[0].grad, start[1].grad)
            grad_out = None if all(g is None for g in start_grads) else start_grads
        chunk_losses.append(chunk_loss.detach())
        chunk_correct.append(logits.detach().argmax(-1) == actions[:, c])
    step_loss = torch.cat(chunk_losses[::-1], 1)  # (B, T)
    correct = torch.cat(chunk_correct[::-1], 1)
    final = boundary[-1]
    loss = (step_loss.sum() / total).item()
    return StepOutput(loss, step_loss, correct, (final[0].detach(), final[1].detach()))


@torch.no_grad()
def streaming_forward(
    model: ActionModel,
    batch: dict,
    state: State | None = None,
    chunk_len: int = 32,
    amp: torch.dtype | None = None,
    top_k: int = 0,
) -> StepOutput:
    """Evaluation: the forward pass by chunks, no graph at all; loss and accuracy, no gradient.
    With `top_k` > 0 also whether each action is among the k most likely (`in_top_k`)."""
    actions, mask = batch["actions"], batch["mask"]
    seq_len = actions.shape[1]
    chunk_losses, chunk_correct, chunk_top = [], [], []
    for s in range(0, seq_len, chunk_len):
        c = slice(s, min(s + chunk_len, seq_len))
        with autocast_for(actions.device, amp):
            x = model.embed(batch["frames"][:, c], batch["cursor"][:, c], **colour_planes(batch, c))
            y, state = model.core(x, state, batch["reset"][:, c])
            logits = model.head(y)  # (B, C, A)
        chunk_losses.append(step_losses(logits, actions[:, c], mask[:, c]))
        chunk_correct.append(logits.argmax(-1) == actions[:, c])
        if top_k:  # fewer than k logits above the action's: ties count in its favour, so
            # an argmax hit is always a top-k hit
            target = actions[:, c, None].clamp(0, logits.shape[-1] - 1)  # (B, C, 1)
            above = (logits > logits.gather(-1, target)).sum(-1)  # (B, C)
            chunk_top.append(above < top_k)
    step_loss, correct = torch.cat(chunk_losses, 1), torch.cat(chunk_correct, 1)  # (B, T)
    loss = (step_loss.sum() / num_valid(actions, mask)).item()
    in_top_k = torch.cat(chunk_top, 1) if top_k else None
    return StepOutput(loss, step_loss, correct, state, in_top_k)


class SavedTensorMeter:
    """Bytes held by autograd for backward, counted with `saved_tensors_hooks`; peak kept.

    Counts each storage once however many times it is saved (views share one), and leaves out
    the parameters (they live for the whole run whatever the sequence length). Use as a context
    manager around the forward and backward passes; it can be entered again (the peak stays
    until reset by the caller).
    """

    def __init__(self, exclude: list[torch.Tensor] | tuple = ()):
        self.exclude = {p.untyped_storage().data_ptr() for p in exclude}
        self.live: dict[int, list[int]] = {}  # storage pointer -> [bytes, times saved]
        self.bytes = 0
        self.peak = 0
        self._hooks = None

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0 or ptr in self.exclude:
            return tensor
        entry = self.live.get(ptr)
        if entry is None:
            self.live[ptr] = [storage.nbytes(), 1]
            self.bytes += storage.nbytes()
            self.peak = max(self.peak, self.bytes)
        else:
            entry[1] += 1
        return _Saved(self, ptr, tensor)

    @staticmethod
    def _unpack(saved):
        return saved.tensor if isinstance(saved, _Saved) else saved

    def _release(self, ptr: int) -> None:
        entry = self.live[ptr]
        entry[1] -= 1
        if entry[1] == 0:
            self.bytes -= entry[0]
            del self.live[ptr]


class _Saved:
    """A tensor held by autograd; when autograd frees it, the meter counts the bytes as freed."""

    __slots__ = ("meter", "ptr", "tensor")

    def __init__(self, meter: SavedTensorMeter, ptr: int, tensor: torch.Tensor):
        self.meter, self.ptr, self.tensor = meter, ptr, tensor

    def __del__(self) -> None:
        self.meter._release(self.ptr)
