"""Training benchmarks for `make bench`: tiny-preset throughput and what colour costs, streaming-
BPTT memory and time.

`bench_training()` returns `{"name", "value", "unit"}` rows like the other stages' benchmarks.
On a CPU it runs on one thread (figures per core, as DESIGN.md's targets are stated) and measures
memory as the peak bytes autograd holds (saved_tensors_hooks, parameters excluded); on a GPU it
reads torch.cuda.max_memory_allocated instead.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ghframes.training.config import TrainConfig
from ghframes.training.fake_batches import FakeBatches, random_batch
from ghframes.training.model import PRESETS, ActionModel
from ghframes.training.optim import Optimizers
from ghframes.training.streaming import SavedTensorMeter, plain_bptt, streaming_bptt
from ghframes.training.train import train_step


def _peak(model: ActionModel, fn, batch: dict, device: torch.device, **kwargs) -> tuple[int, float]:
    """(peak bytes, seconds) of one gradient computation."""
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    start = time.perf_counter()
    with SavedTensorMeter(list(model.parameters())) as meter:
        fn(model, batch, None, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, time.perf_counter() - start
    return meter.peak, time.perf_counter() - start


def bench_training(
    device: str = "cpu", short: int = 256, long: int = 4096, chunk_len: int = 32
) -> list[dict]:
    """Tiny-preset steps/s and timesteps/s; streaming BPTT memory (L=long vs L=short) and time
    against plain BPTT (at L=short, where plain BPTT fits)."""
    dev = torch.device(device)
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        rows = _throughput(dev)
        torch.manual_seed(0)
        cfg = dataclasses.replace(PRESETS["tiny"], action_vocab=len(FakeBatches.action_names))
        model = ActionModel(cfg).to(dev)
        short_batch = random_batch(cfg, 2, short, dev)
        _peak(model, streaming_bptt, short_batch, dev, chunk_len=chunk_len)  # warm-up
        mem_short, stream_s = min(
            (_peak(model, streaming_bptt, short_batch, dev, chunk_len=chunk_len) for _ in range(2)),
            key=lambda r: r[1],
        )
        plain_mem, plain_s = min(
            (_peak(model, plain_bptt, short_batch, dev) for _ in range(2)), key=lambda r: r[1]
        )
        mem_long, _ = _peak(
            model, streaming_bptt, random_batch(cfg, 2, long, dev), dev, chunk_len=chunk_len
        )
    finally:
        torch.set_num_threads(threads)
    what = "autograd saved-tensor" if dev.type == "cpu" else "CUDA allocated"
    return rows + [
        {
            "name": f"training.streaming_memory_L{long}_over_L{short}",
            "value": round(mem_long / mem_short, 3),
            "unit": "x",
        },
        {
            "name": f"training.streaming_peak_L{long}",
            "value": round(mem_long / 2**20, 2),
            "unit": f"MiB ({what})",
        },
        {
            "name": f"training.plain_peak_L{short}",
            "value": round(plain_mem / 2**20, 2),
            "unit": f"MiB ({what})",
        },
        {
            "name": f"training.streaming_time_over_plain_L{short}",
            "value": round(stream_s / plain_s, 3),
            "unit": "x",
        },
    ]


def _step_seconds(dev: torch.device, cfg: TrainConfig, colour: bool, steps: int) -> float:
    """Seconds per trainer step of the tiny preset (with or without colour) on synthetic data."""
    source = FakeBatches(cfg.batch_size, cfg.seq_len, cfg.mode)
    torch.manual_seed(0)
    model_cfg = dataclasses.replace(
        PRESETS["tiny"], action_vocab=len(source.action_names), colour=colour
    )
    model = ActionModel(model_cfg).to(dev)
    opt = Optimizers(model)
    batches = [
        {k: v.to(dev) for k, v in b.items()} for b, _ in zip(source, range(steps + 1), strict=False)
    ]
    amp = torch.bfloat16 if dev.type == "cuda" else None
    state = train_step(model, opt, batches[0], None, cfg, amp)[0].state  # warm-up
    start = time.perf_counter()
    for batch in batches[1:]:
        state = train_step(model, opt, batch, state, cfg, amp)[0].state
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return (time.perf_counter() - start) / steps


def _throughput(dev: torch.device, steps: int = 3) -> list[dict]:
    """The trainer's own step on the tiny preset with its default batch (8 x 64), synthetic data
    with colour; and its cost against the same model reading characters only."""
    cfg = TrainConfig(data="fake", device=dev.type)
    seconds = _step_seconds(dev, cfg, True, steps)
    monochrome = _step_seconds(dev, cfg, False, steps)
    per = "_per_core" if dev.type == "cpu" else f"_{dev.type}"
    shape = f"(batch {cfg.batch_size} x {cfg.seq_len})"
    return [
        {
            "name": f"training.tiny_steps_per_s{per}",
            "value": round(1 / seconds, 3),
            "unit": f"steps/s {shape}",
        },
        {
            "name": f"training.tiny_timesteps_per_s{per}",
            "value": round(cfg.batch_size * cfg.seq_len / seconds, 1),
            "unit": "timesteps/s",
        },
        {
            "name": f"training.tiny_colour_time_over_monochrome{per}",
            "value": round(seconds / monochrome, 3),
            "unit": "x (step time, colour model / characters-only model)",
        },
    ]
