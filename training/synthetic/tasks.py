"""Serial-depth tasks: seeded generators with exact depth control, and their reference interpreters.

Both tasks are token sequences whose answer needs ``depth`` strictly sequential steps, padded to a
fixed length with tokens that change nothing, so depth and sequence length are independent knobs.

A batch is a dict of numpy arrays:
    tokens:  int64 [B, T]  input token ids
    targets: int64 [B, T]  the answer so far at every supervised position, IGNORE elsewhere
    depth:   int64 [B]     serial depth of each sequence
The last position of every sequence is a QUERY token whose target is the final answer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .labels import IGNORE
from .repl import ReplTrace


def _check_depths(name: str, depths: np.ndarray, max_depth: int) -> None:
    if depths.size and (depths.min() < 1 or depths.max() > max_depth):
        raise ValueError(
            f"{name}: depths must lie in [1, {max_depth}], got {depths.min()}..{depths.max()}"
        )


# ---------------------------------------------------------------------------------------------
# Forward-Referencing Jumps Task (FRJT)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FRJT:
    """Forward-Referencing Jumps: a program of one-token instructions executed with forward jumps.

    One register ``r`` (starts at 0) and three kinds of instruction: ``SET v`` (token ``v``,
    1 <= v < num_values) sets ``r = v``; ``NOP`` (token 0) leaves ``r`` alone; ``HALT`` ends the
    run. After each executed instruction the program counter jumps forward: to the next
    instruction when ``r`` is even, over it when ``r`` is odd. So where instruction k+1 sits is
    computed from the register as instruction k left it, which the last executed ``SET`` wrote,
    possibly many steps earlier: no position after the start can be classified as executed or
    skipped without executing every step before it. The answer is the final register.

    Depth is the number of executed ``SET``/``NOP`` instructions. Every other position (jumped
    over, or after the ``HALT``) is filler drawn at random, decoy ``HALT``s included, and never
    executed; the program is always ``2 * max_depth + 1`` instructions plus a QUERY token, so
    depth and length are independent.
    """

    max_depth: int = 64
    num_values: int = (
        4  # register values 0..num_values-1; tokens 0..num_values-1 are NOP, SET 1, ...
    )
    filler_halt_prob: float = 0.25  # decoy HALTs among skipped instructions

    name = "frjt"

    @property
    def halt(self) -> int:
        return self.num_values

    @property
    def query(self) -> int:
        return self.num_values + 1

    @property
    def vocab_size(self) -> int:
        return self.num_values + 2

    @property
    def num_classes(self) -> int:
        return self.num_values

    @property
    def program_len(self) -> int:
        # Every jump moves at most 2 instructions, so `max_depth` steps plus the HALT always fit.
        return 2 * self.max_depth + 1

    @property
    def seq_len(self) -> int:
        return self.program_len + 1

    def sample(self, rng: np.random.Generator, depths: np.ndarray) -> dict[str, np.ndarray]:
        """A batch with one program per entry of ``depths`` (int [B], each in [1, max_depth])."""
        depths = np.asarray(depths, dtype=np.int64)
        _check_depths(self.name, depths, self.max_depth)
        batch, rows = len(depths), np.arange(len(depths))
        # Filler first, then the executed chain is written over it.
        prog = rng.integers(0, self.num_values, size=(batch, self.program_len))  # (B, L)
        prog[rng.random((batch, self.program_len)) < self.filler_halt_prob] = self.halt
        pc = np.zeros(batch, dtype=np.int64)
        reg = np.zeros(batch, dtype=np.int64)
        for step in range(int(depths.max())):
            active = step < depths
            op = rng.integers(0, self.num_values, size=batch)
            prog[rows[active], pc[active]] = op[active]
            reg = np.where(active & (op > 0), op, reg)
            pc = np.where(active, pc + 1 + reg % 2, pc)
        prog[rows, pc] = self.halt
        tokens = np.concatenate([prog, np.full((batch, 1), self.query)], axis=1)  # (B, T)
        return {"tokens": tokens, "targets": self.trace(tokens), "depth": depths}

    def trace(self, tokens: np.ndarray) -> np.ndarray:
        """Register after each token, read left to right as a streaming machine would (int [B, T]).

        This is the dense supervision signal: position t is labelled with the register after every
        instruction executed at or before t. Vectorized over the batch, one loop over time.
        """
        batch, seq_len = tokens.shape
        targets = np.empty((batch, seq_len), dtype=np.int64)
        reg = np.zeros(batch, dtype=np.int64)
        next_pc = np.zeros(batch, dtype=np.int64)
        halted = np.zeros(batch, dtype=bool)
        for t in range(seq_len):
            tok = tokens[:, t]
            here = ~halted & (next_pc == t)
            halted |= here & (tok >= self.num_values)
            run = here & (tok < self.num_values)
            reg = np.where(run & (tok > 0), tok, reg)
            next_pc = np.where(run, t + 1 + reg % 2, next_pc)
            targets[:, t] = reg
        return targets

    def describe(self, tokens: np.ndarray) -> str:
        """One sequence as readable text: ``=v`` for SET v, ``.`` for NOP, ``H`` HALT, ``?`` QUERY."""
        names = {0: ".", self.halt: "H", self.query: "?"}
        return " ".join(names.get(int(t), f"={int(t)}") for t in tokens)


def run_frjt(program: list[int], num_values: int = 4) -> tuple[int, int, list[int]]:
    """Reference interpreter: execute ``program`` (0 = NOP, 1..num_values-1 = SET, num_values = HALT).

    Returns (final register, depth, executed positions). Written as the plain program-counter loop
    it describes, sharing no code with the generator.
    """
    pc, reg, executed = 0, 0, []
    while pc < len(program) and program[pc] != num_values:
        if program[pc] != 0:
            reg = program[pc]
        executed.append(pc)
        pc += 2 if reg % 2 == 1 else 1
    return reg, len(executed), executed


# ---------------------------------------------------------------------------------------------
# Withheld Maze Position Tracking
# ---------------------------------------------------------------------------------------------

MOVES = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


@dataclass(frozen=True)
class Maze:
    """Withheld Maze Position Tracking: follow moves through a walled grid without seeing yourself.

    The sequence is the grid, row by row, one token per cell naming both the cell and its
    content (``cell i is FREE / WALL / START``: token ``3 * i + content``, so a reader need not
    count cells to know which one it is looking at), then ``max_depth`` move slots (U, D, L, R
    or NOOP padding), then a QUERY. A move into a wall or off the grid does nothing. The
    position is never shown after the START cell; the model must output it after every move
    (dense probes) and at the QUERY (the answer), as a class ``row * width + col``. Depth is
    the number of moves; the remaining slots are NOOPs.
    """

    max_depth: int = 64
    height: int = 4
    width: int = 4
    wall_prob: float = 0.35

    name = "maze"
    FREE, WALL, START = 0, 1, 2  # cell contents; the token of cell i holding content k is 3 * i + k

    @property
    def cells(self) -> int:
        return self.height * self.width

    @property
    def move_tokens(self) -> dict[str, int]:
        return {m: 3 * self.cells + k for k, m in enumerate("UDLR")}

    @property
    def noop(self) -> int:
        return 3 * self.cells + 4

    @property
    def query(self) -> int:
        return 3 * self.cells + 5

    @property
    def vocab_size(self) -> int:
        return 3 * self.cells + 6

    @property
    def num_classes(self) -> int:
        return self.height * self.width

    @property
    def seq_len(self) -> int:
        return self.height * self.width + self.max_depth + 1

    def sample(self, rng: np.random.Generator, depths: np.ndarray) -> dict[str, np.ndarray]:
        """A batch with one maze per entry of ``depths`` (int [B], each in [1, max_depth])."""
        depths = np.asarray(depths, dtype=np.int64)
        _check_depths(self.name, depths, self.max_depth)
        batch = len(depths)
        content = np.where(rng.random((batch, self.cells)) < self.wall_prob, self.WALL, self.FREE)
        content[np.arange(batch), rng.integers(0, self.cells, size=batch)] = self.START
        grid = 3 * np.arange(self.cells) + content  # (B, H*W)
        move_ids = np.array(list(self.move_tokens.values()))
        moves = move_ids[rng.integers(0, 4, size=(batch, self.max_depth))]  # (B, D)
        moves[np.arange(self.max_depth)[None, :] >= depths[:, None]] = self.noop
        tokens = np.concatenate([grid, moves, np.full((batch, 1), self.query)], axis=1)  # (B, T)
        return {"tokens": tokens, "targets": self.trace(tokens), "depth": depths}

    def trace(self, tokens: np.ndarray) -> np.ndarray:
        """Position class after each move slot and at the QUERY; IGNORE over the grid (int [B, T])."""
        batch, seq_len = tokens.shape
        content = tokens[:, : self.cells] % 3  # (B, H*W)
        rows = np.arange(batch)
        # Row and column step of every token id: zero for NOOP and QUERY (and the grid ids).
        d_row = np.zeros(self.vocab_size, dtype=np.int64)
        d_col = np.zeros(self.vocab_size, dtype=np.int64)
        for move, tok in self.move_tokens.items():
            d_row[tok], d_col[tok] = MOVES[move]
        row, col = np.divmod(np.argmax(content == self.START, axis=1), self.width)
        targets = np.full((batch, seq_len), IGNORE, dtype=np.int64)
        for t in range(self.cells, seq_len):
            new_row, new_col = row + d_row[tokens[:, t]], col + d_col[tokens[:, t]]
            inside = (
                (new_row >= 0) & (new_row < self.height) & (new_col >= 0) & (new_col < self.width)
            )
            new_pos = np.clip(new_row, 0, self.height - 1) * self.width + np.clip(
                new_col, 0, self.width - 1
            )
            free = inside & (content[rows, new_pos] != self.WALL)
            row, col = np.where(free, new_row, row), np.where(free, new_col, col)
            targets[:, t] = row * self.width + col
        return targets

    def describe(self, tokens: np.ndarray) -> str:
        """One sequence as readable text: the grid as lines of ``. # S``, then the moves."""
        glyphs = ".#S"
        cells = "".join(glyphs[int(t) % 3] for t in tokens[: self.cells])
        lines = [cells[r * self.width : (r + 1) * self.width] for r in range(self.height)]
        names = {tok: m for m, tok in self.move_tokens.items()} | {self.noop: "_", self.query: "?"}
        return "\n".join(lines) + "\n" + " ".join(names[int(t)] for t in tokens[self.cells :])


def run_maze(grid: list[str], moves: str) -> tuple[tuple[int, int], int]:
    """Reference interpreter: walk ``moves`` (a string over UDLR) from ``S`` in ``grid`` (rows of ``.#S``).

    Returns the final (row, col) and the depth (number of moves). Shares no code with the generator.
    """
    (row, col) = next((r, line.index("S")) for r, line in enumerate(grid) if "S" in line)
    for move in moves:
        d_row, d_col = MOVES[move]
        r, c = row + d_row, col + d_col
        if 0 <= r < len(grid) and 0 <= c < len(grid[0]) and grid[r][c] != "#":
            row, col = r, c
    return (row, col), len(moves)


TASKS = {
    "frjt": FRJT,
    "maze": Maze,
    # REPL-trace state tracking (statetracking.py runs these, scored on the printed answers)
    "repl_s3": functools.partial(ReplTrace, name="repl_s3", group="sym", n_vars=3),
    "repl_s5": functools.partial(ReplTrace, name="repl_s5", group="sym", n_vars=5),
    "repl_a4": functools.partial(ReplTrace, name="repl_a4", group="alt", n_vars=4),
    "repl_z5": functools.partial(ReplTrace, name="repl_z5", group="cyclic", n_vars=5),
}


def make_task(name: str, **kwargs) -> FRJT | Maze | ReplTrace:
    """The task called ``name`` (a key of TASKS), built with ``kwargs``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid names: {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)
