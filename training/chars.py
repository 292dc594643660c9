"""Character and action ids of training batches, as schemas/chars.json defines them.

`CHAR_VOCAB` ids; `char_ids(codepoints)` maps any array of code points (vectorised: a 64 Ki
entry uint8 table for the Basic Multilingual Plane, the hash itself above it);
`ACTION_NAMES` (id -> action string; the vocabulary is schemas/actions.json's, read by
ghframes.store.actions) and `action_ids(strings)` (pyarrow, vectorised).
"""

from __future__ import annotations

import functools
import importlib.resources
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ghframes.store.actions import BY_NUMBER_PATTERN, TOKENS


@functools.cache
def spec() -> dict:
    text = importlib.resources.files("ghframes.schemas").joinpath("chars.json").read_text()
    return json.loads(text)


_C = spec()["char_ids"]
ASCII_LIMIT: int = _C["ascii_limit"]
BUCKET_BITS: int = _C["bucket_bits"]
MULTIPLIER: int = _C["multiplier"]
CHAR_VOCAB: int = _C["vocab"]
assert ASCII_LIMIT + (1 << BUCKET_BITS) == CHAR_VOCAB <= 256


def _hash_ids(cp: np.ndarray) -> np.ndarray:
    """The id of every code point in `cp` by the definition (any integer array)."""
    cp = cp.astype(np.uint64)
    bucket = ((cp * np.uint64(MULTIPLIER)) & np.uint64(0xFFFFFFFF)) >> np.uint64(32 - BUCKET_BITS)
    return np.where(cp < ASCII_LIMIT, cp, ASCII_LIMIT + bucket).astype(np.uint8)


BMP_TABLE: np.ndarray = _hash_ids(np.arange(1 << 16))  # uint8 [65536]: id of each BMP code point


def char_id(cp: int) -> int:
    return int(_hash_ids(np.array([cp]))[0])


def char_ids(cp: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 ids of the code points `cp` (uint8/16/32 array), written to `out` if given."""
    if cp.dtype == np.uint8 or cp.dtype == np.uint16:
        return np.take(BMP_TABLE, cp, out=out)
    ids = np.take(BMP_TABLE, np.minimum(cp, 0xFFFF), out=out)
    high = cp > 0xFFFF
    if high.any():
        ids[high] = _hash_ids(cp[high])
    return ids


# -- actions ------------------------------------------------------------------------------------


def _action_names() -> list[str]:
    """Action id -> action string, in the order schemas/chars.json defines."""
    ids = spec()["action_ids"]
    printable_ascii = [chr(c) for c in range(0x20, 0x7F)]
    return [*printable_ascii, *TOKENS, ids["by_number"], ids["other_printable"]]


ACTION_NAMES: list[str] = _action_names()
BY_NUMBER = ACTION_NAMES.index(spec()["action_ids"]["by_number"])
OTHER = ACTION_NAMES.index(spec()["action_ids"]["other_printable"])
_VOCAB = pa.array(ACTION_NAMES[:BY_NUMBER], pa.string())


def action_ids(strings: pa.Array) -> tuple[np.ndarray, int]:
    """(int64 ids of the action strings, index of the first string that is no action or -1)."""
    ids = pc.index_in(strings, value_set=_VOCAB)
    if ids.null_count:
        by_number = pc.match_substring_regex(strings, BY_NUMBER_PATTERN)
        one_char = pc.equal(pc.utf8_length(strings), 1)
        other = pc.if_else(
            by_number, BY_NUMBER, pc.if_else(one_char, OTHER, pa.scalar(None, ids.type))
        )
        ids = pc.coalesce(ids, other)
    out = ids.to_numpy(zero_copy_only=False)
    if ids.null_count:
        bad = int(np.flatnonzero(np.asarray(ids.is_null()))[0])
        return np.zeros(len(strings), np.int64), bad
    return out.astype(np.int64), -1
