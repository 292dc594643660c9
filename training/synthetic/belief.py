"""The Bayes-optimal reader of a REPL trace: exact forward filtering of the belief over states.

The state is the assignment of the values 1..n to the n variables, one of n! (120 for S5), so
the belief is an exact probability vector over all of them. A visible step moves the belief, a
hidden step ``if random() < p: STEP`` mixes it with its moved copy (p moved, 1 - p not), and
every printed value is first predicted from the belief (the optimum's answer distribution) and
then conditioned on, before the next value of the same line is predicted. This reads the trace
text itself, sharing no code with the generator (repl.py).
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np

_ASSIGN = re.compile(r"(?:if random\(\) < ([0-9.]+): )?([a-h](?:, [a-h])*) = (.+)")
_PRINT = re.compile(r"print\(([a-h](?:, [a-h])*)\)")


@functools.lru_cache(maxsize=8)
def states(n_vars: int) -> np.ndarray:
    """Every assignment of the values 1..n_vars to the variables: int64 [n!, n], sorted."""
    return np.array(list(itertools.permutations(range(1, n_vars + 1))), dtype=np.int64)


def state_index(rows: np.ndarray) -> np.ndarray:
    """Row numbers in ``states(n)`` of assignments ``rows`` (int [M, n])."""
    table = states(rows.shape[1])
    weights = (rows.shape[1] + 1) ** np.arange(rows.shape[1])[::-1]
    return np.searchsorted(table @ weights, rows @ weights)  # lexicographic order = code order


def _var(name: str) -> int:
    return ord(name) - ord("a")


def optimal_predictions(trace: list[tuple[str, str | None]], n_vars: int) -> np.ndarray:
    """P(value | everything before it) for every printed value in order: float [A, n_vars],
    column v - 1 for value v. Raises where a statement cannot be read or a print contradicts
    the belief (probability 0)."""
    table = states(n_vars)
    belief = None
    predictions = []
    for statement, output in trace:
        shown = _PRINT.fullmatch(statement)
        if shown:
            if belief is None or output is None:
                raise ValueError(f"belief: {statement!r} before any assignment or without output")
            for name, value in zip(shown.group(1).split(", "), output.split(" "), strict=True):
                column = table[:, _var(name)]
                predictions.append(np.bincount(column - 1, weights=belief, minlength=n_vars))
                belief = belief * (column == int(value))
                if belief.sum() <= 0:
                    raise ValueError(
                        f"belief: {statement!r} printed {output!r}, which has probability 0"
                    )
                belief = belief / belief.sum()
            continue
        assign = _ASSIGN.fullmatch(statement)
        if not assign:
            raise ValueError(f"belief: cannot read statement {statement!r}")
        prob, lhs, rhs = assign.groups()
        lhs, rhs = [_var(x) for x in lhs.split(", ")], rhs.split(", ")
        if all(x.isdigit() for x in rhs):  # the opening assignment: a known state
            if sorted(lhs) != list(range(n_vars)) or prob:
                raise ValueError(
                    f"belief: {statement!r} must assign every variable, unconditionally"
                )
            row = np.zeros((1, n_vars), dtype=np.int64)
            row[0, lhs] = [int(x) for x in rhs]
            belief = np.zeros(len(table))
            belief[state_index(row)] = 1.0
            continue
        if belief is None:
            raise ValueError(f"belief: {statement!r} before any assignment")
        src = np.arange(n_vars)
        src[lhs] = [_var(x) for x in rhs]
        moved = np.zeros_like(belief)
        moved[state_index(table[:, src])] = belief  # state s becomes s[src]
        belief = moved if prob is None else float(prob) * moved + (1 - float(prob)) * belief
    return np.array(predictions).reshape(-1, n_vars)
