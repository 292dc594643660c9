"""Train the action model: `python -m training.train [--config run.toml] [flags]`.

`train(cfg, model_cfg)` is the whole run in one loop (a test can call it for two steps); `main`
parses the configuration (config.py: defaults < preset < file < environment < flags) and turns
bad input into one line on stderr. Under `torchrun` every process trains on its own part of the
data and gradients are averaged across processes each step (see `average_gradients`).

Outputs in OUT: checkpoint.pt (model, optimizer, both configs, step, loader state and carried
LSTM state of every process), metrics.jsonl (one record per log interval and per evaluation),
loss.png, and tb/ with --tensorboard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ghframes.errors import GhframesError

from .config import TrainConfig, build_parser, resolve
from .metrics import Accumulator, MetricsLog, plot_losses, positions, rss_peak_bytes
from .model import ActionModel, ModelConfig, State, describe
from .optim import Optimizers, lr_multiplier
from .streaming import SavedTensorMeter, StepOutput, plain_bptt, streaming_bptt, streaming_forward

CHECKPOINT_FORMAT = "ghframes.training.checkpoint/1"


# -- data ---------------------------------------------------------------------------------------


def make_loader(cfg: TrainConfig, split: str, rank: int, world_size: int):
    """The batch source of `split` ("train" or "eval") for process `rank` of `world_size`.

    `cfg.data == "fake"` gives the synthetic dev/test sessions (fake_batches.py; `cfg.split_by`
    does not apply, their train and eval sessions are generated apart); anything else is a DATA
    location read by training/loader.py's FrameStream, split by `cfg.split_by` for both splits.
    The trainer needs of the object:

    - iteration yielding dicts: frames int [B, T, 48, 160] character ids, actions long [B, T],
      cursor long [B, T, 2] (row, col), reset bool [B, T], mask bool [B, T] (plus session, t);
      `iter()` continues from the current state; StopIteration ends an epoch
    - state_dict() -> small dict, load_state_dict(dict), set_epoch(int)
    - char_vocab: int (character ids are < char_vocab), action_names: list[str] (action id ->
      action string of schemas/actions.json), schema_version: str (frames schema of the shards),
      max_seq_len: int | None (longest window the mode can fill; None: any)
    - split: "eval" holds sessions that "train" never yields; rank/world_size partition the
      data so that processes see disjoint sessions
    """
    if cfg.data == "fake":
        from .fake_batches import FakeBatches

        return FakeBatches(cfg.batch_size, cfg.seq_len, cfg.mode, cfg.seed, split, rank, world_size)
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
    top = int(batch["actions"][batch["mask"]].max()) if batch["mask"].any() else 0
    if top >= model_cfg.action_vocab:
        raise GhframesError(
            f"{where}: actions hold id {top}, but the action vocabulary has {model_cfg.action_vocab}"
        )


def to_device(batch: dict, device: torch.device) -> dict:
    pin = device.type == "cuda"
    return {
        k: (v.pin_memory().to(device, non_blocking=True) if pin else v.to(device))
        if torch.is_tensor(v)
        else v
        for k, v in batch.items()
    }


# -- processes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_processes(cfg: TrainConfig, env: Mapping[str, str]) -> Processes:
    """One process, or this one of torchrun's (RANK, WORLD_SIZE, LOCAL_RANK in `env`)."""
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", "0"))
    if cfg.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GhframesError(f"device {cfg.device!r}: no CUDA GPU is available to this process")
        device = torch.device("cuda", local if world > 1 else torch.device(cfg.device).index or 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world
        )
    return Processes(rank, world, device)


def average_gradients(model: ActionModel, world_size: int) -> None:
    """Mean of every gradient over the processes, in one all_reduce of a flat buffer.

    This is what DistributedDataParallel does, done by hand: DDP's hooks expect one forward and
    one backward per step, while streaming BPTT runs one forward pass and then a recompute and a
    backward pass per chunk. A parameter no process computed a gradient for (the learned initial
    state when no row reset) keeps grad None, so that AdamW leaves it alone as it would in one
    process; one that only some processes reached counts as zero on the others.
    """
    params = list(model.parameters())
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    reached = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    flat = torch.cat([g.flatten() for g in grads] + [reached])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p, g, anyone in zip(params, grads, flat[-len(params) :].tolist(), strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(p).clone() if anyone else None
        offset += g.numel()


def _sum_over_processes(procs: Processes) -> Callable[[torch.Tensor], None] | None:
    return (lambda t: dist.all_reduce(t)) if procs.world_size > 1 else None


def _gather(procs: Processes, obj):
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if procs.world_size == 1:
        return [obj]
    items = [None] * procs.world_size
    dist.all_gather_object(items, obj)
    return items


# -- checkpoints --------------------------------------------------------------------------------


def vocab_digest(action_names: list[str]) -> str:
    return hashlib.sha256("\n".join(action_names).encode()).hexdigest()[:16]


def read_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as err:
        raise GhframesError(f"{path}: cannot read checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise GhframesError(
            f"{path}: not a ghframes training checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return ckpt


def check_checkpoint(
    ckpt: dict,
    path: Path,
    model_cfg: ModelConfig,
    action_names: list[str],
    data: str,
    world_size: int,
    split_by: str,
) -> None:
    """Refuse to resume from a checkpoint the run does not match."""
    theirs = ckpt["action_names"]
    if theirs != action_names:
        first = next(
            (i for i, (a, b) in enumerate(zip(action_names, theirs, strict=False)) if a != b),
            min(len(theirs), len(action_names)),
        )
        mine_at = repr(action_names[first]) if first < len(action_names) else "(none)"
        theirs_at = repr(theirs[first]) if first < len(theirs) else "(none)"
        raise GhframesError(
            f"{path}: the action vocabulary of {data} ({len(action_names)} actions) does not match "
            f"the checkpoint's ({len(theirs)} actions): first difference at id {first}: "
            f"{mine_at} in the data, {theirs_at} in the checkpoint"
        )
    saved = ckpt["model_config"]
    mine = dataclasses.asdict(model_cfg)
    diff = [
        f"{k}={saved.get(k)!r} (checkpoint) vs {mine[k]!r} (this run)"
        for k in mine
        if _plain(saved.get(k)) != _plain(mine[k])
    ]
    if diff:
        raise GhframesError(f"{path}: checkpoint is of another model config: " + ", ".join(diff))
    saved_split = ckpt["train_config"].get("split_by", "session")  # older ones: by session
    if saved_split != split_by:
        raise GhframesError(
            f"{path}: checkpoint split its held-out data by {saved_split!r}, this run by "
            f"{split_by!r}: train and held-out sessions differ; resume with --split-by {saved_split}"
        )
    if len(ckpt["loader_state"]) != world_size:
        raise GhframesError(
            f"{path}: checkpoint was written by {len(ckpt['loader_state'])} process(es), this run has "
            f"{world_size}; resume with the same number of processes"
        )


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write atomically: a temporary name, then rename."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def resume_path(cfg: TrainConfig) -> Path | None:
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        path = Path(cfg.out) / "checkpoint.pt"
        return path if path.exists() else None
    path = Path(cfg.resume)
    if not path.exists():
        raise GhframesError(f"--resume {cfg.resume}: no such checkpoint")
    return path


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


# -- evaluation ---------------------------------------------------------------------------------


def evaluate(
    model: ActionModel,
    source,
    start_state: dict,
    cfg: TrainConfig,
    acc: Accumulator,
    procs: Processes,
    amp,
) -> dict:
    """Loss and accuracy on `cfg.eval_batches` held-out batches, the same batches every time.

    Rows without a valid step are not computed: a held-out split of a few sessions leaves most
    of a stream batch's lanes empty. In stream mode each lane's state is kept for the next batch.
    """
    model.eval()
    source.load_state_dict(start_state)
    stream = cfg.mode == "stream"
    state: State | None = None
    prev = torch.full((cfg.batch_size,), -1, device=procs.device)
    batches = iter(source)
    for _ in range(cfg.eval_batches):
        try:
            batch = to_device(next(batches), procs.device)
        except StopIteration:
            break
        rows = batch["mask"].any(1).nonzero().flatten()
        if not len(rows):
            continue
        if stream and state is None:
            state = tuple(s.detach().clone() for s in model.initial_state(cfg.batch_size))
        batch = {key: value[rows] for key, value in batch.items()}
        start = (state[0][:, rows], state[1][:, rows]) if stream else None
        out = streaming_forward(model, batch, start, cfg.chunk_len, amp)
        pos = positions(batch["reset"], prev[rows] if stream else torch.full_like(rows, -1))
        acc.add(out.step_loss, out.correct, batch["actions"], batch["mask"], pos)
        if stream:
            state[0][:, rows], state[1][:, rows] = out.state
            prev[rows] = pos[:, -1]
    model.train()
    return acc.summary(_sum_over_processes(procs))


# -- the run ------------------------------------------------------------------------------------


@dataclass
class TrainResult:
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
    env = os.environ if env is None else env
    owns_group = not dist.is_initialized()  # a caller may have set up the process group itself
    procs = setup_processes(cfg, env)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, model_cfg, procs, log if procs.main else (lambda _: None))
    finally:
        torch.set_num_threads(threads_before)
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig, model_cfg: ModelConfig, procs: Processes, log: Callable[[str], None]
) -> TrainResult:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = procs.device
    amp = (
        torch.bfloat16
        if cfg.amp == "bf16" or (cfg.amp == "auto" and device.type == "cuda")
        else None
    )

    # Everything that can be wrong with the input is checked before the model is built.
    source = make_loader(cfg, "train", procs.rank, procs.world_size)
    check_source(cfg, source, cfg.data)
    held_out = make_loader(cfg, "eval", procs.rank, procs.world_size)
    check_source(cfg, held_out, f"{cfg.data} (held-out split)")
    action_names = list(source.action_names)
    model_cfg = dataclasses.replace(
        model_cfg, char_vocab=source.char_vocab, action_vocab=len(action_names)
    )
    path = resume_path(cfg)
    ckpt = read_checkpoint(path) if path else None
    step, epoch = 0, 0
    if ckpt:
        check_checkpoint(
            ckpt, path, model_cfg, action_names, cfg.data, procs.world_size, cfg.split_by
        )
        step, epoch = ckpt["step"], ckpt["epoch"]
        source.load_state_dict(ckpt["loader_state"][procs.rank]["loader"])
    batches = iter(source)
    first = next(batches)
    check_batch(first, model_cfg, cfg, cfg.data)

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
    state: State | None = None  # LSTM state carried across batches (stream mode)
    prev = torch.full((cfg.batch_size,), -1, device=device)  # last position of each row
    if ckpt:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        mine = ckpt["loader_state"][procs.rank]
        if mine["state"] is not None:
            state = (mine["state"][0].to(device), mine["state"][1].to(device))
        prev = mine["prev_position"].to(device)
        log(f"resumed from {path} at step {step}")
    elif procs.world_size > 1:
        for p in model.parameters():  # same seed already; make it certain
            dist.broadcast(p.data, 0)
    eval_start = held_out.state_dict()
    log(f"model: {describe(model)}")
    log(
        f"data: {cfg.data}  mode {cfg.mode}  {procs.world_size} process(es) x {cfg.batch_size} x {cfg.seq_len} steps, {cfg.bptt} BPTT"
    )

    metrics = MetricsLog(out / "metrics.jsonl", step if ckpt else None) if procs.main else None
    board = _tensorboard(out) if cfg.tensorboard and procs.main else None
    acc = Accumulator(action_names, cfg.seq_len, device)
    eval_acc = Accumulator(action_names, cfg.seq_len, device)
    meter = SavedTensorMeter(list(model.parameters()))
    reduce = _sum_over_processes(procs)
    stop = min(cfg.steps, cfg.stop_at or cfg.steps)
    last: dict = {}
    evals: list[dict] = []
    bar = _progress(cfg, procs, step, log)
    interval_start, interval_steps = time.perf_counter(), 0

    def record(split: str, values: dict) -> None:
        values = {"split": split, "step": step, **values}
        if metrics:
            metrics.write(values)
        if board:
            for key in ("loss", "accuracy", "loss_early", "loss_late"):
                if values.get(key) is not None:
                    board.add_scalar(f"{split}/{key}", values[key], step)

    def checkpoint() -> None:
        mine = {
            "loader": source.state_dict(),
            "state": None if state is None else (state[0].cpu(), state[1].cpu()),
            "prev_position": prev.cpu(),
        }
        every = _gather(procs, mine)
        if procs.main:
            save_checkpoint(
                out / "checkpoint.pt",
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "model_config": dataclasses.asdict(model_cfg),
                    "train_config": dataclasses.asdict(cfg),
                    "action_names": action_names,
                    "action_vocab_digest": vocab_digest(action_names),
                    "step": step,
                    "epoch": epoch,
                    "loader_state": every,
                },
            )

    def held_out_eval() -> None:
        held = evaluate(model, held_out, eval_start, cfg, eval_acc, procs, amp)
        record("eval", held)
        evals.append({"step": step, **held})
        bar.write(f"step {step}: held-out loss {held['loss']}, accuracy {held['accuracy']}")

    if cfg.eval_every and ckpt is None:
        held_out_eval()  # the untrained model: where the curve starts
    model.train()
    while step < stop:
        # -- one step: batch, learning rate, gradient, update --
        if first is not None:
            raw, first = first, None
        else:
            try:
                raw = next(batches)
            except StopIteration:  # end of an epoch: the loader reshuffles for the next one
                epoch += 1
                source.set_epoch(epoch)
                batches = iter(source)
                raw = next(batches)
        batch = to_device(raw, device)
        opt.set_lr(lr_multiplier(step, cfg.steps, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio))
        start = state if cfg.mode == "stream" else None
        result, grad_norm = train_step(model, opt, batch, start, cfg, amp, procs.world_size, meter)
        pos = positions(batch["reset"], prev if cfg.mode == "stream" else torch.full_like(prev, -1))
        acc.add(result.step_loss, result.correct, batch["actions"], batch["mask"], pos)
        state, prev = result.state, pos[:, -1]
        step += 1
        interval_steps += 1
        bar.update(1)
        bar.set_postfix(loss=f"{result.loss:.3f}")

        # -- bookkeeping: metrics, held-out evaluation, checkpoint --
        if step % cfg.log_every == 0 or step == stop:
            seconds = time.perf_counter() - interval_start
            summary = acc.summary(reduce)
            last = {
                **summary,
                "lr_muon": opt.muon.param_groups[0]["lr"],
                "lr_adamw": opt.adamw.param_groups[0]["lr"],
                "grad_norm": round(grad_norm, 5),
                "epoch": epoch,
                "steps_per_s": round(interval_steps / seconds, 4),
                "timesteps_per_s": round(summary["timesteps"] / seconds, 2),
                "memory": _memory(meter, device),
            }
            record("train", last)
            interval_start, interval_steps = time.perf_counter(), 0
        if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
            held_out_eval()
        if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == stop:
            checkpoint()
    bar.close()
    if procs.main and cfg.plot and metrics:
        plot_losses(out / "metrics.jsonl", out / "loss.png")
    if board:
        board.close()
    if procs.main:
        log(
            f"step {step}: checkpoint {out / 'checkpoint.pt'}, metrics {out / 'metrics.jsonl'}"
            + (f", plot {out / 'loss.png'}" if cfg.plot else "")
        )
    return TrainResult(model, step, out, last, evals)


def _memory(meter: SavedTensorMeter, device: torch.device) -> dict:
    """Peak bytes since the last record: autograd's saved tensors, process RSS, GPU allocations."""
    memory = {"autograd_peak_bytes": meter.peak, "rss_peak_bytes": rss_peak_bytes()}
    meter.peak = meter.bytes
    if device.type == "cuda":
        memory["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    return memory


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


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GhframesError(
            "--tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(str(out / "tb"))


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    args = build_parser().parse_args(argv)
    try:
        cfg, model_cfg, _ = resolve(args, env)
        train(cfg, model_cfg, env)
    except GhframesError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
