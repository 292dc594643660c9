"""Watch a trained model act: `python -m ghframes.training.sample --checkpoint C --data DATA
--session ID --frame N --steps K`, a closed-loop rollout in the simulator its data came from.

The model reads the session's recorded frames 0..N-1 as it read them in training (the LSTM
starts from its learned initial state at frame 0, a session's start), then takes over at frame
N: for each of K steps it picks the next key from the frame on screen (argmax with `--greedy`,
else sampled at `--temperature`, seeded by `--seed`), the key is pressed in the renderer's own
shell and editor (ghframes.render.environment, reset to frame N), and the frame that key causes
is what the model reads next. Frame N as the environment draws it is checked against the
recorded one first.

It prints the keys chosen, one a line with the model's probability of each (a key comes from
the checkpoint's vocabulary, so it is printed escaped), and the final screen; `--cast` and
`--html` export the rollout (frame N and the K frames after it) as any session is exported
(ghframes.view.export, ghframes.view.player_html), at a fixed DEFAULT_CPS keys a second. The
vocabulary's classes `<U+XXXX>` and `<other>` name no one key, so they are never chosen.
A model of typed-text tokens (--actions tokens) picks a token, whose keys are pressed one after
another, the model reading each frame as in training; K counts keys. Runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ghframes.errors import GhframesError
from ghframes.render.environment import Environment, Frame, is_action
from ghframes.store.chunks import LazySession, open_lazy
from ghframes.text import shown

from .chars import CHAR_VOCAB, char_ids
from .checkpoint import Loaded, loaded_from, read_checkpoint
from .lstm import State
from .tokens import Tokenizer

WARM_CHUNK = 64  # recorded frames embedded at a time while the model reads 0..N-1


@dataclass
class Rollout:
    """What the model did: `frames[0]` is frame N, `frames[i]` the frame after key i;
    `actions[i]` the key pressed on `frames[i]`, `probs[i]` the model's probability of it (over
    its whole vocabulary, the classes that are no key included; with tokens, of the token that
    key i starts, NaN for a key inside a token)."""

    session: str
    repo: str
    start: int
    frames: list[Frame] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    logged_out: bool = False


class RolloutSession:
    """A rollout as the exporters read a session (LazySession's interface, in memory): frames
    uint32 [ROWS, COLS] each, their colours, cursor uint8 [n, 2], the keys (the last frame's is
    ""), no times (so they play at a fixed rate), no commits or files."""

    def __init__(self, rollout: Rollout) -> None:
        self.id = rollout.session
        self.repo = f"{rollout.repo} (model rollout from frame {rollout.start})"
        self._frames = rollout.frames
        self.actions = [*rollout.actions, ""][: len(rollout.frames)]
        self.cursor = np.array([f.cursor for f in rollout.frames], np.uint8).reshape(-1, 2)
        self.dt = None
        self.commits: list = []
        self.changes: list[dict] = []

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, t: int) -> np.ndarray:
        return self._frames[t].chars

    def colours(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = self._frames[t]
        return f.fg, f.bg, f.attrs


class Reader:
    """The model reading frames one after another, its LSTM state carried between calls."""

    def __init__(self, loaded: Loaded) -> None:
        self.model = loaded.model
        self.colour = loaded.model_config.colour
        self.state: State | None = None
        self.started = False

    def read(self, chars, cursor, fg, bg, attrs) -> torch.Tensor:
        """Frames [n, ROWS, COLS] (code points; colours uint8), cursor [n, 2] -> the logits of
        the action on the last of them, float [A]."""
        n = len(chars)
        frames = torch.from_numpy(char_ids(np.ascontiguousarray(chars)))[None]  # (1, n, R, C)
        reset = torch.zeros((1, n), dtype=torch.bool)
        reset[0, 0] = not self.started  # frame 0: a session starts, as the loader marks it
        colours = {}
        if self.colour:
            colours = {
                name: torch.from_numpy(np.ascontiguousarray(plane))[None]
                for name, plane in (("fg", fg), ("bg", bg), ("attrs", attrs))
            }
        cursor = torch.from_numpy(np.asarray(cursor, np.int64)).view(1, n, 2)
        with torch.inference_mode():
            logits, self.state = self.model.unroll(frames, cursor, reset, self.state, **colours)
        self.started = True
        return logits[0, -1].float()  # (A,)

    def read_frame(self, frame: Frame) -> torch.Tensor:
        return self.read(
            frame.chars[None], [frame.cursor], frame.fg[None], frame.bg[None], frame.attrs[None]
        )

    def warm(self, session: LazySession, stop: int) -> None:
        """Read the recorded frames [0, stop)."""
        for a in range(0, stop, WARM_CHUNK):
            ts = range(a, min(a + WARM_CHUNK, stop))
            colours = [session.colours(t) for t in ts]
            self.read(
                np.stack([session.frame(t) for t in ts]),
                session.cursor[a : ts.stop],
                *(np.stack([c[p] for c in colours]) for p in range(3)),
            )


def rollout(
    loaded: Loaded,
    data: str,
    session_id: str,
    start: int,
    steps: int,
    temperature: float | None = 1.0,
    seed: int = 0,
    env: Environment | None = None,
    tokenizer: dict | None = None,
) -> Rollout:
    """The model's `steps` keys from recorded frame `start` of the session, each pressed in the
    environment (module docstring); `temperature` None: greedy. A model of --actions tokens
    needs the checkpoint's `tokenizer` (its plain data, the checkpoint's "tokenizer")."""
    if steps < 1:
        raise GhframesError(f"--steps must be at least 1, got {steps}")
    names = loaded.action_names
    if loaded.model_config.char_vocab < CHAR_VOCAB:
        raise GhframesError(
            f"the checkpoint's model reads {loaded.model_config.char_vocab} character ids, "
            f"rendered frames take {CHAR_VOCAB} (schemas/chars.json): use a model trained on "
            "rendered frames (not --data fake)"
        )
    predicted = [[name] for name in names]  # what each id the model predicts presses
    what = "actions"
    if loaded.train_config.actions == "tokens":
        tok = Tokenizer.from_dict(tokenizer, "the checkpoint's tokenizer")
        if list(tok.action_names) != list(names):
            raise GhframesError("the checkpoint's tokenizer is of other keys than its actions")
        predicted, what = [tok.names(i) for i in range(len(tok))], "tokens"
    if len(predicted) != loaded.model_config.action_vocab:
        raise GhframesError(
            f"the checkpoint lists {len(predicted)} {what}, its model predicts "
            f"{loaded.model_config.action_vocab}"
        )
    keys = torch.tensor([all(is_action(name) for name in token) for token in predicted])
    if not keys.any():
        raise GhframesError("no action of the checkpoint's vocabulary is a key to press")
    env = env or Environment(data, session_id)
    frame = env.reset(start)
    session = open_lazy(data, session_id)
    _check_frame(frame, session, start)
    reader = Reader(loaded)
    reader.warm(session, start)
    generator = torch.Generator().manual_seed(seed)
    out = Rollout(session_id, env.repo, start, [frame])
    while len(out.actions) < steps and not out.logged_out:
        scores = reader.read_frame(frame)
        probs = torch.softmax(scores, -1)  # the model's own, the classes included
        logits = scores.masked_fill(~keys, -math.inf)
        if temperature is None:
            choice = int(logits.argmax())
        else:
            sampled = torch.softmax(logits / temperature, -1)
            choice = int(torch.multinomial(sampled, 1, generator=generator))
        for j, action in enumerate(predicted[choice][: steps - len(out.actions)]):
            if j:  # inside a token: the model reads the frame, as in training, and picks nothing
                reader.read_frame(frame)
            frame = env.step(action)
            out.actions.append(action)
            out.probs.append(float(probs[choice]) if j == 0 else math.nan)
            out.frames.append(frame)
            if env.done:
                out.logged_out = True
                break
    return out


def _check_frame(frame: Frame, session: LazySession, t: int) -> None:
    """The environment's frame t is the recorded one (else the renderer changed since)."""
    fg, bg, attrs = session.colours(t)
    same = (
        np.array_equal(frame.chars, session.frame(t))
        and np.array_equal(frame.fg, fg)
        and np.array_equal(frame.bg, bg)
        and np.array_equal(frame.attrs, attrs)
        and tuple(frame.cursor) == tuple(int(x) for x in session.cursor[t])
    )
    if not same:
        raise GhframesError(
            f"session {session.id}: the environment does not draw frame {t} as recorded"
        )


def key_text(action: str) -> str:
    """A key as printed: a JSON string, escaped (it comes from the checkpoint)."""
    return shown(json.dumps(action, ensure_ascii=False))


def report(result: Rollout, num_frames: int, temperature: float | None, seed: int) -> list[str]:
    """The lines `main` prints: the keys, then the final screen."""
    how = "greedy" if temperature is None else f"temperature {temperature:g}, seed {seed}"
    read = f"frames 0..{result.start - 1} read as recorded, then " if result.start else ""
    lines = [
        shown(
            f"session {result.session} ({result.repo}, {num_frames} frames): {read}"
            f"{len(result.actions)} keys chosen from frame {result.start} on ({how})"
        ),
        " step  frame  key                   p",
    ]
    for i, (action, p) in enumerate(zip(result.actions, result.probs, strict=True)):
        shown_p = "  -" if math.isnan(p) else f"{p:.3f}"  # a key inside a token
        lines.append(f"{i + 1:5d}  {result.start + i:5d}  {key_text(action):20s}  {shown_p}")
    if result.logged_out:
        lines.append(f"the shell logged out after key {len(result.actions)}")
    final = result.frames[-1]
    row, col = final.cursor
    lines.append(f"screen after key {len(result.actions)} (cursor at row {row}, col {col}):")
    rows = [shown(text.rstrip()) for text in final.text()]
    while rows and not rows[-1]:
        rows.pop()
    lines.extend(rows)
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.training.sample",
        description="A closed-loop rollout: the model's keys pressed in the renderer's shell and "
        "editor, from a recorded frame of a session on.",
    )
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint (checkpoint.pt)")
    parser.add_argument("--data", required=True, help="the DATA the session was rendered into")
    parser.add_argument("--session", required=True, help="the session id (ghframes ls DATA)")
    parser.add_argument(
        "--frame", type=int, default=0, help="recorded frame the model takes over at (default 0)"
    )
    parser.add_argument("--steps", type=int, default=20, help="keys the model presses (default 20)")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--greedy", action="store_true", help="always the most probable key")
    how.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature, > 0 (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    parser.add_argument("--cast", metavar="OUT.cast", help="write the rollout as asciicast v2")
    parser.add_argument("--html", metavar="OUT.html", help="write the rollout as an HTML player")
    return parser


def run(args: argparse.Namespace) -> list[str]:
    """The rollout `args` ask for; the lines to print (exports written on the way)."""
    temperature = None if args.greedy else args.temperature
    if temperature is not None and not 0 < temperature < math.inf:
        raise GhframesError(f"--temperature must be a finite number > 0, got {temperature:g}")
    if args.steps < 1:
        raise GhframesError(f"--steps must be at least 1, got {args.steps}")
    if not Path(args.checkpoint).is_file():
        raise GhframesError(f"--checkpoint {args.checkpoint}: no such file")
    env = Environment(args.data, args.session)
    if not 0 <= args.frame < env.num_frames:
        raise GhframesError(
            f"session {args.session}: --frame {args.frame} is out of range "
            f"(0..{env.num_frames - 1})"
        )
    ckpt = read_checkpoint(Path(args.checkpoint))
    loaded = loaded_from(ckpt, Path(args.checkpoint))
    result = rollout(
        loaded, args.data, args.session, args.frame, args.steps, temperature, args.seed, env,
        ckpt.get("tokenizer"),
    )  # fmt: skip
    lines = report(result, env.num_frames, temperature, args.seed)
    if args.cast or args.html:
        from ghframes.view.export import _atomic, write_cast
        from ghframes.view.player_html import write_html

        exported = RolloutSession(result)
        n = len(exported)
        if args.cast:
            write_cast(exported, args.cast, 0, n)
            lines.append(f"wrote {args.cast}: {n} frames as asciicast v2")
        if args.html:
            write_html(exported, args.html, 0, n, None, _atomic)
            lines.append(f"wrote {args.html}: {n} frames as a self-contained HTML player")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: 0 when done, 2 and one line on stderr for bad input, 130 on Ctrl-C."""
    args = build_parser().parse_args(argv)
    try:
        lines = run(args)
    except GhframesError as exc:
        print(f"sample: error: {shown(exc)}", file=sys.stderr)  # paths, names, keys from data
        return 2
    except KeyboardInterrupt:
        print("sample: interrupted", file=sys.stderr)
        return 130
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
