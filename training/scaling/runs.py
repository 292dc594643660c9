"""The scaling experiment's runs: one model trained at one sequence length and seed, evaluated.

A run is the trainer's own step (train.train_step: streaming BPTT, Muon + AdamW, clipping) on
the trainer's own loader (window mode, split by repository), with batch = frames_per_step / L.
Its clock counts what a training run costs: fetching the batch and the step, not evaluation.

Evaluation scores every run on the same held-out windows (HeldOutWindows): eval_windows
windows of max(L) frames from the held-out repository, each from the initial state, so that
position p of a window has had exactly p frames of context whatever L the model was trained at.
The context control scores the same frames with the state reset every `control_context` frames.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ghframes.errors import GhframesError
from ghframes.store.frames import open_dataset

from ..config import PRESET_TRAINING, TrainConfig
from ..distributed import to_device
from ..model import ActionModel, ModelConfig, model_config
from ..optim import lr_multiplier
from ..streaming import streaming_forward
from ..train import build_model, check_batch, make_loader, next_batch, train_step
from . import Preset

EVAL_GROUP = 4  # held-out windows scored at once (bounds the frame-head's activations)
STEP_KEYS = ("frames", "cursor", "actions", "mask", "reset", "fg", "bg", "attrs")


def run_config(preset: Preset, data: str, out: Path, length: int, seed: int) -> TrainConfig:
    """The trainer settings of the run at sequence length `length` with `seed`."""
    settings = {
        **PRESET_TRAINING.get(preset.model_preset, {}),
        "data": data,
        "out": str(out),
        "mode": "window",
        "split_by": "repo",
        "seq_len": length,
        "batch_size": preset.batch_size(length),
        "steps": preset.steps,
        "seed": seed,
        "progress": False,
        "plot": False,
        **preset.train,
    }
    settings["chunk_len"] = min(settings.get("chunk_len", 16), length)
    return TrainConfig(**settings)


def amp_for(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 where the trainer would use it (--amp auto on a GPU, or bf16), else None."""
    bf16 = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
    return torch.bfloat16 if bf16 else None


def model_for(preset: Preset, source) -> ModelConfig:
    return dataclasses.replace(
        model_config(preset.model_preset, **preset.model),
        char_vocab=source.char_vocab,
        action_vocab=len(source.action_names),
    )


class HeldOutWindows:
    """The held-out windows every run is scored on, loaded once and kept in memory."""

    def __init__(self, preset: Preset, data: str, device: torch.device):
        cfg = run_config(preset, data, Path("."), preset.eval_length, 0)
        cfg = dataclasses.replace(cfg, batch_size=preset.eval_windows)
        source = make_loader(cfg, "eval", 0, 1)
        if (source.max_seq_len or 0) < preset.eval_length:
            raise GhframesError(
                f"{data}: no held-out session has {preset.eval_length} frames (the longest has "
                f"{source.max_seq_len}); render with a larger --max-frames-per-session"
            )
        batch, _ = next_batch(source, iter(source), f"{data} (held-out split)")
        rows = batch["mask"].all(1)  # whole windows only
        if int(rows.sum()) < 2:
            raise GhframesError(
                f"{data}: the held-out split holds {int(rows.sum())} window(s) of "
                f"{preset.eval_length} frames; the bootstrap needs at least 2"
            )
        self.batch = to_device({k: batch[k][rows] for k in STEP_KEYS if k in batch}, device)
        held = {source.sessions[i].id for i in source.split_indices}
        self.repos = sorted({s.repo for s in open_dataset(data).sessions() if s.id in held})
        self.sessions = len(source.split_indices)
        self.count, self.length = int(rows.sum()), preset.eval_length
        self.control_context = preset.control_context

    @torch.no_grad()
    def losses(
        self,
        model: ActionModel,
        chunk_len: int,
        context: int | None = None,
        amp: torch.dtype | None = None,
    ) -> np.ndarray:
        """float32 [windows, length]: each step's cross-entropy, the state starting fresh at
        each window's start (context None) or every `context` frames."""
        model.eval()
        out = []
        for a in range(0, self.count, EVAL_GROUP):
            part = {k: v[a : a + EVAL_GROUP] for k, v in self.batch.items()}
            if context is not None:
                part = _cut(part, context)
            loss = streaming_forward(model, part, None, chunk_len, amp).step_loss
            out.append(loss.reshape(-1, self.length).float().cpu().numpy())
        model.train()
        return np.concatenate(out)


def _cut(batch: dict, context: int) -> dict:
    """[B, T, ...] -> [B * T / context, context, ...], each piece starting fresh."""
    cut = {k: v.reshape(-1, context, *v.shape[2:]) for k, v in batch.items()}
    cut["reset"] = cut["reset"].clone()
    cut["reset"][:, 0] = True
    return cut


def train_run(
    preset: Preset,
    data: str,
    held_out: HeldOutWindows,
    length: int,
    seed: int,
    folder: Path,
    log: Callable[[str], None] = print,
) -> dict:
    """Train the run, write folder/L<length>-s<seed>.json and .npz; returns the JSON record."""
    cfg = run_config(preset, data, folder, length, seed)
    device = torch.device(cfg.device)
    amp = amp_for(cfg, device)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        source = make_loader(cfg, "train", 0, 1)
        model_cfg = model_for(preset, source)
        batches = iter(source)
        first, batches = next_batch(source, batches, data)
        check_batch(first, model_cfg, cfg, data)
        model, opt = build_model(cfg, model_cfg, device)
        available = sum(
            source.sessions[i].num_frames // length * length for i in source.split_indices
        )
        record = {
            "length": length,
            "seed": seed,
            "batch_size": cfg.batch_size,
            "steps": preset.steps,
            "frames_per_step": preset.frames_per_step,
            "train_frames": available,
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_loss": [],
            "evals": [],
            "preset": preset.fingerprint(),
        }
        losses, seconds, pending = [], 0.0, first
        eval_at = set(preset.eval_steps)
        for step in range(preset.steps):
            start = time.perf_counter()
            if pending is None:
                pending, batches = next_batch(source, batches, data)
            batch, pending = to_device(pending, device), None
            opt.set_lr(
                lr_multiplier(step, cfg.steps, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio)
            )
            result, _ = train_step(model, opt, batch, None, cfg, amp)
            seconds += time.perf_counter() - start
            record["train_loss"].append(round(result.loss, 5))
            if step + 1 in eval_at:
                step_losses = held_out.losses(model, cfg.chunk_len, amp=amp)
                losses.append(step_losses)
                record["evals"].append(
                    {
                        "step": step + 1,
                        "train_seconds": round(seconds, 3),
                        "frames_seen": (step + 1) * preset.frames_per_step,
                        "epoch": source.epoch,
                        "loss": round(float(step_losses.mean()), 5),
                    }
                )
                log(
                    f"L={length} seed {seed}: step {step + 1}/{preset.steps}, held-out loss "
                    f"{step_losses.mean():.4f} ({seconds:.0f} s of training)"
                )
        control = held_out.losses(model, cfg.chunk_len, held_out.control_context, amp)
        record["control_loss"] = round(float(control.mean()), 5)
        record["repeated_frames"] = max(0, preset.steps * preset.frames_per_step - available)
    finally:
        torch.set_num_threads(threads)
    np.savez_compressed(folder / f"L{length}-s{seed}.npz", losses=np.stack(losses), control=control)
    (folder / f"L{length}-s{seed}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


_HELD_OUT: dict = {}  # per process: the held-out windows, loaded once


def run_one(
    preset: Preset,
    data: str,
    length: int,
    seed: int,
    folder: Path,
    held_out: HeldOutWindows | None = None,
) -> None:
    """`train_run` with its log on stdout; in a worker process, the held-out windows are
    loaded by its first run and kept for the next."""
    if held_out is None:
        key = (preset.name, data)
        if key not in _HELD_OUT:
            device = torch.device(preset.train.get("device", "cpu"))
            _HELD_OUT[key] = HeldOutWindows(preset, data, device)
        held_out = _HELD_OUT[key]
    train_run(preset, data, held_out, length, seed, folder, lambda m: print(m, flush=True))


def time_steps(
    preset: Preset, data: str, rounds: int = 3, steps: int = 2, log: Callable[[str], None] = print
) -> dict[int, float]:
    """{L: seconds per optimizer step}, the lengths interleaved round by round (the median of
    `rounds`): on a shared machine the load changes over a whole experiment, and runs of one L
    after another would carry its changes into the comparison of their costs."""
    cfg = run_config(preset, data, Path("."), preset.lengths[0], 0)
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        setups = {}
        for length in preset.lengths:
            cfg = run_config(preset, data, Path("."), length, 0)
            source = make_loader(cfg, "train", 0, 1)
            model, opt = build_model(cfg, model_for(preset, source), torch.device(cfg.device))
            device = torch.device(cfg.device)
            batch = to_device(next_batch(source, iter(source), data)[0], device)
            amp = amp_for(cfg, device)
            train_step(model, opt, batch, None, cfg, amp)  # warm-up
            setups[length] = (cfg, model, opt, batch, amp)
        times: dict[int, list[float]] = {n: [] for n in preset.lengths}
        for _ in range(rounds):
            for length, (cfg, model, opt, batch, amp) in setups.items():
                start = time.perf_counter()
                for _ in range(steps):
                    train_step(model, opt, batch, None, cfg, amp)
                if cfg.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times[length].append((time.perf_counter() - start) / steps)
    finally:
        torch.set_num_threads(threads)
    result = {n: float(np.median(t)) for n, t in times.items()}
    log("seconds per step: " + ", ".join(f"L={n} {s:.3f}" for n, s in result.items()))
    return result


def finished_run(preset: Preset, folder: Path, length: int, seed: int) -> dict | None:
    """The stored record of a run of this preset, or None (absent, partial or of another)."""
    path = folder / f"L{length}-s{seed}.json"
    try:
        record = json.loads(path.read_text())
        with np.load(folder / f"L{length}-s{seed}.npz") as arrays:
            shapes = arrays["losses"].shape, arrays["control"].shape
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # absent, or cut short by an interruption: trained again
    if record.get("preset") != preset.fingerprint():
        return None
    expected = (len(preset.eval_steps), shapes[1][0], preset.eval_length)
    return record if shapes[0] == expected and not math.isnan(record["control_loss"]) else None
