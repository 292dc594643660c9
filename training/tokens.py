"""Typed-text actions (`--actions tokens`): a tokenizer of the key stream, FBAM_TOK-style.

The model can predict tokens instead of keys, as the FBAM paper's trainer does (its `FBAM_TOK
v1.0`: about 20k tokens of single characters, frequent code words, runs of spaces and runs of
arrow keys up to 31). A token is a sequence of keys (action ids of schemas/chars.json); one
token can span several frames. `train_tokenizer` builds the vocabulary from key streams,
deterministically (the same streams give the same tokens, in the same order):

    1. every single action, with token id = action id (so a one-key token means that key);
    2. runs of one arrow key (<Up>, <Down>, <Left>, <Right>) of 2..31 presses, and runs of 2..31
       spaces: always all of them, whatever the data;
    3. words: the maximal runs of word characters (letters, digits, _) of 2..MAX_WORD typed
       keys, and of other printable characters (punctuation, `()`, `->`, ...) of 2..MAX_PUNCT,
       found in the streams, seen at least MIN_COUNT times, ranked by count x (length - 1)
       (the keys they save as one token), ties by the keys themselves; the best, up to
       `vocab_size` tokens in all (fewer when the data holds fewer such words).

`Tokenizer.encode` applies it by greedy longest match from a session's first key (a trie walk:
at each key the longest token that starts there); every key is covered exactly once, and
`decode` of the tokens gives the keys back. `TokenTable` is the loader's side: each session of
a split encoded once, and a batch's actions replaced in place by the token starting at each
step, its mask cleared inside a token (see FrameStream). The tokenizer is saved in the
checkpoint as plain data (`to_dict`), reused on resume and by evaluate and sample.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ghframes.errors import GhframesError
from ghframes.store.planes import SegmentDecoder
from ghframes.store.reader import FrameShard

from .chars import OTHER
from .parts import Part
from .plan import data_key

ACTIONS = ("keys", "tokens")  # what the model predicts (TrainConfig.actions)
TOKENIZER_FORMAT = "ghframes.training.tokens/1"
TOKEN_VOCAB = 20_000  # default vocabulary size, single keys included
ARROWS = ("<Up>", "<Down>", "<Left>", "<Right>")
MAX_RUN = 31  # longest arrow-key and space run that is one token
MAX_WORD = 24  # longest word token (word characters)
MAX_PUNCT = 8  # longest run of other printable characters that is one token
MIN_COUNT = 2  # a word seen fewer times is not a token

WORD, PUNCT, SPACE, NONE = 0, 1, 2, 3  # classes of a key, for finding words


def key_classes(action_names: Sequence[str]) -> np.ndarray:
    """int8 [A]: WORD, PUNCT (other printable), SPACE or NONE (not a typed character) by id."""
    out = np.full(len(action_names), NONE, np.int8)
    for i, name in enumerate(action_names):
        if name == " ":
            out[i] = SPACE
        elif len(name) == 1:
            out[i] = WORD if name.isalnum() or name == "_" else PUNCT
    return out


def typed_characters(action_names: Sequence[str]) -> np.ndarray:
    """bool [A]: the keys that type one printable character: the one-character actions
    (printable ASCII, the space included) and <other> (one outside the vocabulary). Not
    <Enter> or <Tab>. What "per typed character" counts (evaluate.py)."""
    typed = np.array([len(name) == 1 for name in action_names])
    if len(typed) > OTHER:
        typed[OTHER] = True
    return typed


@dataclass(frozen=True)
class Tokenizer:
    """Token id -> keys (action ids into `action_names`); `data`: the `data_key` of the split
    it was trained on (what a resume checks)."""

    action_names: tuple[str, ...]
    tokens: tuple[tuple[int, ...], ...]
    data: str

    def __post_init__(self) -> None:
        trie: dict = {}
        for token_id, keys in enumerate(self.tokens):
            node = trie
            for k in keys[:-1]:
                node = node.setdefault(k, [-1, {}])[1]
            node.setdefault(keys[-1], [-1, {}])[0] = token_id
        object.__setattr__(self, "_trie", trie)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, keys: np.ndarray) -> np.ndarray:
        """int64 [n] keys -> int64 [n]: at each key the id of the token that starts there
        (greedy longest match from key 0), -1 at the keys inside a token."""
        keys = keys.tolist()
        out = np.full(len(keys), -1, np.int64)
        trie, n, i = self._trie, len(keys), 0
        while i < n:
            node, j, best, end = trie, i, keys[i], i + 1  # a single key is always a token
            while j < n:
                entry = node.get(keys[j])
                if entry is None:
                    break
                j += 1
                if entry[0] >= 0:
                    best, end = entry[0], j
                node = entry[1]
            out[i] = best
            i = end
        return out

    def decode(self, ids: Iterable[int]) -> list[int]:
        """Token ids -> the keys (action ids) they stand for, in order."""
        return [k for t in ids for k in self.tokens[t]]

    def names(self, token_id: int) -> list[str]:
        """The action strings of a token's keys."""
        return [self.action_names[k] for k in self.tokens[token_id]]

    def first_keys(self) -> list[str]:
        """Token id -> the action string of its first key (what metrics class a token by)."""
        return [self.action_names[keys[0]] for keys in self.tokens]

    def to_dict(self) -> dict:
        """Plain data (lists, strings, ints) for the checkpoint (read with weights_only)."""
        return {
            "format": TOKENIZER_FORMAT,
            "data": self.data,
            "action_names": list(self.action_names),
            "tokens": [list(keys) for keys in self.tokens],
        }

    @classmethod
    def from_dict(cls, saved, where: str) -> Tokenizer:
        """A `to_dict` read back; one error line naming `where` when it is not one."""
        ok = isinstance(saved, dict) and saved.get("format") == TOKENIZER_FORMAT
        names, tokens = (saved.get("action_names"), saved.get("tokens")) if ok else (None, None)
        ok = ok and isinstance(saved.get("data"), str) and isinstance(names, list)
        ok = ok and isinstance(tokens, list) and all(isinstance(n, str) for n in names)
        ok = ok and all(
            isinstance(t, list) and t and all(type(k) is int and 0 <= k < len(names) for k in t)
            for t in tokens
        )
        ok = ok and [list(t) for t in tokens[: len(names)]] == [[k] for k in range(len(names))]
        if not ok:
            raise GhframesError(f"{where}: damaged tokenizer (not a {TOKENIZER_FORMAT})")
        return cls(tuple(names), tuple(tuple(t) for t in tokens), saved["data"])


def base_tokens(action_names: Sequence[str]) -> list[tuple[int, ...]]:
    """Steps 1 and 2 of the algorithm: the single keys, then the arrow and space runs."""
    tokens = [(k,) for k in range(len(action_names))]
    for name in (*ARROWS, " "):
        k = action_names.index(name)
        tokens += [(k,) * n for n in range(2, MAX_RUN + 1)]
    return tokens


def word_counts(streams: Iterable[np.ndarray], action_names: Sequence[str]) -> collections.Counter:
    """{keys: times seen} of the words (step 3) of the key streams (int64 [n] each)."""
    classes = key_classes(action_names)
    longest = {WORD: MAX_WORD, PUNCT: MAX_PUNCT}
    counts: collections.Counter = collections.Counter()
    for keys in streams:
        cls = classes[keys]
        edges = np.flatnonzero(np.diff(cls)) + 1
        bounds = [0, *edges.tolist(), len(keys)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            kind = int(cls[a]) if b > a else NONE
            if kind in longest and 2 <= b - a <= longest[kind]:
                counts[tuple(keys[a:b].tolist())] += 1
    return counts


def train_tokenizer(
    streams: Iterable[np.ndarray], action_names: Sequence[str], vocab_size: int, data: str
) -> Tokenizer:
    """The tokenizer of the key streams (the module docstring's algorithm)."""
    tokens = base_tokens(action_names)
    if vocab_size < len(tokens):
        raise GhframesError(
            f"token_vocab {vocab_size} is smaller than the {len(tokens)} tokens every tokenizer "
            f"has (each key, arrow and space runs of 2..{MAX_RUN}); use at least {len(tokens)}"
        )
    counts = word_counts(streams, action_names)
    known = set(tokens)
    ranked = sorted(
        (w for w, c in counts.items() if c >= MIN_COUNT and w not in known),
        key=lambda w: (-counts[w] * (len(w) - 1), w),
    )
    tokens += ranked[: vocab_size - len(tokens)]
    return Tokenizer(tuple(action_names), tuple(tokens), data)


def session_keys(stream, i: int, decoder: SegmentDecoder | None = None) -> np.ndarray:
    """int64 [num_frames]: the action ids of session i of a FrameStream, read through the
    frame-shard reader (characters and planes stay compressed, and are not cached)."""
    entry = stream.sessions[i]
    path = f"{stream.root}/{entry.shard}"
    shard = FrameShard(stream.fs, path, entry.num_frames, retries=stream.retries, colours=False)
    decoder = decoder or SegmentDecoder()
    parts = [Part(chunks, decoder).actions for chunks in shard.groups()]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class TokenTable:
    """The sessions of a FrameStream's split, encoded: `apply(out)` turns a batch's key ids into
    token ids in place. The tokenizer is `tokenizer`, else trained on the key streams of the
    source's train split (also for an eval split: the held-out sessions are never learned from)."""

    def __init__(self, stream, tokenizer: Tokenizer | None, vocab_size: int) -> None:
        decoder = SegmentDecoder()
        keys: dict[int, np.ndarray] = {}

        def read(i: int) -> np.ndarray | None:
            """Session i's keys; None when its shard cannot be read and the stream skips such
            shards (then it is skipped: masked out, counted in `stream.skipped`)."""
            if i not in keys:
                try:
                    keys[i] = session_keys(stream, i, decoder)
                except GhframesError as exc:
                    if not stream.skip_bad_shards:
                        raise
                    stream.mark_bad(i, str(exc))
                    keys[i] = None
            return keys[i]

        if tokenizer is None:
            train = stream.train_indices
            data = data_key([stream.sessions[i] for i in train])
            streams = (k for k in map(read, train) if k is not None)
            tokenizer = train_tokenizer(streams, stream.action_names, vocab_size, data)
        if list(tokenizer.action_names) != list(stream.action_names):
            raise GhframesError(
                f"{stream.source}: the tokenizer's keys ({len(tokenizer.action_names)} actions) "
                f"are not the data's ({len(stream.action_names)}): it was made for other data"
            )
        self.tokenizer = tokenizer
        split = set(stream.split_indices)
        sizes = [s.num_frames if i in split else 0 for i, s in enumerate(stream.sessions)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # [sessions + 1]
        # int32 [frames of the split]: the token starting at each frame, -1 inside one
        self.starts = np.full(int(self.offsets[-1]), -1, np.int32)
        for i in stream.split_indices:
            session = read(i)
            if session is not None:
                self.starts[self.offsets[i] : self.offsets[i + 1]] = tokenizer.encode(session)

    def apply(self, out: dict[str, np.ndarray]) -> None:
        """Batch arrays: `keys` <- the key ids; `actions` <- the token starting at each step (0
        inside a token and in padding); `mask` &= a token starts here."""
        np.copyto(out["keys"], out["actions"])
        real = out["session"] >= 0
        ids = np.full(out["actions"].shape, -1, np.int64)
        ids[real] = self.starts[self.offsets[out["session"][real]] + out["t"][real]]
        out["mask"] &= ids >= 0
        np.copyto(out["actions"], np.maximum(ids, 0))


def saved_tokenizer(ckpt: dict | None, path, actions: str) -> Tokenizer | None:
    """The tokenizer a run resumed from `ckpt` (at `path`) reuses: None for keys or no resume."""
    if ckpt is None or actions != "tokens":
        return None
    return Tokenizer.from_dict(ckpt.get("tokenizer"), f"{path}: tokenizer")


def check_tokenizer_data(tokenizer: Tokenizer | None, train_key: str, path, data: str) -> None:
    """Refuse to resume with a tokenizer trained on other data than the train split, whose
    `data_key` is `train_key`: its tokens would stand for another vocabulary of words."""
    if tokenizer is not None and tokenizer.data != train_key:
        raise GhframesError(
            f"{path}: the checkpoint's tokenizer was trained on other data ({tokenizer.data}), "
            f"not on the train split of {data} ({train_key}): resume on the data it was "
            "trained on, or start afresh"
        )
