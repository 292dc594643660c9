"""How human the keystrokes are: the figures of `ghframes stats DATA --actions`.

Every session's actions are streamed once (a row group at a time, through the one shard
reader); the keys of each change played in the editor (`editor_first`, `editor_actions` in the
session description: from the opened file to the save `<C-s>`, and the `<C-q>` after it) are
replayed on the editor model (`Editor(before)`, as `ghframes verify` does) with a provenance
mask: each character of the buffer is the file's own, typed in this change, or inserted by the
editor itself (autoindent). Memory: one row group, one file's editor and one session's edit
rows, whatever the dataset's size. The same counting (`KeyStats`) serves a dataset folder
(`dataset_figures`) and sessions rendered in memory (`rendered_figures`, the benchmark).

Definitions (the short name each is printed and stored under):

- `share.CLASS`: actions of the class ÷ all actions. Classes: `printable` (editor keys that type
  a character: a single printable character, `<Tab>`, `<C-v>` and the control key after it,
  `<U+XXXX>`), `enter` (`<Enter>` outside prompts), `backspace` (`<BS>`, `<C-BS>` outside
  prompts), `delete` (`<Del>`), `cut` (`<C-k>`), `vertical` (`<Up>`, `<Down>`), `horizontal`
  (`<Left>`, `<Right>`, `<Home>`, `<End>`), `word` (`<C-Left>`, `<C-Right>`), `page` (`<PgUp>`,
  `<PgDn>`), `search` (`<C-f>` and every key at the search prompt through the `<Enter>`, `<C-c>`
  or `<Esc>` that closes it), `goto` (`<C-g>` and the keys of the go-to-line prompt likewise),
  `save_quit` (`<C-s>`, and the `<C-q>` after a change), `shell` (every other action: the
  commands typed at the prompt, their `<Enter>`, the final `<C-d>`). An editor key of no class
  is an error naming session and frame.
- typed character: a character a key put in the buffer: the one a printable key names, the
  newline of `<Enter>`. What the editor adds by itself (the indentation `<Enter>` copies) is
  not typed. A typed character survives if it is still in the buffer at the save.
- `kspc` (keystrokes per character, Dhakal et al. 2018 for transcription): keys of the typing
  classes (printable, enter, backspace, delete) pressed in the editor ÷ typed characters that
  survive. Deleting the file's own text costs keys too, so editing scores above transcription.
- `kspc_own_text`: the same with only the keys that type a character or delete at least one
  typed character (and `<C-v>`): the cost of the text typed, as in transcription.
- `typo_rate`: typed characters deleted again within their change ÷ typed characters.
- `longest_run`: the most consecutive identical editor actions, the key, where it starts.
- `enter_opens_line`: editor `<Enter>` presses made at the end of the cursor's line, or at
  column 0 of a line and followed directly by `<Up>` (opening a line above) ÷ editor `<Enter>`
  presses; the others push text to the right (Enter within a line, or at column 0 of a
  non-empty line, then typing).
- `indent_keys_per_line`: after each editor `<Enter>` (after the `<Up>`, when it opens a line
  above), indentation keys (space, `<Tab>`, `<BS>`, `<C-BS>` pressed while all before the
  cursor on its line is blank) up to the first other key ÷ the new lines that have leading
  whitespace at that key (indented new lines). With autoindent a typist types the difference.
- `inter_key_ms.all`, `inter_key_ms.printable`: median, 95th percentile (nearest rank) and mean
  of `dt`, the ms each frame was on screen before its action, over all actions and over
  printable ones; "no times recorded" for shards before frames 1.3 (sessions without `dt` are
  left out of these figures).
- `wpm`: surviving typed characters ÷ 5 per minute of typing-class keys (their `dt`), in the
  editor changes replayed.
- `totals`: frames, editor keys, shell keys, typed characters, and the counts behind the ratios.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from ghframes.errors import GhframesError
from ghframes.render.editor import Editor, EditorError
from ghframes.store.actions import BY_NUMBER_PATTERN, CONTROL

# Published human typing (transcription of sentences in a web test): Dhakal, Feit, Kristensson,
# Oulasvirta, "Observations on Typing from 136 Million Keystrokes", CHI 2018, Table 1; 136 M
# keystrokes of 168,000 participants; "about 1.17 keystrokes per character, backspace the main
# correction".
REFERENCE_SOURCE = "Dhakal et al. 2018, 136 M keystrokes, 168,000 participants"
REFERENCE_WPM = 51.56  # mean words (5 characters) per minute
REFERENCE_INTER_KEY_MS = 238.66  # mean inter-key interval, every key
REFERENCE_KSPC = 1.17  # mean keystrokes per character of the transcribed sentence
REFERENCE_UNCORRECTED_ERROR_RATE = 0.0117  # errors left in the text (not our typo rate)
REFERENCE = {
    "source": REFERENCE_SOURCE,
    "wpm": REFERENCE_WPM,
    "inter_key_ms_mean": REFERENCE_INTER_KEY_MS,
    "kspc": REFERENCE_KSPC,
    "uncorrected_error_rate": REFERENCE_UNCORRECTED_ERROR_RATE,
}

CLASSES = (
    "printable", "enter", "backspace", "delete", "cut", "vertical", "horizontal", "word",
    "page", "search", "goto", "save_quit", "shell",
)  # fmt: skip
(PRINTABLE, ENTER, BACKSPACE, DELETE, CUT, VERTICAL, HORIZONTAL, WORD, PAGE, SEARCH, GOTO,
 SAVE_QUIT, SHELL) = range(len(CLASSES))  # fmt: skip
TYPING = (PRINTABLE, ENTER, BACKSPACE, DELETE)  # the classes `kspc` counts
CHANGING = (PRINTABLE, ENTER, BACKSPACE, DELETE, CUT)  # keys that may change the text
KEY_CLASS = {
    "<Tab>": PRINTABLE, "<C-v>": PRINTABLE, "<Enter>": ENTER, "<BS>": BACKSPACE,
    "<C-BS>": BACKSPACE, "<Del>": DELETE, "<C-k>": CUT, "<Up>": VERTICAL, "<Down>": VERTICAL,
    "<Left>": HORIZONTAL, "<Right>": HORIZONTAL, "<Home>": HORIZONTAL, "<End>": HORIZONTAL,
    "<C-Left>": WORD, "<C-Right>": WORD, "<PgUp>": PAGE, "<PgDn>": PAGE, "<C-f>": SEARCH,
    "<C-g>": GOTO, "<C-s>": SAVE_QUIT, "<C-q>": SAVE_QUIT,
}  # fmt: skip
PROMPTS = {"<C-f>": SEARCH, "<C-g>": GOTO}
CLOSE_PROMPT = ("<Enter>", "<C-c>", "<Esc>")
INDENT_KEYS = (" ", "<Tab>", "<BS>", "<C-BS>")
BY_NUMBER = re.compile(BY_NUMBER_PATTERN)
OWN, TYPED, AUTO = 0, 1, 2  # provenance of a buffer character: the file's, typed, the editor's


def _common(a: str, b: str, hi: int, suffix: bool) -> int:
    """The length of the longest common prefix (or suffix) of a and b, at most `hi`."""
    lo = 0
    while lo < hi:  # binary search: every comparison is one C-level slice compare
        mid = (lo + hi + 1) // 2
        same = a[len(a) - mid :] == b[len(b) - mid :] if suffix else a[:mid] == b[:mid]
        lo, hi = (mid, hi) if same else (lo, mid - 1)
    return lo


def text_diff(a: str, b: str, ca: int, cb: int) -> tuple[int, int, int]:
    """(start, deleted, inserted): b is a with a[start:start+deleted] replaced by `inserted`
    characters. An insertion or a deletion at the cursor (at ca in a, cb in b) is placed there,
    so that a character typed before an equal one is the new one; any other edit is placed
    after the longest common prefix."""
    la, lb = len(a), len(b)
    p = min(ca, cb, la, lb)
    s = min(la, lb) - p
    if a[:p] == b[:p] and a[la - s :] == b[lb - s :]:
        return p, la - p - s, lb - p - s
    p = _common(a, b, min(la, lb), suffix=False)
    s = _common(a, b, min(la, lb) - p, suffix=True)
    return p, la - p - s, lb - p - s


def _typed_char(key: str, quoted: bool) -> str | None:
    """The character an editor key types, if any."""
    if quoted:
        return CONTROL[key]
    if len(key) == 1:
        return key
    if key == "<Tab>":
        return "\t"
    if key == "<Enter>":
        return "\n"
    if key.startswith("<U+"):
        return chr(int(key[3:-1], 16))
    return None


class _Change:
    """One change's editor keys: classified, and (with its `before` text) replayed on the
    editor model with a provenance mask: `masks[i]` holds one byte per character of line i
    and a last one for the newline after it."""

    def __init__(self, stats: KeyStats, before: str | None, where: str) -> None:
        self.stats, self.where = stats, where
        self.prompt: int | None = None  # SEARCH or GOTO while a prompt is open
        self.quoting = False
        self.editor = None if before is None else Editor(before)
        if self.editor is not None:
            self.masks = [bytearray(len(line) + 1) for line in self.editor.lines]
        self.typed = self.deleted = 0
        self.after_enter_at_0 = False  # an <Enter> at column 0 of a non-empty line just now
        self.run: int | None = None  # indentation keys since the last <Enter>

    def classify(self, key: str, t: int) -> tuple[int, bool]:
        """The key's class, and whether it is the control key after `<C-v>`."""
        if self.prompt is not None:
            cls = self.prompt
            if key in CLOSE_PROMPT:
                self.prompt = None
            elif len(key) != 1 and key not in KEY_CLASS and key not in CONTROL:
                raise self.unknown(key, t)
            return cls, False
        if self.quoting:
            if key not in CONTROL:
                raise self.unknown(key, t, " after <C-v>")
            self.quoting = False
            return PRINTABLE, True
        if len(key) == 1:
            return PRINTABLE, False
        cls = KEY_CLASS.get(key)
        if cls is None:
            if BY_NUMBER.match(key):
                return PRINTABLE, False
            raise self.unknown(key, t)
        if key == "<C-v>":
            self.quoting = True
        elif key in PROMPTS:
            self.prompt = PROMPTS[key]
        return cls, False

    def unknown(self, key: str, t: int, context: str = "") -> GhframesError:
        return GhframesError(f"{self.where}: frame {t}: unknown editor key {key!r}{context}")

    def press(self, key: str, t: int) -> int:
        """Take one editor key (frame t): its class."""
        cls, quoted = self.classify(key, t)
        ed = self.editor
        if ed is None:
            return cls
        stats = self.stats
        line, col = ed.lines[ed.row], ed.col
        if self.after_enter_at_0:
            self.after_enter_at_0 = False
            if key == "<Up>":  # <Home> <Enter> <Up>: the line opened above
                stats.enters_opening += 1
                self.run = 0
                self._replay(key, cls, quoted, t)
                return cls
        if self.run is not None:
            if key in INDENT_KEYS and cls in (PRINTABLE, BACKSPACE) and not line[:col].strip(" \t"):
                self.run += 1
            else:
                stats.indent_keys += self.run
                stats.indented_lines += line[:1] in (" ", "\t")
                self.run = None
        if cls == ENTER:
            stats.enters += 1
            if col == len(line):
                stats.enters_opening += 1
            elif col == 0:
                self.after_enter_at_0 = True
        self._replay(key, cls, quoted, t)
        if cls == ENTER:
            self.run = 0
        return cls

    def _replay(self, key: str, cls: int, quoted: bool, t: int) -> None:
        ed, stats = self.editor, self.stats
        if cls in TYPING:
            stats.kspc_keys += 1
            stats.own_text_keys += key == "<C-v>"  # the first key of a character's pair
        if cls not in CHANGING:
            try:
                ed.press(key)
            except EditorError as exc:
                raise GhframesError(f"{self.where}: frame {t}: {exc}") from None
            return
        # A key that changes the text changes the lines around the cursor: the window of
        # rows r0 - 2 .. r0 + 2 before it is compared with what stands there after it.
        lines = ed.lines
        r0, n0 = ed.row, len(lines)
        lo, hi0 = max(0, r0 - 2), min(n0, r0 + 3)
        old = lines[lo:hi0]
        ca = sum(map(len, old[: r0 - lo])) + (r0 - lo) + ed.col
        try:
            ed.press(key)
        except EditorError as exc:
            raise GhframesError(f"{self.where}: frame {t}: {exc}") from None
        lines = ed.lines
        hi1 = hi0 + len(lines) - n0
        new = lines[lo:hi1]
        if new == old:
            return
        r1 = ed.row
        assert lo <= r1 < max(hi1, lo + 1), f"{self.where}: frame {t}: an edit left its window"
        cb = sum(map(len, new[: r1 - lo])) + (r1 - lo) + ed.col
        a, b = "\n".join(old), "\n".join(new)
        p, deleted, inserted = text_diff(a, b, ca, cb)
        mask = bytearray().join(self.masks[lo:hi0])
        tail = mask.pop()  # the newline after the window's last line, outside the edit
        gone = mask[p : p + deleted].count(TYPED)
        fill = bytearray([AUTO]) * inserted
        char = _typed_char(key, quoted)
        if char is not None and inserted:
            at = b.find(char, p, p + inserted)
            if at >= 0:
                fill[at - p] = TYPED
            else:  # the key's character did not land as itself (a tab as spaces): all typed
                fill = bytearray([TYPED]) * inserted
        typed = fill.count(TYPED)
        mask[p : p + deleted] = fill
        mask.append(tail)
        masks, start = [], 0
        for text in new:
            masks.append(mask[start : start + len(text) + 1])
            start += len(text) + 1
        self.masks[lo:hi0] = masks
        self.typed += typed
        self.deleted += gone
        stats.auto_chars += inserted - typed
        stats.own_text_keys += cls in TYPING and bool(typed or gone)

    def finish(self, timed: bool) -> None:
        stats = self.stats
        if self.editor is None:
            stats.changes_without_text += 1
            return
        stats.changes_replayed += 1
        stats.typed += self.typed
        stats.typed_deleted += self.deleted
        if timed:
            stats.timed_surviving += self.typed - self.deleted


class KeyStats:
    """Running counts over sessions (`add_session`); `figures()` turns them into the figures."""

    def __init__(self) -> None:
        self.sessions = self.frames = 0
        self.classes = [0] * len(CLASSES)
        self.kspc_keys = self.own_text_keys = self.typed = self.typed_deleted = 0
        self.auto_chars = self.enters = self.enters_opening = 0
        self.indent_keys = self.indented_lines = 0
        self.changes_replayed = self.changes_without_text = 0
        self.longest: tuple[int, str, str, int] | None = None  # length, key, session, frame
        self.timed_sessions = self.timed_surviving = 0
        self.typing_ms = 0
        self.dt_all = np.zeros(1 << 16, np.int64)  # histograms of dt (ms)
        self.dt_printable = np.zeros(1 << 16, np.int64)

    def add_session(
        self,
        session: str,
        blocks: Iterable[tuple[Sequence[str], np.ndarray | None]],
        changes: Sequence[Mapping],
        befores: Mapping[tuple[int, str], str | None],
    ) -> None:
        """Count one session.

        blocks: its actions in order, a block at a time: (actions, dt) with dt uint16
            [len(actions)] ms or None (a shard before frames 1.3);
        changes: the session description's `changes`;
        befores: {(commit_index, path): text before the change} of its edit rows (a change
            without one is classified, not replayed).
        """
        ranges = []
        for change in changes:
            if "editor_first" in change:
                first, count = change["editor_first"], change["editor_actions"]
                where = f"{session}: {change['commit'][:12]}:{change['path']}"
                ranges.append((first, first + count, where, change))
        ranges.sort(key=lambda r: r[0])
        for (_, end, _, _), (first, _, where, _) in zip(ranges, ranges[1:], strict=False):
            if first <= end:
                raise GhframesError(f"{where}: its editor keys overlap the change before it")
        self.sessions += 1
        t, r = 0, 0
        current: _Change | None = None
        end = -1
        run_key, run = None, 0
        timed = None  # whether the session's blocks carry dt
        for actions, dt in blocks:
            if timed is None:
                timed = dt is not None
                self.timed_sessions += timed
            elif timed != (dt is not None):
                raise GhframesError(f"{session}: frame {t}: times for some actions only")
            classes = bytearray(len(actions))
            typing = bytearray(len(actions))  # typing keys of replayed changes
            for i, key in enumerate(actions):
                if current is None and r < len(ranges) and ranges[r][0] == t:
                    _, end, where, change = ranges[r]
                    before = befores.get((change["commit_index"], change["path"]))
                    current = _Change(self, before, where)
                    r += 1
                if current is not None and t < end:
                    cls = current.press(key, t)
                    typing[i] = current.editor is not None and cls in TYPING
                elif current is not None:  # t == end: the <C-q> that closes the editor
                    cls = SAVE_QUIT if key == "<C-q>" else SHELL
                    current.finish(bool(timed))
                    current = None
                else:
                    cls = SHELL
                classes[i] = cls
                if cls == SHELL:
                    run_key, run = None, 0
                else:
                    run = run + 1 if key == run_key else 1
                    run_key = key
                    if self.longest is None or run > self.longest[0]:
                        self.longest = (run, key, session, t - run + 1)
                t += 1
            counts = np.bincount(np.frombuffer(classes, np.uint8), minlength=len(CLASSES))
            for cls, count in enumerate(counts):
                self.classes[cls] += int(count)
            if dt is not None:
                self._times(session, t, actions, dt, classes, typing)
        if current is not None:
            current.finish(bool(timed))
        self.frames += t

    def _times(self, session, t, actions, dt, classes, typing) -> None:
        dt = np.asarray(dt)
        if dt.shape != (len(actions),):
            raise GhframesError(f"{session}: frame {t}: {dt.size} times for {len(actions)} actions")
        self.dt_all += np.bincount(dt, minlength=1 << 16)
        printable = np.frombuffer(classes, np.uint8) == PRINTABLE
        self.dt_printable += np.bincount(dt[printable], minlength=1 << 16)
        self.typing_ms += int(dt[np.frombuffer(typing, np.uint8).astype(bool)].sum(dtype=np.int64))

    def figures(self) -> dict:
        """The figures (keystats docstring), JSON-ready; a ratio of nothing is None."""

        def ratio(a: float, b: float, digits: int = 4) -> float | None:
            return round(a / b, digits) if b else None

        surviving = self.typed - self.typed_deleted
        editor_keys = self.frames - self.classes[SHELL]
        longest = None
        if self.longest is not None:
            n, key, session, frame = self.longest
            longest = {"length": n, "key": key, "session": session, "frame": frame}
        times = None
        if self.timed_sessions:
            times = {"all": _quantiles(self.dt_all), "printable": _quantiles(self.dt_printable)}
            minutes = self.typing_ms / 60_000
            times["wpm"] = ratio(self.timed_surviving / 5, minutes, 2)
        return {
            "sessions": self.sessions,
            "share": {
                name: ratio(n, self.frames) for name, n in zip(CLASSES, self.classes, strict=True)
            },
            "kspc": ratio(self.kspc_keys, surviving),
            "kspc_own_text": ratio(self.own_text_keys, surviving),
            "typo_rate": ratio(self.typed_deleted, self.typed),
            "longest_run": longest,
            "enter_opens_line": ratio(self.enters_opening, self.enters),
            "indent_keys_per_line": ratio(self.indent_keys, self.indented_lines),
            "inter_key_ms": times,
            "totals": {
                "frames": self.frames,
                "editor_keys": editor_keys,
                "shell_keys": self.classes[SHELL],
                "typed_chars": self.typed,
                "typed_chars_deleted": self.typed_deleted,
                "auto_chars": self.auto_chars,
                "enters": self.enters,
                "indented_lines": self.indented_lines,
                "changes_replayed": self.changes_replayed,
                "changes_without_text": self.changes_without_text,
                "timed_sessions": self.timed_sessions,
            },
            "reference": REFERENCE,
        }


def _quantiles(hist: np.ndarray) -> dict | None:
    """Median, 95th percentile (nearest rank) and mean of the values a histogram counts."""
    n = int(hist.sum())
    if not n:
        return None
    cum = np.cumsum(hist)

    def rank(q: float) -> int:
        return int(np.searchsorted(cum, max(1, int(np.ceil(q * n)))))

    mean = float(np.dot(np.arange(len(hist)), hist)) / n
    return {"median": rank(0.5), "p95": rank(0.95), "mean": round(mean, 2)}


def _shard_blocks(shard) -> Iterator[tuple[list[str], np.ndarray | None]]:
    for chunks in shard.groups():
        yield chunks.actions.flatten().to_pylist(), chunks.dt


def dataset_figures(data: str) -> dict:
    """The figures over every session of DATA, its edit rows read as `ghframes verify` reads
    them, its shards a row group at a time."""
    from ghframes.store import schema, shards
    from ghframes.store.frames import open_dataset
    from ghframes.store.reader import FrameShard
    from ghframes.verify import _edit_rows

    dataset = open_dataset(data)
    fs, root = shards.filesystem(data)
    edits_manifest = shards.read_manifest(fs, f"{root}/edits", schema.load("edits"))
    if edits_manifest is None:
        raise GhframesError(f"{data}: no edits manifest to replay the changes from")
    stats = KeyStats()
    for info in dataset.sessions():
        rows = _edit_rows(
            fs, root, edits_manifest, info.key, info.first_commit_index, info.last_commit_index
        )
        befores = {key: row["before"] or "" for key, row in rows.items()}
        del rows
        shard = FrameShard(dataset.fs, f"{dataset.root}/{info.shard}")
        changes = shard.description()["changes"]
        stats.add_session(info.id, _shard_blocks(shard), changes, befores)
    return stats.figures()


def chunk_blocks(chunks: Mapping[str, list]) -> Iterator[tuple[list[str], np.ndarray | None]]:
    """The (actions, dt) blocks of chunk columns as render_session returns them."""
    times = chunks.get("dt")
    for k, actions in enumerate(chunks["actions"]):
        dt = None if times is None else np.frombuffer(times[k], "<u2")
        yield actions, dt


def rendered_figures(sessions: Iterable[tuple[str, Mapping, Mapping, list[list[dict]]]]) -> dict:
    """The figures over sessions rendered in memory: (id, chunk columns, metadata, the
    commits' edit rows) each, as `render_session(repo, commits, options)` takes and returns."""
    stats = KeyStats()
    for session, chunks, metadata, commits in sessions:
        befores = {
            (row["commit_index"], row["path"]): row["before"] or ""
            for rows in commits
            for row in rows
        }
        stats.add_session(session, chunk_blocks(chunks), metadata["changes"], befores)
    return stats.figures()
