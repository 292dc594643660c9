"""REPL traces: permutation composition written as Python REPL sessions, and their reference interpreter.

Siems et al. (2025), "Learning State-Tracking from Code Using Linear RNNs": ``n_vars`` variables
hold distinct values, each step permutes them with a statement such as ``a, b = b, a`` (a group
element), and now and then ``print(a, b, c)`` reveals the state, answered by the printed line.
A model reads the session as tokens and is scored only on the printed answers. In the partially
observed variant some steps are ``if random() < 0.5: a, b = b, a``: the outcome is never shown,
so an answer is uncertain and is scored against the Bayes-optimal predictor (belief.py).

Groups (the step statements are generators of the group acting on variable positions):
    sym     S_n: every transposition ``a, c = c, a`` (S3, S5: S5 is not solvable)
    alt     A_n: every 3-cycle ``a, b, c = b, c, a`` (A4: solvable, the control)
    cyclic  Z_n: every rotation of all variables ``a, b, c = b, c, a`` (abelian)
"""

from __future__ import annotations

import collections
import functools
import itertools
import random
import re
from dataclasses import dataclass

import numpy as np

from .belief import optimal_predictions
from .labels import IGNORE

NAMES = "abcdefgh"
MAX_VARS = len(NAMES)
COIN = 0.5  # the probability in ``if random() < 0.5: ...``
GROUPS = ("sym", "alt", "cyclic")

Trace = list[tuple[str, str | None]]  # (statement typed after ">>> ", printed line or None)


def group_moves(group: str, n_vars: int) -> list[tuple[int, ...]]:
    """The step statements of ``group`` on ``n_vars`` variables, as tuples ``src``: after the
    statement, variable i holds what variable ``src[i]`` held."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; valid names: {', '.join(GROUPS)}")
    if not 2 <= n_vars <= MAX_VARS or (group == "alt" and n_vars < 3):
        raise ValueError(f"{group}: n_vars must lie in [{2 + (group == 'alt')}, 8], got {n_vars}")
    ident = list(range(n_vars))
    moves = []
    for i in range(n_vars):
        for j in range(i + 1, n_vars):
            if group == "sym":
                src = ident.copy()
                src[i], src[j] = j, i
                moves.append(tuple(src))
            for m in range(j + 1, n_vars) if group == "alt" else ():
                for cycle in ((j, m, i), (m, i, j)):  # both directions of the 3-cycle on i, j, m
                    src = ident.copy()
                    src[i], src[j], src[m] = cycle
                    moves.append(tuple(src))
    if group == "cyclic":
        moves = [tuple((i + shift) % n_vars for i in ident) for shift in range(1, n_vars)]
    return moves


def group_elements(group: str, n_vars: int) -> list[tuple[int, ...]]:
    """Every element of the group the step statements generate (their closure under
    composition), as ``src`` tuples like group_moves', the identity first."""
    ident = tuple(range(n_vars))
    seen, frontier = {ident: None}, [ident]
    moves = group_moves(group, n_vars)
    while frontier:
        perm = frontier.pop()
        for src in moves:
            new = tuple(perm[s] for s in src)
            if new not in seen:
                seen[new] = None
                frontier.append(new)
    return list(seen)


def move_statement(src: tuple[int, ...]) -> str:
    """``a, b = b, a``: the variables that change, assigned in one tuple statement."""
    changed = [i for i, s in enumerate(src) if s != i]
    return f"{', '.join(NAMES[i] for i in changed)} = {', '.join(NAMES[src[i]] for i in changed)}"


def repl_trace(
    group: str,
    n_vars: int,
    length: int,
    reveal_prob: float,
    seed: int,
    hidden_prob: float = 0.0,
    print_count: int | None = None,
) -> Trace:
    """One REPL session: a list of (statement, printed output or None) pairs.

    group, n_vars: the permutation group and its number of variables (``a``, ``b``, ...); see
        GROUPS. length: the number of steps (group statements). reveal_prob: after each step a
        ``print(...)`` follows with this probability (1.0: every step; 0.0: only at the end);
        the last step is always followed by one. seed: the trace is a function of all arguments.
    hidden_prob: the probability that a step is hidden, ``if random() < 0.5: STEP``, whose
        outcome is drawn from ``random.Random(seed)``, one draw per hidden step, in order; so a
        real ``python3`` REPL reproduces every printed line after
        ``from random import random, seed; seed(SEED)``.
    print_count: variables printed per reveal (a random subset in alphabetical order);
        None prints all of them.

    The first statement assigns the values 1..n_vars to the variables in a random order
    (``a, b, c = 2, 3, 1``); statements are the text typed after the ``>>> `` prompt, outputs
    the text Python prints (``3 1 2``), without the newline. A hidden step is a compound
    statement: typed into a real REPL it needs an empty line (at the ``...`` prompt) to run.
    """
    if not 0.0 <= reveal_prob <= 1.0 or not 0.0 <= hidden_prob <= 1.0:
        raise ValueError(
            f"repl: probabilities must lie in [0, 1], got {reveal_prob}, {hidden_prob}"
        )
    if length < 1:
        raise ValueError(f"repl: length must be >= 1, got {length}")
    count = n_vars if print_count is None else print_count
    if not 1 <= count <= n_vars:
        raise ValueError(f"repl: print_count must lie in [1, {n_vars}], got {print_count}")
    moves = group_moves(group, n_vars)
    rng = random.Random(f"{seed}:structure")  # str seeds are hashed deterministically
    coins = random.Random(seed)
    state = rng.sample(range(1, n_vars + 1), n_vars)
    names = ", ".join(NAMES[:n_vars])
    trace: Trace = [(f"{names} = {', '.join(map(str, state))}", None)]
    for step in range(length):
        src = rng.choice(moves)
        statement = move_statement(src)
        if rng.random() < hidden_prob:
            statement = f"if random() < {COIN}: {statement}"
            if coins.random() >= COIN:
                src = tuple(range(n_vars))
        state = [state[s] for s in src]
        trace.append((statement, None))
        if step == length - 1 or rng.random() < reveal_prob:
            shown = sorted(rng.sample(range(n_vars), count))
            trace.append(
                (
                    f"print({', '.join(NAMES[i] for i in shown)})",
                    " ".join(str(state[i]) for i in shown),
                )
            )
    return trace


def run_trace(trace: Trace, seed: int) -> list[str | None]:
    """Reference interpreter: run every statement with Python's own ``exec`` and return what each
    printed (None where nothing). The namespace has no builtins: only ``print``, captured into a
    buffer, and ``random``, the draws of ``random.Random(seed)``, as repl_trace documents."""
    printed: list[str] = []

    def capture(*args: object) -> None:
        printed.append(" ".join(map(str, args)))

    namespace = {"__builtins__": {}, "print": capture, "random": random.Random(seed).random}
    outputs = []
    for statement, _ in trace:
        before = len(printed)
        # "single" is the REPL's own mode; a compound statement (``if ...:``) ends at a newline,
        # which a real REPL asks for as an empty line after its ``...`` prompt.
        exec(compile(statement + "\n", "<repl>", "single"), namespace)
        outputs.append("\n".join(printed[before:]) if len(printed) > before else None)
    return outputs


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

PAD = "<pad>"
VOCAB = (
    [PAD, ">>>", "\n", ",", "=", "(", ")", "<", ":", "print", "if", "random", str(COIN)]
    + list(NAMES)
    + [str(v) for v in range(1, MAX_VARS + 1)]
)
TOKEN_ID = {tok: i for i, tok in enumerate(VOCAB)}
VALUE_CLASS = {TOKEN_ID[str(v)]: v - 1 for v in range(1, MAX_VARS + 1)}  # value token -> class
_WORD = re.compile(r">>>|\d+\.\d+|\w+|[^\w\s]")


@functools.lru_cache(maxsize=4096)
def _line_ids(text: str) -> tuple[int, ...]:
    return tuple(TOKEN_ID[w] for w in _WORD.findall(text)) + (TOKEN_ID["\n"],)


def encode(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """Word-level tokens of a session and its targets: (tokens int64 [T], targets int64 [T]).

    Each statement is ``>>>``, its words and punctuation, ``\\n``; each printed line its values
    and ``\\n`` (spaces are dropped: the words say where they were). The target at position t is
    the class (value - 1) of token t + 1 where that token is a printed value, IGNORE elsewhere:
    the model is scored only on the revealed answers.
    """
    ids, answer = [], []
    for statement, output in trace:
        line = (TOKEN_ID[">>>"], *_line_ids(statement))
        ids += line
        answer += [False] * len(line)
        if output is not None:
            line = _line_ids(output)
            ids += line
            answer += [tok in VALUE_CLASS for tok in line]
    tokens = np.array(ids, dtype=np.int64)
    targets = np.full(len(ids), IGNORE, dtype=np.int64)
    where = np.flatnonzero(answer)
    targets[where - 1] = [VALUE_CLASS[int(t)] for t in tokens[where]]
    return tokens, targets


def decode(tokens: np.ndarray) -> str:
    """Readable text of token ids (padding dropped), one line per statement or output."""
    words = [VOCAB[int(t)] for t in tokens if int(t) != TOKEN_ID[PAD]]
    return " ".join(words).replace(" \n ", "\n").replace(" \n", "\n")


@dataclass(frozen=True)
class ReplTrace:
    """REPL-trace state tracking as a task of the suite: ``sample(rng, depths)``, depth = steps.

    Every batch is padded with ``<pad>`` (target IGNORE) to ``seq_len``, the longest session of
    ``max_depth`` steps. Besides tokens, targets and depth, a batch holds ``final``: bool [B, T],
    the targets of the last reveal; and with ``optimum=True`` the Bayes-optimal distribution of
    every answer (float [B, T, num_classes], zero where the target is IGNORE).
    """

    name: str = "repl_s5"
    group: str = "sym"
    n_vars: int = 5
    max_depth: int = 64
    reveal_prob: float = 1.0
    hidden_prob: float = 0.0
    print_count: int | None = None

    def __post_init__(self) -> None:
        group_moves(self.group, self.n_vars)  # validates group and n_vars
        repl_trace(
            self.group, self.n_vars, 1, self.reveal_prob, 0, self.hidden_prob, self.print_count
        )

    @property
    def vocab_size(self) -> int:
        return len(VOCAB)

    @property
    def num_classes(self) -> int:
        return self.n_vars

    @property
    def seq_len(self) -> int:
        step = max(len(_line_ids(move_statement(m))) for m in group_moves(self.group, self.n_vars))
        step += 1 + (len(_line_ids(f"if random() < {COIN}: ")) - 1 if self.hidden_prob else 0)
        count = self.n_vars if self.print_count is None else self.print_count
        reveal = (2 * count + 4) + (count + 1)  # >>> print ( a , b ) \n 1 2 \n
        head = 1 + 4 * self.n_vars  # >>> a , b = 1 , 2 \n
        return head + self.max_depth * (step + reveal)

    def chance(self) -> float:
        """Accuracy of a state-blind reader: uniform over the values not yet printed in the line."""
        count = self.n_vars if self.print_count is None else self.print_count
        return float(np.mean([1 / (self.n_vars - j) for j in range(count)]))

    def group_chance(self) -> float:
        """Accuracy of a reader that knows the group and the first assignment, not the steps:
        the state taken as uniform over the group's elements applied to the start, each value
        predicted as the most likely given those printed before it in the line (averaged over
        the printed subsets). For S_n it is chance(); for Z5 the first value fixes the rest."""
        elements = group_elements(self.group, self.n_vars)
        count = self.n_vars if self.print_count is None else self.print_count
        subsets = list(itertools.combinations(range(self.n_vars), count))
        total = 0.0
        for printed in subsets:
            for j in range(count):
                # classes of the elements by the values printed before position j, then the
                # most frequent value at j within each class
                classes = collections.Counter(
                    tuple(g[printed[i]] for i in range(j + 1)) for g in elements
                )
                best: dict[tuple, int] = {}
                for key, n in classes.items():
                    best[key[:-1]] = max(best.get(key[:-1], 0), n)
                total += sum(best.values()) / len(elements)
        return total / (len(subsets) * count)

    def traces(self, rng: np.random.Generator, depths: np.ndarray) -> tuple[list[Trace], list[int]]:
        """One session per entry of ``depths`` and the seed each was drawn from."""
        seeds = [int(s) for s in rng.integers(0, 2**62, size=len(depths))]
        args = (self.group, self.n_vars)
        opts = (self.hidden_prob, self.print_count)
        return [
            repl_trace(*args, int(d), self.reveal_prob, s, *opts)
            for d, s in zip(depths, seeds, strict=True)
        ], seeds

    def sample(
        self, rng: np.random.Generator, depths: np.ndarray, optimum: bool = False
    ) -> dict[str, np.ndarray]:
        """A batch with one session per entry of ``depths`` (int [B], each in [1, max_depth])."""
        depths = np.asarray(depths, dtype=np.int64)
        if depths.size and (depths.min() < 1 or depths.max() > self.max_depth):
            raise ValueError(
                f"{self.name}: depths must lie in [1, {self.max_depth}], got {depths.min()}..{depths.max()}"
            )
        traces, _ = self.traces(rng, depths)
        batch = len(traces)
        tokens = np.full((batch, self.seq_len), TOKEN_ID[PAD], dtype=np.int64)
        targets = np.full((batch, self.seq_len), IGNORE, dtype=np.int64)
        final = np.zeros((batch, self.seq_len), dtype=bool)
        probs = np.zeros((batch, self.seq_len, self.num_classes)) if optimum else None
        for row, trace in enumerate(traces):
            ids, tgt = encode(trace)
            tokens[row, : len(ids)], targets[row, : len(ids)] = ids, tgt
            where = np.flatnonzero(tgt != IGNORE)
            final[row, where[-len(_line_ids(trace[-1][1])) + 1 :]] = True
            if optimum:
                probs[row, where] = optimal_predictions(trace, self.n_vars)
        out = {"tokens": tokens, "targets": targets, "depth": depths, "final": final}
        if optimum:
            out["optimum"] = probs
        return out
