"""Streaming BPTT: the same gradients as plain BPTT for every parameter (the colour tables
included: the batches carry fg, bg and attrs), autograd memory flat in L."""

from __future__ import annotations

import pytest
import torch
from test_model import SMALL

from ghframes.training.model import COLOUR_PLANES, ActionModel
from ghframes.training.streaming import (
    SavedTensorMeter,
    plain_bptt,
    streaming_bptt,
    streaming_forward,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_model(dtype=torch.float64) -> ActionModel:
    torch.manual_seed(0)
    model = ActionModel(SMALL).to(dtype)
    with torch.no_grad():  # move every parameter off its initial value (h0 = 0, biases = 0, ...)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def make_batch(b: int, t: int, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {
        "frames": torch.randint(0, SMALL.char_vocab, (b, t, SMALL.rows, SMALL.cols), generator=g),
        "cursor": torch.stack(
            [
                torch.randint(0, SMALL.rows, (b, t), generator=g),
                torch.randint(0, SMALL.cols, (b, t), generator=g),
            ],
            -1,
        ),
        "actions": torch.randint(0, SMALL.action_vocab, (b, t), generator=g),
        "reset": torch.zeros(b, t, dtype=torch.bool),
        "mask": torch.rand(b, t, generator=g) < 0.8,
    }
    for plane, values in COLOUR_PLANES.items():
        shape = (b, t, SMALL.rows, SMALL.cols)
        batch[plane] = torch.randint(0, values, shape, generator=g, dtype=torch.uint8)
    batch["reset"][0, 0] = True  # row 0 starts a session at the batch start, the others continue
    batch["reset"][1, 5] = True  # inside a chunk
    batch["reset"][:, 8] = True  # every row, on a chunk boundary (chunk_len 4)
    batch["reset"][2, 13] = True
    return batch


def gradients(model: ActionModel, fn, *args, **kwargs):
    model.zero_grad(set_to_none=True)
    out = fn(model, *args, **kwargs)
    return out, {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("carried", [False, True], ids=["learned-initial-state", "carried-state"])
@pytest.mark.parametrize("chunk_len", [1, 4, 5, 17])
def test_streaming_gradients_equal_plain_bptt(carried, chunk_len):
    model = make_model()
    batch = make_batch(3, 17)
    state = None
    if carried:
        g = torch.Generator().manual_seed(2)
        state = tuple(
            torch.randn(2, 3, SMALL.d_model, generator=g, dtype=torch.float64) for _ in range(2)
        )
    plain, plain_grads = gradients(model, plain_bptt, batch, state)
    stream, stream_grads = gradients(model, streaming_bptt, batch, state, chunk_len=chunk_len)
    assert stream.loss == pytest.approx(plain.loss, rel=1e-12)
    for name, grad in plain_grads.items():
        assert grad.abs().max() > 0, f"{name}: no gradient at all, the comparison would be vacuous"
        torch.testing.assert_close(stream_grads[name], grad, rtol=1e-9, atol=1e-12, msg=name)
    torch.testing.assert_close(stream.step_loss, plain.step_loss, rtol=1e-12, atol=1e-12)
    assert torch.equal(stream.correct, plain.correct)
    for a, b in zip(stream.state, plain.state, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_streaming_gradients_float32():
    model = make_model(torch.float32)
    batch = make_batch(3, 17)
    _, plain_grads = gradients(model, plain_bptt, batch, None)
    _, stream_grads = gradients(model, streaming_bptt, batch, None, chunk_len=4)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(stream_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_streaming_forward_matches_and_carries_state():
    """Evaluation by chunks gives plain BPTT's loss, and two half batches with the state carried
    across give the same outputs as one batch (the truncated-BPTT carry is exact in forward)."""
    model = make_model()
    batch = make_batch(3, 16)
    plain, _ = gradients(model, plain_bptt, batch, None)
    whole = streaming_forward(model, batch, None, chunk_len=3)
    assert whole.loss == pytest.approx(plain.loss, rel=1e-12)
    first = streaming_forward(model, {k: v[:, :8] for k, v in batch.items()}, None, chunk_len=3)
    second = streaming_forward(
        model, {k: v[:, 8:] for k, v in batch.items()}, first.state, chunk_len=3
    )
    torch.testing.assert_close(torch.cat([first.step_loss, second.step_loss], 1), whole.step_loss)
    for a, b in zip(second.state, whole.state, strict=True):
        torch.testing.assert_close(a, b)


def autograd_peak(fn, seq_len: int, **kwargs) -> int:
    model = make_model(torch.float32)
    batch = make_batch(3, seq_len)
    with SavedTensorMeter(list(model.parameters())) as meter:
        fn(model, batch, None, **kwargs)
    assert meter.bytes == 0  # everything autograd saved was freed by the backward passes
    return meter.peak


def test_streaming_memory_is_flat_in_sequence_length():
    """Bytes held by autograd at the peak, counted with saved_tensors_hooks: streaming BPTT holds
    one chunk's graph whatever L is; plain BPTT (the control) holds the whole sequence's."""
    short, long = 64, 1024
    stream_short = autograd_peak(streaming_bptt, short, chunk_len=16)
    stream_long = autograd_peak(streaming_bptt, long, chunk_len=16)
    plain_short = autograd_peak(plain_bptt, short)
    plain_long = autograd_peak(plain_bptt, long)
    assert stream_long <= 1.05 * stream_short, (stream_short, stream_long)
    assert plain_long >= 0.8 * (long / short) * plain_short, (plain_short, plain_long)
    assert stream_short < plain_short  # and a chunk is cheaper than the whole


def test_meter_counts_shared_storage_once():
    x = torch.randn(1000, requires_grad=True)
    with SavedTensorMeter() as meter:
        y = x.exp()  # saves its result y (4,000 bytes)
        z = (y * y).sum()  # saves y twice more: the same storage, counted once
        assert meter.bytes == 4000
        z.backward()
    assert meter.bytes == 0
