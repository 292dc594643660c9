"""`ghframes export DATA --session ID --format cast|html|png -o FILE`: a session for other tools.

- cast: asciicast v2 (asciinema). The first output event draws the first frame in full; each
  later event rewrites only the cells that changed, then places the cursor. Feeding the output
  events into a fresh 160x48 pyte screen reproduces every frame exactly. Events are at the
  recorded times (the shard's `dt`, schemas/frames.json): frame t appears when action t - 1 is
  pressed, so the output of frame t + 1 is at dt[0] + ... + dt[t], counted from the first
  exported frame. `--idle-time-limit` (default 2 s) goes into the header as asciinema's
  `idle_time_limit`: a player shortens every longer pause to it, so a minute spent thinking
  plays in 2 s while the timestamps keep the recorded times. `--cps N` spaces the events by a
  fixed N keystrokes per second instead, as does a shard without times (frames schema before
  1.3) at DEFAULT_CPS. A marker ("m") event opens every commit, labelled with its message.
  Players print labels and the title raw, so both are escaped (ghframes.text.shown).
- html: one self-contained file with a player (ghframes.view.player_html): each frame shows
  for its recorded dt (at most the idle time limit), or at the fixed `--cps` rate.
- png: one frame (`--frame N`) drawn with a monospace font.

`--from/--to` select frames [FROM, TO) for every format.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator

import numpy as np

from ghframes.errors import GhframesError
from ghframes.store.chunks import LazySession, open_lazy
from ghframes.store.geometry import COLS, ROWS, WIDE_STUB
from ghframes.text import shown

DEFAULT_CPS = 30.0  # keystrokes per second for a shard that records no times
IDLE_TIME_LIMIT = 2.0  # seconds: a longer recorded pause plays as this long


def frame_times(session: LazySession, start: int, stop: int, cps: float | None) -> list[float]:
    """When each of frames [start, stop) appears, in seconds from frame `start`: the recorded
    times (frame t + 1 at dt[start] + ... + dt[t] ms), or every 1/cps s when `cps` is given or
    the shard records no times (then DEFAULT_CPS)."""
    if cps is None and session.dt is not None:
        ms = np.cumsum(session.dt[start : stop - 1], dtype=np.int64).tolist()
        return [0.0, *(m / 1000 for m in ms)]
    rate = DEFAULT_CPS if cps is None else cps
    return [round(k / rate, 6) for k in range(stop - start)]


def frame_range(session: LazySession, start: int | None, stop: int | None) -> tuple[int, int]:
    """[start, stop) checked against the session; defaults: the whole session."""
    n = len(session)
    start = 0 if start is None else start
    stop = n if stop is None else stop
    if not 0 <= start < n:
        raise GhframesError(f"session {session.id}: --from {start} is out of range (0..{n - 1})")
    if not start < stop <= n:
        raise GhframesError(f"session {session.id}: --to {stop} is out of range ({start + 1}..{n})")
    return start, stop


# A rendered frame never holds a control character (the editor draws them as `^X`), but a
# shard is a file: a cell a terminal would act on, or a lone surrogate, is written as U+FFFD.
_INERT = {c: "\ufffd" for c in [*range(1, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000)]}


def _cells(row: np.ndarray, a: int, b: int) -> str:
    """Text drawing cells [a, b) of a row (wide characters once, their stubs dropped)."""
    return "".join(chr(c) for c in row[a:b].tolist() if c != WIDE_STUB).translate(_INERT)


def _span(old: np.ndarray, new: np.ndarray) -> tuple[int, int] | None:
    """Smallest cell range [a, b) covering the row's changes, never splitting a wide char."""
    diff = np.flatnonzero(old != new)
    if not diff.size:
        return None
    a, b = int(diff[0]), int(diff[-1]) + 1
    while a > 0 and (new[a] == WIDE_STUB or old[a] == WIDE_STUB):
        a -= 1
    while b < COLS and (new[b] == WIDE_STUB or old[b] == WIDE_STUB):
        b += 1
    return a, b


def full_draw(frame: np.ndarray, cursor) -> str:
    """Clear the screen and draw `frame`, then place the cursor."""
    parts = ["\x1b[?7h\x1b[0m\x1b[H\x1b[2J"]
    for y in range(ROWS):
        row = frame[y]
        last = COLS
        while last > 0 and row[last - 1] == 32:
            last -= 1
        if last:
            parts.append(f"\x1b[{y + 1};1H{_cells(row, 0, last)}")
    parts.append(f"\x1b[{int(cursor[0]) + 1};{int(cursor[1]) + 1}H")
    return "".join(parts)


def diff_draw(old: np.ndarray, new: np.ndarray, cursor) -> str:
    """Escape sequences turning screen `old` into `new`, then placing the cursor."""
    parts = []
    for y in np.flatnonzero((old != new).any(axis=1)).tolist():
        a, b = _span(old[y], new[y])
        parts.append(f"\x1b[{y + 1};{a + 1}H{_cells(new[y], a, b)}")
    parts.append(f"\x1b[{int(cursor[0]) + 1};{int(cursor[1]) + 1}H")
    return "".join(parts)


def cast_events(
    session: LazySession, start: int, stop: int, cps: float | None = None
) -> Iterator[list]:
    """asciicast v2 events for frames [start, stop): one output event per frame at its time
    (`frame_times`), markers."""
    marks = {c.first_frame: c for c in session.commits if start <= c.first_frame < stop}
    prev = None
    for t, time in zip(range(start, stop), frame_times(session, start, stop, cps), strict=True):
        commit = marks.get(t)
        if commit is not None:
            yield [time, "m", shown(commit.message or f"commit {commit.id[:10]}")]
        frame = session.frame(t)
        cursor = session.cursor[t]
        data = full_draw(frame, cursor) if prev is None else diff_draw(prev, frame, cursor)
        yield [time, "o", data]
        prev = frame


def write_cast(
    session: LazySession,
    path: str,
    start: int,
    stop: int,
    cps: float | None = None,
    idle_time_limit: float = IDLE_TIME_LIMIT,
) -> None:
    """Frames [start, stop) as an asciicast v2 file at `path`: at the recorded times, with
    pauses played at most `idle_time_limit` s long (0: in full), or at `cps` when given."""
    header = {
        "version": 2,
        "width": COLS,
        "height": ROWS,
        "title": shown(f"{session.repo}: session {session.id} frames {start}..{stop - 1}"),
        "env": {"TERM": "xterm-256color", "SHELL": "/bin/sh"},
    }
    if cps is None and session.dt is not None and idle_time_limit > 0:
        header["idle_time_limit"] = idle_time_limit
    with _atomic(path, "w") as out:
        out.write(json.dumps(header) + "\n")
        for event in cast_events(session, start, stop, cps):
            out.write(json.dumps(event, ensure_ascii=False) + "\n")


FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",  # Debian fonts-dejavu-core
)


def font_path() -> str:
    """A monospace TrueType font: DejaVu Sans Mono from matplotlib's package data or Debian."""
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    candidates = list(FONT_CANDIDATES)
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            candidates.insert(
                0, os.path.join(base, "mpl-data", "fonts", "ttf", "DejaVuSansMono.ttf")
            )
    for path in candidates:
        if os.path.exists(path):
            return path
    raise GhframesError(
        "no monospace font found for --format png "
        "(install matplotlib, or Debian's fonts-dejavu-core)"
    )


FG = (220, 220, 220)
BG = (24, 24, 24)


def render_png(frame: np.ndarray, cursor, path: str, size: int = 14) -> tuple[int, int]:
    """Draw `frame` as a PNG at `path`; return the cell size in pixels (width, height)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path(), size)
    ascent, descent = font.getmetrics()
    cw = int(round(font.getlength("M")))
    ch = ascent + descent
    image = Image.new("RGB", (cw * COLS, ch * ROWS), BG)
    draw = ImageDraw.Draw(image)
    cy, cx = int(cursor[0]), int(cursor[1])
    draw.rectangle([cx * cw, cy * ch, (cx + 1) * cw - 1, (cy + 1) * ch - 1], fill=(120, 120, 120))
    rows = frame.tolist()
    for y, row in enumerate(rows):
        for x, code in enumerate(row):
            if code in (32, WIDE_STUB):
                continue
            draw.text((x * cw, y * ch), chr(code), font=font, fill=FG)
    with _atomic(path, "wb") as out:
        image.save(out, format="PNG")
    return cw, ch


class _atomic:
    """Write to `path` through a temporary file renamed into place (no half-written outputs)."""

    def __init__(self, path: str, mode: str) -> None:
        self.path = path
        self.tmp = f"{path}.tmp-{os.getpid()}"
        self.mode = mode

    def __enter__(self):
        if os.path.isdir(self.path):
            raise GhframesError(f"{self.path}: is a directory; give -o a file name")
        try:
            self.file = open(
                self.tmp, self.mode, encoding="utf-8" if "b" not in self.mode else None
            )
        except OSError as exc:
            raise GhframesError(f"{self.path}: cannot write ({exc.strerror})") from None
        return self.file

    def __exit__(self, kind, value, tb):
        try:
            self.file.close()
            if kind is None:
                os.replace(self.tmp, self.path)
        except OSError as exc:  # a full disk, or `path` made a directory meanwhile
            kind = type(exc)
            raise GhframesError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        finally:
            if kind is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.tmp)
        return False


def run(args, env) -> int:
    session = open_lazy(args.data, args.session)
    start, stop = frame_range(session, args.start, args.stop)
    cps, idle = args.cps, args.idle_time_limit
    if args.format in ("cast", "html"):
        if cps is not None and not 0 < cps < float("inf"):  # NaN fails too
            raise GhframesError(f"--cps must be a positive, finite number, not {cps:g}")
        if not 0 <= idle < float("inf"):
            raise GhframesError(
                f"--idle-time-limit must be a finite number of seconds >= 0, not {idle:g}"
            )
    if cps is not None:
        pace = f"at {cps:g} cps"
    elif session.dt is None:
        pace = f"at {DEFAULT_CPS:g} cps (the shard records no times)"
    else:
        pace = "at the recorded times" + (f", pauses cut to {idle:g} s" if idle else "")
    if args.format == "cast":
        write_cast(session, args.output, start, stop, cps, idle)
        print(f"wrote {args.output}: {stop - start} frames as asciicast v2 {pace}")
    elif args.format == "png":
        t = start if args.frame is None else args.frame
        if not start <= t < stop:
            raise GhframesError(
                f"session {session.id}: --frame {t} is out of range ({start}..{stop - 1})"
            )
        render_png(session.frame(t), session.cursor[t], args.output)
        print(f"wrote {args.output}: frame {t} of session {session.id}")
    elif args.format == "html":
        from ghframes.view.player_html import write_html

        write_html(session, args.output, start, stop, cps, _atomic, idle)
        print(f"wrote {args.output}: {stop - start} frames as a self-contained HTML player {pace}")
    return 0
