"""`export --format gif`: frames [FROM, TO) as an animated GIF, as asciinema's agg draws a cast.

Timing is the cast's: each frame shows for its recorded `dt` (schemas/frames.json), a pause
longer than `--idle-time-limit` for that long (0: in full); with `--cps`, or for a shard that
records no times (then DEFAULT_CPS), each frame shows 1/cps s. GIF counts delays in
hundredths of a second and browsers stretch a delay under MIN_DELAY_CS to a tenth of a
second, so times are laid on that grid from the start of the export (no drift): a frame due
less than MIN_DELAY_CS after the one before it takes that one's place, as a player skips
frames at high speed. A frame that looks the same as the one before it (the same cells,
colours, cursor) lengthens it instead of adding an image.

Pixels: ghframes.view.raster in the exact colours of palette.indexed_palette, one global
palette of 256 slots that holds every colour a frame can show (the 249 distinct xterm colours,
the defaults, the cursor), so nothing is quantised or dithered: a pixel is its cell's
foreground where the glyph covers at least half of it, else its background. Each image after
the first holds only the rectangle that changed, drawn over the one before it (disposal 1),
its unchanged pixels transparent.
The file is written as the frames are drawn, so memory stays flat whatever the range's length.
"""

from __future__ import annotations

import struct

import numpy as np

from ghframes.store.chunks import LazySession
from ghframes.store.geometry import COLS, ROWS
from ghframes.view.export import DEFAULT_CPS
from ghframes.view.palette import indexed_palette
from ghframes.view.raster import Raster

MIN_DELAY_CS = 2  # hundredths of a second: the shortest delay browsers play as written
TRANSPARENT = 255  # a palette slot no colour takes (indexed_palette fills 252)


def frame_holds(
    session: LazySession, start: int, stop: int, cps: float | None, idle_time_limit: float
) -> np.ndarray:
    """float64 [stop - start]: how long each frame shows, in ms: its recorded dt (at most
    `idle_time_limit` s when that is > 0), or 1000 / cps (DEFAULT_CPS without times)."""
    if cps is None and session.dt is not None:
        holds = session.dt[start:stop].astype(np.float64)
        if idle_time_limit > 0:
            holds = np.minimum(holds, idle_time_limit * 1000)
        return holds
    rate = DEFAULT_CPS if cps is None else cps
    return np.full(stop - start, 1000 / rate)


def schedule(holds: np.ndarray) -> list[tuple[int, int]]:
    """`(frame offset, delay in centiseconds)` of each image: frames placed on the centisecond
    grid at their cumulative times, one too brief to show replaced by the next."""
    ends = np.cumsum(holds)
    starts = np.round(np.concatenate([[0.0], ends[:-1]]) / 10).astype(np.int64).tolist()
    shown: list[list[int]] = []  # [frame offset, start in cs]
    for k, cs in enumerate(starts):
        if shown and cs - shown[-1][1] < MIN_DELAY_CS:
            shown[-1][0] = k
        else:
            shown.append([k, cs])
    end = max(int(round(ends[-1] / 10)), shown[-1][1] + MIN_DELAY_CS)
    nexts = [cs for _, cs in shown[1:]] + [end]
    return [(k, nxt - cs) for (k, cs), nxt in zip(shown, nexts, strict=True)]


def _header(width: int, height: int, palette: np.ndarray, background: int) -> bytes:
    # GIF89a, a global colour table of 256 entries (packed 0xF7), looping forever (NETSCAPE2.0)
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, background, 0)
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00"
    return screen + palette.astype(np.uint8).tobytes() + loop


def _image(index: np.ndarray, previous: np.ndarray | None, delay_cs: int) -> bytes:
    """One image: its delay (graphic control extension, disposal 1: keep what is drawn), then
    the rectangle of `index` (palette slots) that differs from `previous`, LZW-coded, its
    unchanged pixels TRANSPARENT (they show the image before, and code as long runs)."""
    from PIL import GifImagePlugin, Image

    if previous is None:
        part, x0, y0, flags = index, 0, 0, 1 << 2
    else:
        diff = index != previous
        rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        part = np.where(diff[y0:y1, x0:x1], index[y0:y1, x0:x1], TRANSPARENT).astype(np.uint8)
        flags = 1 << 2 | 1
    control = b"!\xf9\x04" + struct.pack("<BHBB", flags, delay_cs, TRANSPARENT, 0)
    image = Image.fromarray(np.ascontiguousarray(part), "P")
    return control + b"".join(GifImagePlugin.getdata(image, offset=(x0, y0)))


def write_gif(
    session: LazySession,
    path: str,
    start: int,
    stop: int,
    cps: float | None,
    idle_time_limit: float,
    atomic,
    size: int = 14,
) -> int:
    """Frames [start, stop) as an animated GIF at `path` (written through `atomic(path, "wb")`);
    return how many images it holds."""
    raster = Raster(size)
    palette, fg_slot, bg_slot, cursor_slot = indexed_palette()
    slots = (fg_slot, bg_slot, cursor_slot)
    assert TRANSPARENT not in {*fg_slot.tolist(), *bg_slot.tolist(), cursor_slot}
    plan = schedule(frame_holds(session, start, stop, cps, idle_time_limit))
    written = pending = None  # the image last written; the one waiting for its delay
    delay = count = 0
    state = None
    with atomic(path, "wb") as out:
        width, height = COLS * raster.cw, ROWS * raster.ch
        out.write(_header(width, height, palette, int(bg_slot[0])))
        for k, cs in plan:
            t = start + k
            frame, cursor = session.frame(t), session.cursor[t]
            colours = session.colours(t)
            now = (frame, *colours, cursor)
            if state is not None and all(
                np.array_equal(a, b) for a, b in zip(now, state, strict=True)
            ):
                delay += cs
                continue
            state = now
            image = raster.indexed(frame, *colours, cursor, slots)
            if pending is not None and np.array_equal(image, pending):
                delay += cs
                continue
            if pending is not None:
                out.write(_image(pending, written, delay))
                written, count = pending, count + 1
            pending, delay = image, cs
        out.write(_image(pending, written, delay))
        out.write(b";")
    return count + 1
