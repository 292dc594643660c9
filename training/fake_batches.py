"""FOR TESTS AND DEVELOPMENT ONLY: synthetic typing sessions in the loader's batch format.

This is not the loader (training/loader.py's FrameStream reads rendered shards) and not a stand-in
for it: it produces small, learnable, fully deterministic batches so that the model and trainer
can be tested and smoke-run without a rendered dataset. It follows the batch contract the
trainer expects from FrameStream (see train.py, `make_loader`):

    frames  uint8 [B, T, ROWS, COLS]  character ids (here: the ASCII code point)
    fg, bg  uint8 [B, T, ROWS, COLS]  palette values (0: the terminal's default; 1..255 xterm-256)
    attrs   uint8 [B, T, ROWS, COLS]  attribute bits (1 bold, 2 italic, 4 underline, 8 reverse)
    actions long  [B, T]              action ids, index into `action_names`
    cursor  long  [B, T, 2]           (row, col) of the cursor on frame t
    reset   bool  [B, T]              a new session starts at step t
    mask    bool  [B, T]              step t is real data (always True here)
    session long  [B, T]              session number
    t       long  [B, T]              index of the frame in its session

A session types Python-like lines (from a small grammar) into a screen whose row 0 is a header
that starts as the editor's title bar does (so an evaluation counts its keys as the editor's);
action t is the key typed on frame t ("<Enter>" ends a line, "<C-d>" ends the session). Colour as
an editor draws it: the header is a bold status bar (white on blue), digits and punctuation have
their own colours, a keyword turns bold magenta once typed out, and the cursor's line has a grey
background. `colour=False` leaves the planes out (a loader reading characters only).

Modes: "stream" gives each batch row a lane of sessions played back to back, each batch taking
the next T steps of every lane (carry the state across batches: truncated BPTT); "window" gives
each row an independent window of T steps inside one session (the state starts fresh).
"""

from __future__ import annotations

import numpy as np
import torch

from ghframes.render.editor_view import TITLE_LEFT, TITLE_SIDE
from ghframes.store import schema

# The loader's vocabulary, so that action ids mean what they mean on rendered data.
from .chars import ACTION_NAMES
from .model import COLOUR_PLANES
from .plan import MODES
from .plan import SPLITS as SPLIT_NAMES

ACTION_ID = {name: i for i, name in enumerate(ACTION_NAMES)}
SPLITS = {name: i for i, name in enumerate(SPLIT_NAMES)}  # {"train": 0, "eval": 1}

NAMES = ["x", "y", "total", "count", "value", "item", "result", "data"]
MODULES = ["os", "sys", "json", "math", "time"]

# The colours (fg, bg, attrs) the fake editor draws; palette values, attribute bits.
STATUS = (15, 4, 1)  # the header row: bright white on blue, bold
KEYWORD = (5, 0, 1)  # magenta, bold
DIGIT = (208, 0, 0)  # orange (256-colour palette)
PUNCTUATION = (6, 0, 0)  # cyan
CURSOR_LINE_BG = 236  # dark grey behind the cursor's line where the cell has no background
KEYWORDS = {b"def", b"return", b"for", b"in", b"import", b"if"}


def _line_templates(rng: np.random.Generator) -> list[str]:
    """A few lines of a small Python-like grammar; predictable enough for a tiny model to learn."""
    a, b = rng.choice(NAMES, 2, replace=False)
    n = int(rng.integers(1, 10))
    kind = int(rng.integers(5))
    if kind == 0:
        return [f"def {a}_{b}({a}, {b}):", f"    return {a} + {b} * {n}", ""]
    if kind == 1:
        return [f"for {a} in range({n}):", f"    print({a})"]
    if kind == 2:
        return [f"import {rng.choice(MODULES)}"]
    if kind == 3:
        return [f"{a} = {b} * {n}"]
    return [f"if {a} > {n}:", f"    {a} = {a} - {n}"]


class FakeBatches:
    """Deterministic synthetic batches (see module docstring). Iterable; resumable by state_dict."""

    char_vocab = 128  # ASCII code points; the real mapping comes from schemas/ via the loader
    action_names = ACTION_NAMES

    def __init__(
        self,
        batch_size: int,
        seq_len: int,
        mode: str = "stream",
        seed: int = 0,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        rows: int = 48,
        cols: int = 160,
        session_len: tuple[int, int] = (200, 600),
        batches_per_epoch: int | None = None,
        schema_version: str | None = None,
        colour: bool = True,
    ):
        if mode not in MODES:
            raise ValueError(
                f"fake batches: unknown mode {mode!r}; valid modes: {', '.join(MODES)}"
            )
        if split not in SPLITS:
            raise ValueError(
                f"fake batches: unknown split {split!r}; valid splits: {', '.join(SPLITS)}"
            )
        self.batch_size, self.seq_len, self.mode, self.seed = batch_size, seq_len, mode, seed
        self.split, self.rank, self.world_size = split, rank, world_size
        self.rows, self.cols = rows, cols
        self.session_len = session_len
        self.batches_per_epoch = batches_per_epoch
        # The version of the frames schema this ghframes writes, unless a test asks otherwise.
        self.schema_version = schema_version or schema.load("frames").version
        self.colour = colour
        self.epoch = 0
        self.batch = 0  # batches yielded in this epoch
        self._cache: dict[int, list[str]] = {}  # session number -> actions (recent sessions)
        self._lane_at: dict[
            int, tuple[int, int]
        ] = {}  # lane -> (session number, lane step of its start)

    @property
    def max_seq_len(self) -> int | None:
        """Longest window this source can fill: unbounded when streaming, else the longest session."""
        return None if self.mode == "stream" else self.session_len[1]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.set_epoch(int(state["epoch"]))
        self.batch = int(state["batch"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.batch = epoch, 0
        self._cache.clear()
        self._lane_at.clear()

    def __iter__(self):
        while self.batches_per_epoch is None or self.batch < self.batches_per_epoch:
            batch = self._make(self.batch)
            self.batch += 1
            yield batch

    # -- sessions --------------------------------------------------------------------------

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, SPLITS[self.split], self.epoch, *key])

    def session_actions(self, number: int) -> list[str]:
        """The action names of session `number` (depends on seed, split, epoch and number only)."""
        if number not in self._cache:
            if len(self._cache) >= 256:
                self._cache.clear()
            rng = self._rng(1, number)
            length = self.session_length(number)
            actions: list[str] = []
            while len(actions) < length - 1:
                for line in _line_templates(rng):
                    actions.extend(line)
                    actions.append("<Enter>")
            self._cache[number] = actions[: length - 1] + ["<C-d>"]
        return self._cache[number]

    def session_length(self, number: int) -> int:
        """Frames in session `number`, without generating it."""
        return int(self._rng(0, number).integers(self.session_len[0], self.session_len[1] + 1))

    def _play(self, number: int, start: int, stop: int, out: dict, row: int, at: int) -> None:
        """Write frames, colours, actions, cursor of steps [start, stop) of session `number` into
        row `row` of the batch arrays `out`, at columns from `at`."""
        actions = self.session_actions(number)
        screen = np.full((self.rows, self.cols), 32, np.uint8)
        colours = np.zeros((3, self.rows, self.cols), np.uint8)  # fg, bg, attrs
        title = TITLE_LEFT.ljust(TITLE_SIDE)
        header = f"{title}fake session {number:06d} ({self.split})"[: self.cols].encode()
        screen[0, : len(header)] = np.frombuffer(header, np.uint8)
        colours[:, 0] = np.array(STATUS, np.uint8)[:, None]
        r, c, word = 1, 0, 0  # cursor; column where the word being typed starts
        for k in range(stop):
            if k >= start:
                j = at + k - start
                out["frames"][row, j] = screen
                out["cursor"][row, j] = (r, c)
                out["actions"][row, j] = ACTION_ID[actions[k]]
                out["session"][row, j] = number
                out["t"][row, j] = k
                out["reset"][row, j] = k == 0
                if self.colour:
                    for plane, values in zip(COLOUR_PLANES, colours, strict=True):
                        out[plane][row, j] = values
                    line = out["bg"][row, j, r]
                    line[line == 0] = CURSOR_LINE_BG
            name = actions[k]
            if len(name) == 1 and not (name.isalnum() or name == "_") or name == "<Enter>":
                if bytes(screen[r, word:c]) in KEYWORDS:  # a word ends: colour a keyword
                    colours[:, r, word:c] = np.array(KEYWORD, np.uint8)[:, None]
                word = c + 1
            if name == "<Enter>":
                c = word = 0
                if r == self.rows - 1:  # scroll the text area up one line
                    screen[1:-1], colours[:, 1:-1] = screen[2:], colours[:, 2:]
                    screen[-1], colours[:, -1] = 32, 0
                else:
                    r += 1
            elif len(name) == 1 and c < self.cols:
                screen[r, c] = ord(name)
                if name.isdigit():
                    colours[:, r, c] = DIGIT
                elif not (name.isalnum() or name in "_ "):
                    colours[:, r, c] = PUNCTUATION
                c += 1

    def _make(self, index: int) -> dict[str, torch.Tensor]:
        b, t = self.batch_size, self.seq_len
        out = {
            "frames": np.zeros((b, t, self.rows, self.cols), np.uint8),
            **{
                plane: np.zeros((b, t, self.rows, self.cols), np.uint8)
                for plane in COLOUR_PLANES
                if self.colour
            },
            "actions": np.zeros((b, t), np.int64),
            "cursor": np.zeros((b, t, 2), np.int64),
            "reset": np.zeros((b, t), bool),
            "session": np.zeros((b, t), np.int64),
            "t": np.zeros((b, t), np.int64),
        }
        for row in range(b):
            if self.mode == "stream":
                self._fill_lane(row, index, out)
            else:
                self._fill_window(row, index, out)
        batch = {k: torch.from_numpy(v) for k, v in out.items()}
        batch["mask"] = torch.ones((b, t), dtype=torch.bool)
        return batch

    def _fill_lane(self, row: int, index: int, out: dict) -> None:
        # Lane g plays sessions g, g + G, g + 2G, ... (G lanes over all ranks) back to back; batch
        # `index` covers lane steps [index*T, (index+1)*T).
        lanes = self.batch_size * self.world_size
        lane = self.rank * self.batch_size + row
        begin, end = index * self.seq_len, (index + 1) * self.seq_len
        number, offset = self._lane_at.get(lane, (lane, 0))
        if offset > begin:  # resumed earlier than the memo: scan from the lane's start
            number, offset = lane, 0
        while offset < end:
            length = self.session_length(number)
            if offset + length <= begin:  # wholly before this batch
                offset, number = offset + length, number + lanes
                continue
            if offset <= begin:
                self._lane_at[lane] = (number, offset)
            lo, hi = max(begin, offset), min(end, offset + length)
            self._play(number, lo - offset, hi - offset, out, row, lo - begin)
            offset, number = offset + length, number + lanes

    def _fill_window(self, row: int, index: int, out: dict) -> None:
        rng = self._rng(2, index, self.rank, row)
        while True:
            # Sessions of this rank: numbers congruent to rank modulo world_size.
            number = int(rng.integers(0, 1_000_000)) * self.world_size + self.rank
            length = self.session_length(number)
            if length >= self.seq_len:
                break
        start = int(rng.integers(0, length - self.seq_len + 1))
        self._play(number, start, start + self.seq_len, out, row, 0)
        out["reset"][row, 0] = True  # a window starts from the initial state


def random_batch(cfg, batch_size: int, seq_len: int, device: torch.device, seed: int = 0) -> dict:
    """Uniform random frames, colours and actions: content does not change the cost."""
    g = torch.Generator().manual_seed(seed)
    batch = {
        "frames": torch.randint(
            0,
            cfg.char_vocab,
            (batch_size, seq_len, cfg.rows, cfg.cols),
            generator=g,
            dtype=torch.uint8,
        ),
        "cursor": torch.stack(
            [
                torch.randint(0, cfg.rows, (batch_size, seq_len), generator=g),
                torch.randint(0, cfg.cols, (batch_size, seq_len), generator=g),
            ],
            -1,
        ),
        "actions": torch.randint(0, cfg.action_vocab, (batch_size, seq_len), generator=g),
        "reset": torch.zeros(batch_size, seq_len, dtype=torch.bool),
        "mask": torch.ones(batch_size, seq_len, dtype=torch.bool),
    }
    for plane, values in COLOUR_PLANES.items():
        shape = (batch_size, seq_len, cfg.rows, cfg.cols)
        batch[plane] = torch.randint(0, values, shape, generator=g, dtype=torch.uint8)
    return {k: v.to(device) for k, v in batch.items()}
