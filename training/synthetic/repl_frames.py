"""REPL traces as frames: the action model reads permutation-composition traces played in the
terminal and types the revealed state.

Each trace (a list of (statement, output) pairs: variables swapped, the state printed now and
then) is played by ghframes.render.repl at a python3 prompt, one 48x160 frame per key, and
every reveal is typed by the person as `(a, b, c) == (2, 0, 1)`: the values are keys the model
must predict, and the batch's `mask` is true on exactly those keys (render/repl.py). The model
is the project's ActionModel (frame-head + residual LSTM), trained with the trainer's own
`train_step` (streaming BPTT, Muon + AdamW), every trace from the learned initial state.

Scored on fresh traces of each evaluation length (including lengths longer than any trained
on): answer-key accuracy over every reveal and over the final reveal, and whole-answer accuracy
of the final reveal; against the best state-blind predictors (`chance`: each answer key
predicted from the keys of the same answer typed before it only, or the most frequent whole
answer, fitted on 2,000 other traces of the length), which know the format and that the
values are a permutation, but not the state. And against the model itself with its recurrent
state reset at every frame (`screen_*`): the screen shows the trace until it scrolls, so a
model could answer from the current frame alone; what recurrence adds is the difference.

`python -m ghframes.training.synthetic.repl_frames --preset quick --out DIR` writes
results.json, table.md and accuracy_vs_length.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from ghframes.render.repl import ReplPlay, play, typed_lines

from ..chars import ACTION_NAMES, CHAR_VOCAB, action_ids, char_ids
from ..config import TrainConfig
from ..model import ModelConfig, describe
from ..optim import lr_multiplier
from ..streaming import streaming_forward
from ..train import build_model, train_step
from .experiment import setup_torch, write_json
from .repl import group_moves
from .report import frames_markdown, frames_plot

Transcript = list[tuple[str, str | None]]
# (group, n_vars, length, reveal_prob, seed) -> a transcript; repl.repl_trace by default
TraceFn = Callable[[str, int, int, float, int], Transcript]


@dataclass(frozen=True)
class FramesConfig:
    """One experiment: a model trained per reveal density, scored by trace length."""

    group: str = "sym"  # repl.GROUPS: sym with 3 variables is S3
    n_vars: int = 3
    # reveal_prob of repl.repl_trace: a print after each step with this probability, and
    # always after the last (0.0: only at the end); the same in training and scoring
    densities: tuple[float, ...] = (1.0, 0.0)
    train_lengths: tuple[int, int] = (1, 4)  # swaps per training trace, uniform in [lo, hi]
    eval_lengths: tuple[int, ...] = (1, 2, 4, 6, 8)
    # the person presses <C-l> after every entry (render/repl.py): nothing earlier stays on the
    # screen, so the state must be remembered, not read
    clear: bool = False
    eval_traces: int = 32  # per length
    chance_traces: int = 2_000  # per length, text only: the state-blind predictors' fit
    steps: int = 120
    batch_size: int = 6
    chunk_len: int = 32
    lr_muon: float = 3e-3
    lr_adamw: float = 3e-3
    warmup_steps: int = 15
    # ModelConfig fields over its defaults (the trainer's `tiny`): narrower, one transformer
    # stage (~2.9 ms a frame for a training step on one core, against ~5 for `tiny`), and
    # characters only: the REPL draws no colour, only the shell prompt at the top does.
    model: dict = field(
        default_factory=lambda: {
            "merge_dims": (8, 16, 32),
            "stage_blocks": (1,),
            "d_model": 64,
            "colour": False,
        }
    )
    # the model's initial weights, the training lengths and traces; the evaluation traces are
    # the same for every seed, so that runs of two seeds are scored on the same traces
    seed: int = 0
    workers: int = 2  # one process per density, `threads` torch threads each
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        lo, hi = self.train_lengths
        if not 1 <= lo <= hi:
            raise ValueError(f"repl_frames: train_lengths must be 1 <= lo <= hi, got {lo, hi}")
        if not self.eval_lengths or min(self.eval_lengths) < 1:
            raise ValueError(f"repl_frames: eval_lengths must be >= 1, got {self.eval_lengths}")
        names = ("steps", "batch_size", "chunk_len", "eval_traces", "chance_traces", "workers")
        for name in (*names, "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"repl_frames: {name} must be >= 1, got {getattr(self, name)}")
        if not self.densities or not all(0 <= d <= 1 for d in self.densities):
            raise ValueError(f"repl_frames: densities must be in [0, 1], got {self.densities}")
        try:
            group_moves(self.group, self.n_vars)
        except ValueError as exc:
            raise ValueError(f"repl_frames: {exc}") from None


PRESETS = {
    # 2 CPU cores, ~9 minutes (measured on a busy 2-core VM): two densities side by side,
    # one 1-thread process each.
    "quick": FramesConfig(),
    # 2 CPU cores, about 20 minutes: the smallest state, two variables (S2: the first
    # assignment and the parity of the swaps), both densities, 4x the quick preset's steps.
    "cpu": FramesConfig(n_vars=2, steps=500, warmup_steps=30, eval_traces=48),
    # One GPU: the trainer's tiny model, four densities, longer traces, 40x the traces.
    # Not yet run: expect to tune the rates and steps on first use.
    "full": FramesConfig(
        densities=(1.0, 0.5, 0.25, 0.1),
        train_lengths=(1, 16),
        eval_lengths=(1, 2, 4, 8, 16, 24, 32, 48),
        eval_traces=256,
        steps=5_000,
        batch_size=32,
        warmup_steps=200,
        model={},
        workers=1,
        device="cuda",
    ),
}


def default_traces() -> TraceFn:
    """The REPL trace generator of training/synthetic/repl.py (the token-level tasks')."""
    from .repl import repl_trace

    return repl_trace


# -- batches ------------------------------------------------------------------------------------


def encode(played: ReplPlay) -> dict[str, np.ndarray]:
    """A played transcript as model inputs: frames uint8 [T, R, C] character ids, fg, bg,
    attrs uint8 [T, R, C], cursor int64 [T, 2], actions int64 [T], mask bool [T] (answer keys),
    reveal int32 [T] (the transcript entry of each answer key, -1 elsewhere)."""
    actions, bad = action_ids(pa.array(played.actions, pa.string()))
    assert bad < 0, f"not an action: {played.actions[bad]!r}"  # render/repl.py types keys only
    fg, bg, attrs = played.planes
    return {
        "frames": char_ids(played.frames),
        "fg": fg,
        "bg": bg,
        "attrs": attrs,
        "cursor": played.cursor.astype(np.int64),
        "actions": actions,
        "mask": played.answer,
        "reveal": np.where(played.answer, played.entry_of_frame, -1).astype(np.int32),
    }


def make_batch(items: Sequence[dict[str, np.ndarray]], device: str = "cpu") -> dict:
    """Encoded transcripts padded to the longest into one batch of tensors [B, T, ...]: the
    trainer's keys (frames, fg, bg, attrs, cursor, actions, reset, mask) and `reveal`.
    Padding is zeros (character id 0, action 0) with mask false."""
    b, t = len(items), max(len(item["actions"]) for item in items)
    batch = {}
    for key, value in items[0].items():
        fill = -1 if key == "reveal" else 0
        out = np.full((b, t, *value.shape[1:]), fill, value.dtype)
        for i, item in enumerate(items):
            out[i, : len(item[key])] = item[key]
        batch[key] = torch.from_numpy(out).to(device)
    batch["reset"] = torch.zeros((b, t), dtype=torch.bool, device=device)
    batch["reset"][:, 0] = True  # every trace from the learned initial state
    return batch


def sample(
    cfg: FramesConfig, traces: TraceFn, density: float, lengths: Sequence[int], seed: int
) -> list[dict[str, np.ndarray]]:
    """One encoded trace per length in `lengths`, trace k drawn with seed
    `seed * 1_000_003 + k`."""
    items = []
    for k, length in enumerate(lengths):
        transcript = traces(cfg.group, cfg.n_vars, int(length), density, seed * 1_000_003 + k)
        items.append(encode(play(transcript, color=True, clear=cfg.clear)))
    return items


# -- scores -------------------------------------------------------------------------------------


def answers(batch: dict, correct: torch.Tensor) -> list[tuple[list[int], list[bool], bool]]:
    """Every reveal of the batch: (its answer key ids, whether each was predicted, whether it is
    the trace's final reveal)."""
    out = []
    reveal, actions = batch["reveal"].cpu().numpy(), batch["actions"].cpu().numpy()
    right = correct.cpu().numpy()
    for i in range(reveal.shape[0]):
        entries = [e for e in np.unique(reveal[i]) if e >= 0]
        for e in entries:
            at = np.flatnonzero(reveal[i] == e)
            out.append((actions[i, at].tolist(), right[i, at].tolist(), e == entries[-1]))
    return out


@dataclass(frozen=True)
class StateBlind:
    """The best predictor that sees an answer's earlier keys but not the state, fitted on
    answers of held-out traces: after each prefix of an answer, its most frequent next key;
    for a whole answer, the most frequent answer."""

    next_key: dict[tuple[int, ...], int]
    answer: tuple[int, ...]

    @classmethod
    def fit(cls, answers_typed: list[list[int]]) -> StateBlind:
        """From each answer's key ids (ties: the smaller id)."""
        counts: Counter = Counter()
        for keys in answers_typed:
            for j in range(len(keys)):
                counts[tuple(keys[:j]), keys[j]] += 1
        best: dict[tuple[int, ...], tuple[int, int]] = {}  # prefix -> (key, count)
        for (prefix, key), n in sorted(counts.items()):  # by key: a tie keeps the smaller
            if prefix not in best or n > best[prefix][1]:
                best[prefix] = (key, n)
        wholes = Counter(tuple(keys) for keys in answers_typed).items()
        answer = min(wholes, key=lambda kv: (-kv[1], kv[0]))[0] if wholes else ()
        return cls({prefix: key for prefix, (key, _) in best.items()}, answer)

    def right(self, keys: list[int]) -> list[bool]:
        """Whether each key of an answer is the one predicted after the keys before it."""
        return [self.next_key.get(tuple(keys[:j])) == keys[j] for j in range(len(keys))]


def answer_keys(transcript: Transcript) -> list[list[int]]:
    """The action ids of each reveal's answer keys, as render/repl.py types them."""
    ids = {name: i for i, name in enumerate(ACTION_NAMES)}
    return [[ids[line[i]] for i in at] for line, at, _ in typed_lines(transcript) if at]


def state_blind(
    cfg: FramesConfig, traces: TraceFn, density: float, length: int
) -> tuple[StateBlind, StateBlind]:
    """State-blind predictors of every reveal and of final reveals, fitted on
    `cfg.chance_traces` text-only traces of `length` swaps (seeds no run draws)."""
    every, final = [], []
    for k in range(cfg.chance_traces):
        seed = 2**40 + length * 1_000_003 + k
        answers_typed = answer_keys(traces(cfg.group, cfg.n_vars, length, density, seed))
        every += answers_typed
        final.append(answers_typed[-1])
    return StateBlind.fit(every), StateBlind.fit(final)


def score(
    reveals: list[tuple[list[int], list[bool], bool]],
    blind: tuple[StateBlind, StateBlind],
    screen: list[tuple[list[int], list[bool], bool]] | None = None,
) -> dict[str, float]:
    """Accuracies over `reveals` of the model and of the state-blind predictors `blind` (of
    every reveal, of final reveals); with `screen` (the same reveals scored with the model's
    state reset at every frame) also the model's accuracies from the current screen alone."""
    final = [r for r in reveals if r[2]]

    def mean(values: list) -> float:
        return round(float(np.mean(values)), 4) if values else float("nan")

    every_blind, final_blind = blind
    return {
        "key": mean([x for _, right, _ in reveals for x in right]),
        "final_key": mean([x for _, right, _ in final for x in right]),
        "final_answer": mean([all(right) for _, right, _ in final]),
        "chance_key": mean([x for keys, _, _ in reveals for x in every_blind.right(keys)]),
        "chance_final_key": mean([x for keys, _, _ in final for x in final_blind.right(keys)]),
        "chance_final_answer": mean([tuple(keys) == final_blind.answer for keys, _, _ in final]),
        **(screen_scores(screen) if screen is not None else {}),
        "reveals": len(reveals),
    }


def screen_scores(screen: list[tuple[list[int], list[bool], bool]]) -> dict[str, float]:
    final = [r for r in screen if r[2]]
    return {
        "screen_key": round(float(np.mean([x for _, right, _ in screen for x in right])), 4),
        "screen_final_key": round(float(np.mean([x for _, right, _ in final for x in right])), 4),
        "screen_final_answer": round(float(np.mean([all(right) for _, right, _ in final])), 4),
    }


# -- one run ------------------------------------------------------------------------------------


def train_config(cfg: FramesConfig) -> TrainConfig:
    """The trainer's settings for `train_step`: streaming BPTT, the experiment's rates."""
    return TrainConfig(
        data="(synthetic REPL traces)",
        batch_size=cfg.batch_size,
        chunk_len=cfg.chunk_len,
        steps=cfg.steps,
        warmup_steps=cfg.warmup_steps,
        lr_muon=cfg.lr_muon,
        lr_adamw=cfg.lr_adamw,
        seed=cfg.seed,
        device=cfg.device,
    )


def run_density(
    cfg: FramesConfig, density: float, traces: TraceFn, log: Callable[[str], None] = print
) -> dict:
    """Train one model on traces of reveal density `density`; its scores by length."""
    tcfg = train_config(cfg)
    device = torch.device(cfg.device)
    model_cfg = ModelConfig(char_vocab=CHAR_VOCAB, action_vocab=len(ACTION_NAMES), **cfg.model)
    model, opt = build_model(tcfg, model_cfg, device)
    log(f"density {density}: {describe(model)}")
    rng = np.random.default_rng([cfg.seed, round(density * 1e6)])
    lo, hi = cfg.train_lengths
    losses, frames, started = [], 0, time.perf_counter()
    for step in range(cfg.steps):
        opt.set_lr(lr_multiplier(step, cfg.steps, cfg.warmup_steps, "cosine", 0.1))
        lengths = rng.integers(lo, hi + 1, cfg.batch_size)
        first = 1 + step + cfg.seed * 10_000_000  # seed 0: traces 1, 2, ...
        batch = make_batch(sample(cfg, traces, density, lengths, first), cfg.device)
        result, _ = train_step(model, opt, batch, None, tcfg)
        losses.append(result.loss)
        frames += int(batch["actions"].numel())
        if step % 25 == 0 or step == cfg.steps - 1:
            log(f"density {density} step {step}: loss {np.mean(losses[-25:]):.3f}")
    train_seconds = time.perf_counter() - started
    model.eval()
    by_length = {}
    for length in cfg.eval_lengths:
        reveals, screen = [], []
        for first in range(0, cfg.eval_traces, cfg.batch_size):
            n = min(cfg.batch_size, cfg.eval_traces - first)
            seed = -(1 + length * 10_000 + first)  # negative: never a training seed
            batch = make_batch(sample(cfg, traces, density, [length] * n, seed), cfg.device)
            result = streaming_forward(model, batch, None, cfg.chunk_len)
            reveals += answers(batch, result.correct)
            # The control: the state reset at every frame, so only the screen is read.
            alone = {**batch, "reset": torch.ones_like(batch["reset"])}
            screen += answers(alone, streaming_forward(model, alone, None, cfg.chunk_len).correct)
        blind = state_blind(cfg, traces, density, length)
        by_length[str(length)] = score(reveals, blind, screen)
        log(f"density {density} length {length}: {by_length[str(length)]}")
    return {
        "density": density,
        "params": sum(p.numel() for p in model.parameters()),
        "model": describe(model),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - started - train_seconds, 1),
        "train_frames": frames,
        "final_train_loss": round(float(np.mean(losses[-25:])), 4),
        "by_length": by_length,
    }


def _job(args: tuple) -> dict:
    cfg, density = args
    return run_density(cfg, density, default_traces())


def run(cfg: FramesConfig, out: Path, traces: TraceFn | None = None) -> dict:
    """Every density of `cfg` (in `workers` processes when `traces` is the default); writes
    results.json, table.md and accuracy_vs_length.png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    setup_torch(cfg.threads)
    started = time.perf_counter()
    if traces is None and cfg.workers > 1 and len(cfg.densities) > 1:
        ctx = multiprocessing.get_context("spawn")  # a forked torch thread pool can hang
        with ctx.Pool(cfg.workers, initializer=setup_torch, initargs=(cfg.threads,)) as pool:
            runs = pool.map(_job, [(cfg, d) for d in cfg.densities])
    else:
        fn = traces or default_traces()
        runs = [run_density(cfg, d, fn) for d in cfg.densities]
    results = {
        "config": dataclasses.asdict(cfg),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cpu_count": multiprocessing.cpu_count(),
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    write_json(out / "results.json", results)
    (out / "table.md").write_text(frames_markdown(results))
    frames_plot(results, out / "accuracy_vs_length.png")
    return results


# -- command line -------------------------------------------------------------------------------


def parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers") from None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ghframes.training.synthetic.repl_frames",
        description="REPL traces played as terminal frames: the action model types the state.",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument("--out", type=Path, required=True, help="run folder (results, table, plot)")
    p.add_argument("--steps", type=int, help="optimizer steps per density (the preset's)")
    p.add_argument("--n-vars", type=int, help="variables in the traces, 2..8 (the preset's)")
    p.add_argument(
        "--densities",
        type=parse_floats,
        help="comma-separated reveal densities in [0, 1], one run each (the preset's)",
    )
    p.add_argument("--workers", type=int, help="processes, one density each (the preset's)")
    p.add_argument("--seed", type=int, help="initial weights and training traces (the preset's, 0)")
    p.add_argument(
        "--clear",
        action="store_true",
        default=None,
        help="the person clears the screen (<C-l>) after every entry (default: not)",
    )
    p.add_argument("--device", help="cpu or cuda (the preset's)")
    args = vars(p.parse_args(argv))
    preset, out = args.pop("preset"), args.pop("out")
    overrides = {k: v for k, v in args.items() if v is not None}
    try:
        cfg = dataclasses.replace(PRESETS[preset], **overrides)
    except ValueError as exc:
        p.error(str(exc))
    results = run(cfg, out)
    print((out / "table.md").read_text(), end="")
    return 0 if results["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
