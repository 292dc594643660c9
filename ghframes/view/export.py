"""`ghframes export DATA --session ID --format cast|html|png|gif -o FILE`: a session for other tools.

- cast: asciicast v2 (asciinema). The first output event draws the first frame in full; each
  later event rewrites only the cells whose character, colour or attributes changed, then
  places the cursor. Colours and attributes are plain SGR (38;5;n, 48;5;n, 39, 49, 1, 3, 4,
  5, 7, 9 and their resets, palette.sgr), so `asciinema play` shows them. Feeding the output
  events into a fresh 160x48 terminal reproduces every frame exactly: characters, colours
  (stored values, each the lowest palette index of its RGB as the renderer captures them),
  attributes, cursor. Events are at the recorded times (the shard's `dt`,
  schemas/frames.json): frame t appears when action t - 1 is pressed, so the output of frame
  t + 1 is at dt[0] + ... + dt[t], counted from the first exported frame. `--idle-time-limit` (default 2 s) goes into the header as asciinema's
  `idle_time_limit`: a player shortens every longer pause to it, so a minute spent thinking
  plays in 2 s while the timestamps keep the recorded times. `--cps N` spaces the events by a
  fixed N keystrokes per second instead, as does a shard without times (frames schema before
  1.3) at DEFAULT_CPS. A marker ("m") event opens every commit, labelled with its message.
  Players print labels and the title raw, so both are escaped (ghframes.text.shown). Only
  characters a frame holds are written between the exporter's own sequences: a cell holding
  a control character is written as U+FFFD.
- html: one self-contained file with a player (ghframes.view.player_html): each frame shows
  for its recorded dt (at most the idle time limit), or at the fixed `--cps` rate.
- png: one frame (`--frame N`) drawn in its colours with a monospace font (ghframes.view.raster).
- gif: the frames as an animated GIF (ghframes.view.gif), timed as the cast is.

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
from ghframes.view.palette import sgr, styles_of

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
DIFF_GAP = 4  # unchanged cells between two changes that are rewritten rather than jumped over


def _style(key: int) -> tuple[int, int, int]:
    return key & 0xFF, key >> 8 & 0xFF, key >> 16 & 0xFF


def _cells(row: np.ndarray, a: int, b: int) -> str:
    """Text drawing cells [a, b) of a row (wide characters once, their stubs dropped)."""
    return "".join(chr(c) for c in row[a:b].tolist() if c != WIDE_STUB).translate(_INERT)


def _draw(codes: np.ndarray, styles: np.ndarray, a: int, b: int, pen: tuple) -> tuple[str, tuple]:
    """Cells [a, b) of a row (code points, styles) written from the cursor with the pen in
    style `pen`: each run of one style after the SGR that selects it. Returns the text and the
    pen's style after it."""
    part = styles[a:b]
    cuts = [0, *(np.flatnonzero(part[1:] != part[:-1]) + 1).tolist(), b - a]
    out = []
    for i, j in zip(cuts, cuts[1:], strict=False):
        style = _style(int(part[i]))
        out.append(sgr(pen, style))
        out.append(_cells(codes, a + i, a + j))
        pen = style
    return "".join(out), pen


def _segments(changed: np.ndarray, old: np.ndarray, new: np.ndarray) -> list[tuple[int, int]]:
    """The cell ranges [a, b) of a row to rewrite: runs of changed cells (joined across gaps of
    at most DIFF_GAP unchanged cells), never splitting a wide character of either screen."""
    at = np.flatnonzero(changed)
    if not at.size:
        return []
    breaks = np.flatnonzero(np.diff(at) > DIFF_GAP + 1)
    out: list[tuple[int, int]] = []
    firsts = at[np.r_[0, breaks + 1]].tolist()
    lasts = at[np.r_[breaks, at.size - 1]].tolist()
    for a, last in zip(firsts, lasts, strict=True):
        b = last + 1
        while a > 0 and (new[a] == WIDE_STUB or old[a] == WIDE_STUB):
            a -= 1
        while b < COLS and (new[b] == WIDE_STUB or old[b] == WIDE_STUB):
            b += 1
        if out and a <= out[-1][1]:
            a = out.pop()[0]
        out.append((a, b))
    return out


def _place(cursor) -> str:
    return f"\x1b[{int(cursor[0]) + 1};{int(cursor[1]) + 1}H"


def full_draw(frame: np.ndarray, cursor, styles: np.ndarray | None = None) -> tuple[str, tuple]:
    """Clear the screen and draw `frame` (code points) in `styles` (`styles_of`; None: all
    default), then place the cursor. Returns the text and the pen's style after it."""
    styles = np.zeros(frame.shape, np.uint32) if styles is None else styles
    parts, pen = ["\x1b[?7h\x1b[0m\x1b[H\x1b[2J"], (0, 0, 0)
    blank = (frame == 32) & (styles == 0)  # what the cleared screen already shows
    for y in np.flatnonzero(~blank.all(axis=1)).tolist():
        last = COLS - int(np.argmin(blank[y, ::-1]))
        text, pen = _draw(frame[y], styles[y], 0, last, pen)
        parts.append(f"\x1b[{y + 1};1H{text}")
    parts.append(_place(cursor))
    return "".join(parts), pen


def diff_draw(
    old: np.ndarray,
    new: np.ndarray,
    cursor,
    old_styles: np.ndarray | None = None,
    new_styles: np.ndarray | None = None,
    pen: tuple = (0, 0, 0),
) -> tuple[str, tuple]:
    """Escape sequences turning screen `old` into `new` (code points, and styles as
    `styles_of` gives them; None: all default) by rewriting the cells whose character or
    style changed, then placing the cursor; the pen starts in style `pen`. Returns the text
    and the pen's style after it."""
    changed = old != new
    if old_styles is not None or new_styles is not None:
        zero = np.zeros(new.shape, np.uint32)
        old_styles = zero if old_styles is None else old_styles
        new_styles = zero if new_styles is None else new_styles
        changed |= old_styles != new_styles
    else:
        new_styles = np.zeros(new.shape, np.uint32)
    parts = []
    for y in np.flatnonzero(changed.any(axis=1)).tolist():
        for a, b in _segments(changed[y], old[y], new[y]):
            text, pen = _draw(new[y], new_styles[y], a, b, pen)
            parts.append(f"\x1b[{y + 1};{a + 1}H{text}")
    parts.append(_place(cursor))
    return "".join(parts), pen


def cast_events(
    session: LazySession, start: int, stop: int, cps: float | None = None
) -> Iterator[list]:
    """asciicast v2 events for frames [start, stop): one output event per frame at its time
    (`frame_times`), in its colours and attributes, markers."""
    marks = {c.first_frame: c for c in session.commits if start <= c.first_frame < stop}
    prev = prev_styles = None
    pen = (0, 0, 0)
    for t, time in zip(range(start, stop), frame_times(session, start, stop, cps), strict=True):
        commit = marks.get(t)
        if commit is not None:
            yield [time, "m", shown(commit.message or f"commit {commit.id[:10]}")]
        frame = session.frame(t)
        styles = styles_of(*session.colours(t))
        cursor = session.cursor[t]
        if prev is None:
            data, pen = full_draw(frame, cursor, styles)
        else:
            data, pen = diff_draw(prev, frame, cursor, prev_styles, styles, pen)
        yield [time, "o", data]
        prev, prev_styles = frame, styles


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


def render_png(
    frame: np.ndarray, cursor, path: str, colours=None, size: int = 14
) -> tuple[int, int]:
    """Draw `frame` (code points) in `colours` (`(fg, bg, attrs)`, uint8 [ROWS, COLS] each;
    None: all default) as a PNG at `path`; return the cell size in pixels (width, height)."""
    from PIL import Image

    from ghframes.view.raster import Raster

    raster = Raster(size)
    fg, bg, attrs = colours if colours is not None else (np.zeros(frame.shape, np.uint8),) * 3
    image = Image.fromarray(raster.rgb(frame, fg, bg, attrs, cursor), "RGB")
    with _atomic(path, "wb") as out:
        image.save(out, format="PNG")
    return raster.cw, raster.ch


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
    if args.format in ("cast", "html", "gif"):
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
        render_png(session.frame(t), session.cursor[t], args.output, session.colours(t))
        print(f"wrote {args.output}: frame {t} of session {session.id}")
    elif args.format == "html":
        from ghframes.view.player_html import write_html

        write_html(session, args.output, start, stop, cps, _atomic, idle)
        print(f"wrote {args.output}: {stop - start} frames as a self-contained HTML player {pace}")
    elif args.format == "gif":
        from ghframes.view.gif import write_gif

        shown_frames = write_gif(session, args.output, start, stop, cps, idle, _atomic)
        print(
            f"wrote {args.output}: {stop - start} frames as an animated GIF of "
            f"{shown_frames} images {pace}"
        )
    return 0
