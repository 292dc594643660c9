"""Train the action model: `python -m ghframes.training.train [--config run.toml] [flags]`.

`train(cfg, model_cfg)` is the whole run in one loop (a test can call it for two steps); `main`
parses the configuration (config.py: defaults < preset < file < environment < flags) and turns
bad input into one line on stderr. Under `torchrun` every process trains on its own part of the
data and gradients are averaged across processes each step (distributed.py).

Outputs in OUT: checkpoint.pt (checkpoint.py: model, optimizer, both configs, step, loader state
and carried LSTM state of every process), metrics.jsonl (one record per log interval and per
evaluation), loss.png, and tb/ with --tensorboard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ghframes.errors import GhframesError
from ghframes.text import shown

from .checkpoint import (
    check_checkpoint,
    check_predicts,
    process_entry,
    read_checkpoint,
    restore_entry,
    resume_path,
    save_checkpoint,
)
from .config import TrainConfig, build_parser, resolve
from .distributed import (
    Processes,
    average_gradients,
    broadcast_parameters,
    gather,
    processes,
    sum_over_processes,
    to_device,
)
from .evaluate import HeldOut
from .metrics import Accumulator, Recorder, memory_peaks, positions
from .model import COLOUR_PLANES, ActionModel, ModelConfig, State, describe
from .optim import Optimizers, lr_multiplier
from .streaming import SavedTensorMeter, StepOutput, plain_bptt, streaming_bptt
from .tokens import Tokenizer, check_tokenizer_data, saved_tokenizer

# -- data ---------------------------------------------------------------------------------------


def make_loader(
    cfg: TrainConfig,
    split: str,
    rank: int,
    world_size: int,
    colour: bool = True,
    tokenizer: Tokenizer | None = None,
):
    """The batch source of `split` ("train" or "eval") for process `rank` of `world_size`;
    `colour=False` reads characters only (a monochrome model decodes no colour planes). With
    `cfg.actions == "tokens"` its actions are tokens of `tokenizer` (None: one trained on the
    train split, FrameStream), and it has `tokenizer` and `keys` (tokens.py).

    `cfg.data == "fake"` gives the synthetic dev/test sessions (fake_batches.py; `cfg.split_by`
    does not apply, their train and eval sessions are generated apart); anything else is a DATA
    location read by training/loader.py's FrameStream, split by `cfg.split_by` for both splits.
    The trainer needs of the object:

    - iteration yielding dicts: frames int [B, T, 48, 160] character ids, actions long [B, T],
      cursor long [B, T, 2] (row, col), reset bool [B, T], mask bool [B, T] (plus session, t),
      and for a model with colour fg, bg, attrs uint8 [B, T, 48, 160] (palette values, the
      attribute bits; all 0 from shards without colour);
      `iter()` continues from the current state; StopIteration ends an epoch
    - state_dict() -> small dict, load_state_dict(dict) (GhframesError when the state is not
      valid for this source), set_epoch(int), epoch: int (the epoch it is in)
    - char_vocab: int (character ids are < char_vocab), action_names: list[str] (action id ->
      action string of schemas/actions.json), schema_version: str (frames schema of the shards),
      max_seq_len: int | None (longest window the mode can fill; None: any)
    - split: "eval" holds sessions that "train" never yields; rank/world_size partition the
      data so that processes see disjoint sessions
    """
    if cfg.data == "fake":
        from .fake_batches import FakeBatches

        if cfg.actions != "keys":
            raise GhframesError(
                f"--actions {cfg.actions} needs rendered frames to train its tokenizer on; the "
                "synthetic sessions (--data fake) have keys only"
            )

        return FakeBatches(
            cfg.batch_size, cfg.seq_len, cfg.mode, cfg.seed, split, rank, world_size, colour=colour
        )
    try:
        from .loader import FrameStream
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.loader":
            raise
        raise GhframesError(
            f"{cfg.data}: reading rendered frames needs training/loader.py (FrameStream), which "
            "this installation lacks; --data fake trains on synthetic sessions"
        ) from None
    return FrameStream(
        cfg.data,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        mode=cfg.mode,
        seed=cfg.seed,
        split=split,
        split_by=cfg.split_by,
        rank=rank,
        world_size=world_size,
        channels=None if colour else ("chars",),
        actions=cfg.actions,
        tokenizer=tokenizer,
        token_vocab=cfg.token_vocab,
    )


def check_source(cfg: TrainConfig, source, where: str) -> None:
    """Refuse data the run cannot use, before any training time is spent."""
    from ghframes.store import schema

    schema.load("frames").check_version(str(getattr(source, "schema_version", "")), where)
    longest = source.max_seq_len
    if longest is not None and cfg.seq_len > longest:
        raise GhframesError(
            f"{where}: seq_len {cfg.seq_len} is longer than any window the loader can fill in "
            f"mode {cfg.mode!r} (longest: {longest} steps); lower --seq-len or use --mode stream"
        )


def check_batch(batch: dict, model_cfg: ModelConfig, cfg: TrainConfig, where: str) -> None:
    """The first batch against the contract and the model (cheap; before the first step)."""
    expected = (cfg.batch_size, cfg.seq_len, model_cfg.rows, model_cfg.cols)
    if tuple(batch["frames"].shape) != expected:
        raise GhframesError(
            f"{where}: batch frames have shape {tuple(batch['frames'].shape)}, expected {expected}"
        )
    top = int(batch["frames"].max())
    if top >= model_cfg.char_vocab:
        raise GhframesError(
            f"{where}: frames hold character id {top}, but char_vocab is {model_cfg.char_vocab}"
        )
    if model_cfg.colour:
        missing = [p for p in COLOUR_PLANES if p not in batch]
        if missing:
            raise GhframesError(
                f"{where}: the batches have no colour planes ({', '.join(missing)}), but the model "
                "sees colour; train on characters only with --no-model-colour "
                "(GHFRAMES_MODEL_COLOUR=false, or colour = false under [model])"
            )
        for plane, values in COLOUR_PLANES.items():
            if batch[plane].shape != batch["frames"].shape:
                raise GhframesError(
                    f"{where}: batch {plane} has shape {tuple(batch[plane].shape)}, expected "
                    f"{expected}, the shape of frames"
                )
            top = int(batch[plane].max())
            if top >= values:
                raise GhframesError(
                    f"{where}: {plane} holds value {top}, but the model embeds {plane} 0..{values - 1}"
                )
    top = int(batch["actions"][batch["mask"]].max()) if batch["mask"].any() else 0
    if top >= model_cfg.action_vocab:
        raise GhframesError(
            f"{where}: actions hold id {top}, but the action vocabulary has {model_cfg.action_vocab}"
        )


def next_batch(source, batches: Iterator[dict], where: str) -> tuple[dict, Iterator[dict]]:
    """The next batch of `batches`, an iterator of `source`; at the end of an epoch (also a
    position resumed at the very end of one) the source's next epoch, reshuffled."""
    for _ in range(2):
        try:
            return next(batches), batches
        except StopIteration:
            source.set_epoch(source.epoch + 1)
            batches = iter(source)
    raise GhframesError(f"{where}: an epoch of the loader holds no batch")


def check_out(out: Path) -> None:
    """Refuse an OUT that cannot become a writable folder, creating nothing: the run folder
    is made only once the data, the resume point and the first batch have been checked."""
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "exists and is not a directory" if probe == out else f"{probe} is not a directory"
        raise GhframesError(f"--out {out}: {what}")
    # Try it: permission bits do not tell for root, read-only mounts or pseudo-filesystems.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ghframes-probe-", dir=probe))
    except OSError as err:
        raise GhframesError(
            f"--out {out}: cannot write the output directory ({err.strerror or err})"
        ) from None


def make_out(out: Path) -> None:
    """OUT created (checked by `check_out`; a race that removed its parent is still one line)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GhframesError(
            f"--out {out}: cannot write the output directory ({err.strerror or err})"
        ) from None


# -- one step -----------------------------------------------------------------------------------


def train_step(
    model: ActionModel,
    opt: Optimizers,
    batch: dict,
    state: State | None,
    cfg: TrainConfig,
    amp: torch.dtype | None = None,
    world_size: int = 1,
    meter: SavedTensorMeter | None = None,
) -> tuple[StepOutput, float]:
    """Gradient of one batch (streaming or plain BPTT from `state`), averaged over processes,
    clipped, applied. Returns what the step saw and the gradient norm before clipping."""
    with meter if meter is not None else contextlib.nullcontext():
        if cfg.bptt == "streaming":
            result = streaming_bptt(model, batch, state, cfg.chunk_len, amp)
        else:
            result = plain_bptt(model, batch, state, amp)
    if not math.isfinite(result.loss):
        raise GhframesError(
            f"loss is {result.loss}; lower the learning rates (--lr-muon, --lr-adamw)"
        )
    if world_size > 1:
        average_gradients(model, world_size)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or math.inf)
    opt.step()
    opt.zero_grad()
    return result, float(grad_norm)


# -- the run ------------------------------------------------------------------------------------


def build_model(
    cfg: TrainConfig, model_cfg: ModelConfig, device: torch.device
) -> tuple[ActionModel, Optimizers]:
    """The model's initial weights from `cfg.seed` (the same on every process), its optimizers."""
    torch.manual_seed(cfg.seed)
    model = ActionModel(model_cfg).to(device)
    opt = Optimizers(
        model,
        cfg.lr_muon,
        cfg.lr_adamw,
        (cfg.beta1, cfg.beta2),
        cfg.weight_decay,
        cfg.muon_weight_decay,
    )
    return model, opt


@dataclass
class TrainResult:
    """What a run leaves in memory besides OUT: the trained model and its records."""

    model: ActionModel
    step: int
    out: Path
    last: dict  # the last training metrics record
    evals: list[dict]  # every held-out evaluation record


def train(
    cfg: TrainConfig,
    model_cfg: ModelConfig,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train for cfg.steps steps (or until cfg.stop_at); resume from cfg.resume if given."""
    with processes(cfg, os.environ if env is None else env) as procs:
        log = log if procs.main else (lambda _: None)
        out, device = Path(cfg.out), procs.device
        check_out(out)
        bf16 = cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
        amp = torch.bfloat16 if bf16 else None

        # Everything that can be wrong with the input is checked before the model is built.
        path = resume_path(cfg)
        ckpt = read_checkpoint(path) if path else None
        if ckpt:
            check_predicts(ckpt, path, cfg.actions)
        rank, world, colour = procs.rank, procs.world_size, model_cfg.colour
        tokenizer = saved_tokenizer(ckpt, path, cfg.actions)  # a resume reuses its own
        tokens = {"tokenizer": tokenizer} if cfg.actions == "tokens" else {}
        source = make_loader(cfg, "train", rank, world, colour, **tokens)
        check_source(cfg, source, cfg.data)
        tokenizer = getattr(source, "tokenizer", None)
        tokens = {"tokenizer": tokenizer} if cfg.actions == "tokens" else {}
        held_out_source = make_loader(cfg, "eval", rank, world, colour, **tokens)
        check_source(cfg, held_out_source, f"{cfg.data} (held-out split)")
        action_names = list(source.action_names)
        vocab = len(action_names) if tokenizer is None else len(tokenizer)
        model_cfg = dataclasses.replace(model_cfg, char_vocab=source.char_vocab, action_vocab=vocab)
        # What metrics class each predicted id by: its key, or a token's first key.
        names = action_names if tokenizer is None else tokenizer.first_keys()
        step = 0
        if ckpt:
            if tokenizer is not None:
                check_tokenizer_data(tokenizer, source.data_key, path, cfg.data)
            check_checkpoint(ckpt, path, model_cfg, action_names, cfg, procs.world_size)
            step = ckpt["step"]
            try:
                source.load_state_dict(ckpt["loader_state"][procs.rank]["loader"])
            except GhframesError as err:
                raise GhframesError(f"{path}: {err}") from None
        first, batches = next_batch(source, iter(source), cfg.data)
        check_batch(first, model_cfg, cfg, cfg.data)
        batches = itertools.chain([first], batches)
        make_out(out)

        model, opt = build_model(cfg, model_cfg, device)
        state: State | None = None  # LSTM state carried across batches (stream mode)
        prev = torch.full((cfg.batch_size,), -1, device=device)  # last position of each row
        if ckpt:
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            state, prev = restore_entry(ckpt["loader_state"][procs.rank], device)
            log(f"resumed from {path} at step {step}")
        elif procs.world_size > 1:
            broadcast_parameters(model)
        held_out = HeldOut(held_out_source, names, cfg, procs, amp)
        log(f"model: {describe(model)}")
        if tokenizer is not None:
            log(f"actions: {len(tokenizer)} typed-text tokens ({len(action_names)} single keys)")
        log(
            f"data: {cfg.data}  mode {cfg.mode}  {procs.world_size} process(es) x {cfg.batch_size} x {cfg.seq_len} steps, {cfg.bptt} BPTT"
        )

        recorder = Recorder(out, step if ckpt else None, cfg.tensorboard, procs.main)
        acc = Accumulator(names, cfg.seq_len, device)
        meter = SavedTensorMeter(list(model.parameters()))
        stop = min(cfg.steps, cfg.stop_at or cfg.steps)
        last: dict = {}
        bar = _progress(cfg, procs, step, log)
        interval_start, interval_steps = time.perf_counter(), 0
        if cfg.eval_every and ckpt is None:  # the untrained model: where the curve starts
            _record_eval(held_out.evaluate(model, step), step, recorder, bar)
        model.train()
        while step < stop:
            # -- one step: batch, learning rate, gradient, update --
            raw, batches = next_batch(source, batches, cfg.data)
            batch = to_device(raw, device)
            if cfg.mode != "stream":  # every window starts from the initial state
                state, prev = None, torch.full_like(prev, -1)
            opt.set_lr(
                lr_multiplier(step, cfg.steps, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio)
            )
            result, grad_norm = train_step(
                model, opt, batch, state, cfg, amp, procs.world_size, meter
            )
            pos = positions(batch["reset"], prev)
            acc.add(result.step_loss, result.correct, batch["actions"], batch["mask"], pos)
            state, prev = result.state, pos[:, -1]
            step += 1
            interval_steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{result.loss:.3f}")

            # -- bookkeeping: metrics, held-out evaluation, checkpoint --
            if step % cfg.log_every == 0 or step == stop:
                seconds = time.perf_counter() - interval_start
                summary = acc.summary(sum_over_processes(procs))
                last = {
                    **summary,
                    "lr_muon": opt.muon.param_groups[0]["lr"],
                    "lr_adamw": opt.adamw.param_groups[0]["lr"],
                    "grad_norm": round(grad_norm, 5),
                    "epoch": source.epoch,
                    "steps_per_s": round(interval_steps / seconds, 4),
                    "timesteps_per_s": round(summary["timesteps"] / seconds, 2),
                    "memory": memory_peaks(meter, device),
                }
                recorder.write("train", step, last)
                interval_start, interval_steps = time.perf_counter(), 0
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                _record_eval(held_out.evaluate(model, step), step, recorder, bar)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == stop:
                every = gather(procs, process_entry(source.state_dict(), state, prev))
                if procs.main:
                    save_checkpoint(
                        out / "checkpoint.pt",
                        model=model,
                        optimizer=opt,
                        model_cfg=model_cfg,
                        train_cfg=cfg,
                        action_names=action_names,
                        step=step,
                        epoch=source.epoch,
                        loader_state=every,
                        tokenizer=None if tokenizer is None else tokenizer.to_dict(),
                    )
        bar.close()
        recorder.close(cfg.plot)
        log(
            f"step {step}: checkpoint {out / 'checkpoint.pt'}, metrics {out / 'metrics.jsonl'}"
            + (f", plot {out / 'loss.png'}" if cfg.plot else "")
        )
        return TrainResult(model, step, out, last, held_out.records)


def _record_eval(held: dict, step: int, recorder: Recorder, bar) -> None:
    """A held-out evaluation into the metrics, and one line for the person watching."""
    recorder.write("eval", step, held)
    bar.write(f"step {step}: held-out loss {held['loss']}, accuracy {held['accuracy']}")


class _NoBar:
    """Stands in for the progress bar when there is none: messages go to `log`."""

    def __init__(self, log: Callable[[str], None]):
        self.write = log

    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw) -> None: ...
    def close(self) -> None: ...


def _progress(cfg: TrainConfig, procs: Processes, step: int, log: Callable[[str], None]):
    if not (cfg.progress and procs.main):
        return _NoBar(log)
    from tqdm import tqdm

    return tqdm(
        total=min(cfg.steps, cfg.stop_at or cfg.steps),
        initial=step,
        unit="step",
        dynamic_ncols=True,
    )


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """The command line: 0 when done, 2 and one line on stderr for bad input, 130 on Ctrl-C."""
    env = dict(os.environ if env is None else env)
    args = build_parser().parse_args(argv)
    try:
        cfg, model_cfg, _ = resolve(args, env)
        train(cfg, model_cfg, env)
    except GhframesError as exc:
        print(f"train: error: {shown(exc)}", file=sys.stderr)  # paths, names from data
        return 2
    except KeyboardInterrupt:
        print("train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
