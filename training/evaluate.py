"""Evaluation: the trainer's held-out loss, and `python -m ghframes.training.evaluate` of a checkpoint.

`evaluate` and `HeldOut` are what the trainer calls every --eval-every steps: loss and accuracy
on the same held-out batches every time. `main` evaluates a saved checkpoint on a split of DATA:

    python -m ghframes.training.evaluate --checkpoint C --data DATA [--split eval|train]
        [--batches N] [--batch-size B] [--seq-len L] [--mode stream|window] [--json OUT.json]

It reads the checkpoint with `ghframes.training.load` (tensors and plain data only) and the split
with the checkpoint's own run settings (split_by, seed, batch size, sequence length, mode, chunk
length) unless a flag overrides them, so that its held-out split is the run's. It reports loss,
next-action accuracy overall and by class (metrics.CLASSES: printable, <Enter>, <BS>, navigation,
save/quit, shell, other; a key pressed while the screen shows the shell is "shell"), top-5
accuracy and loss by position bucket: an aligned table on stdout, and the record as JSON
(--json FILE, or --json - for JSON alone on stdout and the table on stderr). Bad input is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from ghframes.errors import GhframesError
from ghframes.text import shown

from .chars import ACTION_NAMES
from .config import TrainConfig
from .distributed import Processes, processes, sum_over_processes, to_device
from .lstm import State
from .metrics import CLASS_LABELS, CLASSES, Accumulator, at_editor, positions
from .model import ActionModel
from .plan import MODES, SPLITS
from .streaming import streaming_forward
from .tokens import Tokenizer, typed_characters

TOP_K = 5  # the top-k accuracy an evaluation reports


def evaluate(
    model: ActionModel,
    source,
    start_state: dict,
    cfg: TrainConfig,
    acc: Accumulator,
    procs: Processes,
    amp: torch.dtype | None,
    num_batches: int | None = None,
) -> dict:
    """Loss and accuracy on `num_batches` batches of `source` from `start_state` on (None:
    `cfg.eval_batches`; 0: until the epoch ends). With `acc.top_k` also top-k and classes.

    Rows without a frame are not computed: a held-out split of a few sessions leaves most
    of a stream batch's lanes empty. In stream mode each lane's state is kept for the next batch.
    The record is summed over the processes. It also holds `loss_sum` (nats over the scored
    steps), `typed_chars` (the steps whose key types a printable character,
    tokens.typed_characters) and `loss_per_typed_char`, their ratio: the same measure for a
    model of keys and one of typed-text tokens (--actions tokens) on the same steps.
    """
    model.eval()
    source.load_state_dict(start_state)
    stream = cfg.mode == "stream"
    state: State | None = None
    prev = torch.full((cfg.batch_size,), -1, device=procs.device)
    names = getattr(source, "action_names", ACTION_NAMES)  # keys; unsaid: the schema's
    typed = torch.from_numpy(typed_characters(names)).to(procs.device)
    sums = torch.zeros(2, dtype=torch.float64, device=procs.device)  # loss, typed characters
    batches = iter(source)
    count = cfg.eval_batches if num_batches is None else num_batches
    for raw in itertools.islice(batches, count or None):
        batch = to_device(raw, procs.device)
        # With tokens, mask is False inside a token too: its frames are still read.
        keys = batch.get("keys", batch["actions"])
        real = batch["session"] >= 0 if "keys" in batch else batch["mask"]
        rows = real.any(1).nonzero().flatten()
        if not len(rows):
            continue
        if stream and state is None:
            state = tuple(s.detach().clone() for s in model.initial_state(cfg.batch_size))
        batch = {key: value[rows] for key, value in batch.items()}
        start = (state[0][:, rows], state[1][:, rows]) if stream else None
        out = streaming_forward(model, batch, start, cfg.chunk_len, amp, acc.top_k)
        pos = positions(batch["reset"], prev[rows] if stream else torch.full_like(rows, -1))
        editor = at_editor(batch["frames"]) if acc.top_k else None
        acc.add(
            out.step_loss, out.correct, batch["actions"], batch["mask"], pos, out.in_top_k, editor
        )
        chars = (typed[keys[rows]] & real[rows]).sum()
        sums += torch.stack([out.step_loss.double().sum(), chars.double()])
        if stream:
            state[0][:, rows], state[1][:, rows] = out.state
            prev[rows] = pos[:, -1]
    model.train()
    reduce = sum_over_processes(procs)
    if reduce is not None:
        reduce(sums)
    loss_sum, chars = sums.tolist()
    per_char = round(loss_sum / chars, 5) if chars else None
    extra = {"loss_sum": round(loss_sum, 3), "typed_chars": int(chars)}
    return {**acc.summary(reduce), **extra, "loss_per_typed_char": per_char}


class HeldOut:
    """The held-out split of a run: every evaluation starts from the loader position it had when
    the run began, so each one sees the same batches; `records` keeps them all, with their step."""

    def __init__(
        self,
        source,
        action_names: list[str],
        cfg: TrainConfig,
        procs: Processes,
        amp: torch.dtype | None,
    ):
        self.source, self.start = source, source.state_dict()
        self.acc = Accumulator(action_names, cfg.seq_len, procs.device)
        self.cfg, self.procs, self.amp = cfg, procs, amp
        self.records: list[dict] = []

    def evaluate(self, model: ActionModel, step: int) -> dict:
        """The record of one evaluation of `model` (also kept in `records`)."""
        held = evaluate(model, self.source, self.start, self.cfg, self.acc, self.procs, self.amp)
        self.records.append({"step": step, **held})
        return held


# -- the command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Every value is parsed as text and checked by `settings`, so that bad input is one line."""
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.training.evaluate",
        description="Evaluate a training checkpoint on a split of DATA: loss, next-action "
        "accuracy overall and by class, top-5 accuracy, loss by position.",
        epilog="Classes: a key pressed while the screen shows the shell (no editor title bar "
        "on row 0) is 'shell'; in the editor: printable (a character), <Enter>, <BS>, "
        "navigation (arrows, Home/End, PgUp/PgDn, word moves, go-to-line, search), save/quit "
        "(<C-s>, <C-q>), other (<Tab>, <Del>, <C-k>, <C-BS>, verbatim input, prompt cancels).",
    )
    add = parser.add_argument
    add("--checkpoint", metavar="C", help="the checkpoint.pt a training run wrote; required")
    add(
        "--data",
        metavar="DATA",
        help="rendered frames (a path or a pyarrow.fs URI such as s3://...), or fake for the "
        "synthetic sessions; required",
    )
    add(
        "--split",
        default="eval",
        help=f"which split: eval (held out by the run's --split-by) or train; one of "
        f"{', '.join(SPLITS)}; default eval",
    )
    add(
        "--batches",
        metavar="N",
        help="batches to evaluate; an integer >= 0, 0: the whole split (one epoch); default the "
        "run's --eval-batches (the batches its held-out evaluations saw)",
    )
    add("--batch-size", metavar="B", help="sequences per batch; an integer >= 1; default the run's")
    add("--seq-len", metavar="L", help="timesteps per sequence; an integer >= 1; default the run's")
    add("--mode", help=f"loader mode; one of {', '.join(MODES)}; default the run's")
    add(
        "--device",
        default="cpu",
        help="where to run the model; cpu, cuda or cuda:N; default cpu",
    )
    add(
        "--threads",
        metavar="N",
        help="torch CPU threads (0: torch's default); an integer >= 0; default the run's",
    )
    add(
        "--json",
        metavar="OUT",
        help="also write the record as JSON to OUT; -: JSON alone on stdout (the table on "
        "stderr); default none",
    )
    return parser


def _integer(args: argparse.Namespace, name: str, least: int) -> int | None:
    value = getattr(args, name)
    if value is None:
        return None
    flag = "--" + name.replace("_", "-")
    try:
        number = int(value)
    except ValueError:
        raise GhframesError(f"{flag} {value}: not an integer") from None
    if number < least:
        raise GhframesError(f"{flag} {value}: must be >= {least}")
    return number


def settings(args: argparse.Namespace, saved: TrainConfig) -> tuple[TrainConfig, int]:
    """The run's own settings (`saved`, from the checkpoint) with the flags' overrides, on
    `args.data`; and the number of batches (0: the whole split)."""
    overrides = {
        name: value
        for name, value in (
            ("batch_size", _integer(args, "batch_size", 1)),
            ("seq_len", _integer(args, "seq_len", 1)),
            ("threads", _integer(args, "threads", 0)),
            ("mode", args.mode),
        )
        if value is not None
    }
    batches = _integer(args, "batches", 0)
    cfg = dataclasses.replace(saved, data=args.data, device=args.device, **overrides)
    return cfg, saved.eval_batches if batches is None else batches


def run(args: argparse.Namespace) -> dict:
    """The evaluation record of `args` (see the module docstring); GhframesError for bad input."""
    from . import train as trainer  # its data checks; it imports this module for HeldOut
    from .checkpoint import check_actions, loaded_from, read_checkpoint

    if not args.checkpoint:
        raise GhframesError("--checkpoint is required: the checkpoint.pt of a training run")
    if not args.data:
        raise GhframesError(
            "--data is required: the rendered frames DATA (a path or s3:// URI), or fake"
        )
    if args.split not in SPLITS:
        raise GhframesError(f"--split {args.split}: unknown split; valid: {', '.join(SPLITS)}")
    if args.mode is not None and args.mode not in MODES:
        raise GhframesError(f"--mode {args.mode}: unknown mode; valid: {', '.join(MODES)}")
    if not (args.device == "cpu" or args.device.startswith("cuda")):
        raise GhframesError(f"--device {args.device}: unknown device; valid: cpu, cuda, cuda:N")
    path = Path(args.checkpoint)
    if path.is_dir():
        raise GhframesError(f"{path}: is a directory, not a checkpoint (try {path}/checkpoint.pt)")
    ckpt = read_checkpoint(path)
    loaded = loaded_from(ckpt, path)
    model_cfg = loaded.model_config
    cfg, num_batches = settings(args, loaded.train_config)
    if cfg.data == "fake" and num_batches == 0:
        raise GhframesError(
            "--batches 0: the synthetic sessions (--data fake) never end; give a number"
        )
    tokenizer = None
    if cfg.actions == "tokens":  # the checkpoint's own, applied to --data
        tokenizer = Tokenizer.from_dict(ckpt.get("tokenizer"), f"{path}: tokenizer")
        if len(tokenizer) != model_cfg.action_vocab:
            raise GhframesError(
                f"{path}: the tokenizer has {len(tokenizer)} tokens, the model predicts "
                f"{model_cfg.action_vocab}"
            )
    with processes(cfg, {}) as procs:  # one process whatever torchrun set
        where = f"{cfg.data} (split {args.split})"
        tokens = {"tokenizer": tokenizer} if tokenizer is not None else {}
        source = trainer.make_loader(cfg, args.split, 0, 1, model_cfg.colour, **tokens)
        trainer.check_source(cfg, source, where)
        check_actions(loaded.action_names, list(source.action_names), path, cfg.data)
        if source.char_vocab != model_cfg.char_vocab:
            raise GhframesError(
                f"{path}: the model reads {model_cfg.char_vocab} character ids, {cfg.data} "
                f"has {source.char_vocab}: it was trained on another character vocabulary"
            )
        start = source.state_dict()
        first = next(iter(source), None)
        if first is None:
            raise GhframesError(f"{where}: holds no batch")
        trainer.check_batch(first, model_cfg, cfg, cfg.data)  # the trainer's refusals
        bf16 = cfg.amp == "bf16" or (cfg.amp == "auto" and procs.device.type == "cuda")
        model = loaded.model.to(procs.device)
        names = loaded.action_names if tokenizer is None else tokenizer.first_keys()
        acc = Accumulator(names, cfg.seq_len, procs.device, top_k=TOP_K)
        amp = torch.bfloat16 if bf16 else None
        summary = evaluate(model, source, start, cfg, acc, procs, amp, num_batches)
    return {
        "checkpoint": str(path),
        "step": loaded.step,
        "data": cfg.data,
        "split": args.split,
        "split_by": cfg.split_by,
        "mode": cfg.mode,
        "actions": cfg.actions,
        "batch_size": cfg.batch_size,
        "seq_len": cfg.seq_len,
        "batches": num_batches or None,  # None: the whole split
        **summary,
    }


def table(record: dict) -> str:
    """The record as a short aligned table (for a person; the JSON has it all)."""
    top = f"top{TOP_K}_accuracy"
    batches = record["batches"] or "all"
    name = "held-out" if record["split"] == "eval" else "train split"
    lines = [
        f"{record['checkpoint']} (step {record['step']}) on {record['data']}, split "
        f"{record['split']} (by {record['split_by']}): {batches} batch(es) of "
        f"{record['batch_size']} x {record['seq_len']}, {record['mode']} mode",
        f"{name}: loss {_num(record['loss'])}  accuracy {_num(record['accuracy'])}  "
        f"top-{TOP_K} {_num(record[top])}  over {record['timesteps']:,} steps",
        f"per typed character: {_num(record['loss_per_typed_char'])} nats "
        f"({record['typed_chars']:,} typed characters; predicting {record['actions']})",
        "",
        f"{'class':<12}{'steps':>9}{'share':>8}{'loss':>8}{'acc':>8}{'top-' + str(TOP_K):>8}",
    ]
    total = record["timesteps"] or 1
    for c in CLASSES:
        row = record["by_class"][c]
        lines.append(
            f"{CLASS_LABELS[c]:<12}{row['timesteps']:>9,}{row['timesteps'] / total:>8.1%}"
            f"{_num(row['loss']):>8}{_num(row['accuracy']):>8}{_num(row[top]):>8}"
        )
    lines += ["", f"{'position':<12}{'steps':>9}{'share':>8}{'loss':>8}{'acc':>8}"]
    for bucket, loss in record["loss_by_position"].items():
        n = record["timesteps_by_position"][bucket]
        acc = record["accuracy_by_position"][bucket]
        lines.append(f"{bucket:<12}{n:>9,}{n / total:>8.1%}{_num(loss):>8}{_num(acc):>8}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_json(record: dict, out: str) -> None:
    """The record to `out` (written whole under a temporary name, then renamed)."""
    path = Path(out)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise GhframesError(f"--json {out}: cannot write ({err.strerror or err})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 when done, 2 and one line on stderr for bad input, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    try:
        if args.json and args.json != "-" and not Path(args.json).parent.is_dir():
            raise GhframesError(f"--json {args.json}: {Path(args.json).parent} is not a directory")
        record = run(args)
        if args.json and args.json != "-":
            write_json(record, args.json)
    except GhframesError as exc:
        print(f"evaluate: error: {shown(exc)}", file=sys.stderr)  # paths, names from data
        return 2
    except KeyboardInterrupt:
        print("evaluate: interrupted", file=sys.stderr)
        return 130
    if args.json == "-":
        print(json.dumps(record, indent=2))
        print(table(record), file=sys.stderr)
    else:
        print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
