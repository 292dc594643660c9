"""The GPU check of the scaling work: trainer throughput, memory and MFU at long sequences.

`python -m ghframes.training.scaling.throughput --preset paper --device cuda --lengths 1024,4096`

For each L: the trainer's own step (train.train_step: streaming BPTT, Muon + AdamW, clipping)
on random batches of the loader's format (throughput does not depend on what the frames show),
`--steps` timed after `--warmup`; reports frames/s, cells/s (48 x 160 cells a frame), the peak
memory of a step (torch.cuda.max_memory_allocated on a GPU; on a CPU the bytes autograd holds),
and MFU: the model FLOPs of a step (forward and backward of plain BPTT, counted once by
torch.utils.flop_counter on a short batch and scaled by frames; streaming BPTT's recompute is
not counted, as MFU's convention is) per second over the chip's bf16 dense peak (`--peak-tflops`,
or a known chip's from its name). Streaming BPTT's promise is that the peak stays flat as L grows.

Written for a device session: one short run, JSON to --json. Tested on a CPU with a small model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence

import torch

from ghframes.errors import GhframesError
from ghframes.text import shown

from ..config import PRESET_TRAINING, TrainConfig
from ..fake_batches import FakeBatches, random_batch
from ..model import PRESETS, ActionModel
from ..optim import Optimizers
from ..streaming import SavedTensorMeter, plain_bptt
from ..train import train_step

# bf16 dense peak, TFLOP/s, of chips a session may be lent (vendor datasheets, SXM parts)
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def flops_per_frame(model: ActionModel, device: torch.device, amp) -> float:
    """Model FLOPs of one frame's forward and backward (plain BPTT on a 2 x 8 batch)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = random_batch(model.cfg, 2, 8, device)
    counter = FlopCounterMode(display=False)
    with counter:
        plain_bptt(model, batch, None, amp)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 16


def measure(
    preset: str,
    device: str,
    lengths: Sequence[int],
    batch_size: int,
    steps: int,
    warmup: int,
    amp: str,
    peak: float | None = None,
    model_overrides: dict | None = None,
) -> dict:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GhframesError(f"--device {device}: torch sees no CUDA device here")
    dtype = torch.bfloat16 if amp == "bf16" else None
    torch.manual_seed(0)
    cfg_model = dataclasses.replace(
        PRESETS[preset], action_vocab=len(FakeBatches.action_names), **(model_overrides or {})
    )
    model = ActionModel(cfg_model).to(dev)
    opt = Optimizers(model)
    per_frame = flops_per_frame(model, dev, dtype)
    chip_peak = peak_tflops(dev, peak)
    rows = []
    for length in lengths:
        cfg = TrainConfig(
            data="fake",
            device=device,
            seq_len=length,
            batch_size=batch_size,
            **{k: v for k, v in PRESET_TRAINING.get(preset, {}).items() if k == "chunk_len"},
        )
        batch = random_batch(cfg_model, batch_size, length, dev)
        for _ in range(warmup):
            train_step(model, opt, batch, None, cfg, dtype)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        meter = SavedTensorMeter(list(model.parameters()))
        start = time.perf_counter()
        for _ in range(steps):
            train_step(model, opt, batch, None, cfg, dtype, meter=meter)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = (time.perf_counter() - start) / steps
        frames = batch_size * length / seconds
        memory = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else meter.peak
        rows.append(
            {
                "L": length,
                "batch": batch_size,
                "seconds_per_step": round(seconds, 4),
                "frames_per_s": round(frames, 1),
                "cells_per_s": round(frames * cfg_model.rows * cfg_model.cols, 1),
                "peak_memory_bytes": int(memory),
                "memory_kind": "cuda max_memory_allocated" if dev.type == "cuda" else "autograd",
                "tflops": round(per_frame * frames / 1e12, 3),
                "mfu": round(per_frame * frames / (chip_peak * 1e12), 4) if chip_peak else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return {
        "preset": preset,
        "device": name,
        "amp": amp,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_flops_per_frame": per_frame,
        "peak_tflops": chip_peak,
        "rows": rows,
        "memory_long_over_short": round(
            rows[-1]["peak_memory_bytes"] / rows[0]["peak_memory_bytes"], 3
        )
        if len(rows) > 1 and rows[0]["peak_memory_bytes"]
        else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.training.scaling.throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--preset", default="paper", choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--lengths", default="1024,4096", help="comma-separated L values")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per L")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", default="bf16", choices=("bf16", "off"))
    parser.add_argument("--peak-tflops", type=float, help="the chip's bf16 dense peak")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    try:
        lengths = [int(v) for v in args.lengths.split(",") if v.strip()]
        if not lengths or min(lengths) < 1 or args.batch_size < 1 or args.steps < 1:
            raise GhframesError(
                f"--lengths {args.lengths!r}, --batch-size, --steps: positive integers expected"
            )
        result = measure(
            args.preset, args.device, lengths, args.batch_size, args.steps, args.warmup,
            args.amp, args.peak_tflops,
        )  # fmt: skip
    except ValueError:
        print(f"throughput: error: --lengths {shown(args.lengths)}: not integers", file=sys.stderr)
        return 2
    except GhframesError as exc:
        print(f"throughput: error: {shown(exc)}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
