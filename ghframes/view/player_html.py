"""`export --format html`: one self-contained HTML file that plays a session in a browser.

The page embeds the frames as JSON (`script_json`: no file content can end or open an HTML
element in it): a keyframe every KEYFRAME frames, `[48 rows of cells, 48 rows of style runs]`,
and, for the other frames, the changed cell ranges of each row (`[row, first col, cells]`, one
character per cell, "\\u0000" for the right half of a wide character; a fifth item, the
range's style runs, when its colours or attributes changed). A style run is
`[style id, count, ...]` into `styles`, the export's table of the styles it uses, each
`[fg hex, bg hex, attrs]` with reverse video already resolved (ghframes.view.palette); the page
turns the table into CSS classes (bold, italic, underline, strikethrough, blink), draws each
run of one style as one span, and the cursor cell on palette.CURSOR. A monochrome session
costs 48 empty runs per keyframe. The player rebuilds any frame from its keyframe, so seeking
is instant. Nothing is loaded from elsewhere.

It plays at the recorded times: each frame shows for its `dt` (schemas/frames.json: how long
it was on screen before its key), a pause longer than `--idle-time-limit` for that long, at a
speed that multiplies time (1x: as typed). With `--cps`, or for a shard that records no times
(then DEFAULT_CPS), it plays at a fixed rate of frames per second instead, as before times
were recorded.

The URL fragment drives it too (used by the tests and handy for links):
`#frame=N` opens at frame N, `#goto=N` or `#goto=P%` goes there as the `g` key does,
`#play` starts playing, `#speed=S` sets the speed nearest S (a multiple of the recorded time,
default 1; or frames per second at a fixed rate, default: the one nearest `--cps`),
`#search=TEXT` jumps to the first frame showing TEXT, `#keys=...` presses those keys in order.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np

from ghframes.store.chunks import LazySession
from ghframes.store.geometry import COLS, ROWS
from ghframes.view.export import DEFAULT_CPS, IDLE_TIME_LIMIT
from ghframes.view.palette import (
    CURSOR,
    DEFAULT_BG,
    DEFAULT_FG,
    REVERSE,
    hex_of,
    rgb_planes,
    styles_of,
)

KEYFRAME = 256


def _cells(row: np.ndarray) -> str:
    return "".join(map(chr, row.tolist()))


def _runs(ids: np.ndarray, whole_row: bool = False) -> list[int]:
    """Style ids of consecutive cells, run-length coded: `[id, count, id, count, ...]`; for a
    whole row, without its last run when that is the default (the page fills rows with it)."""
    cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        out += [int(ids[a]), b - a]
    return out[:-2] if whole_row and out[-2] == 0 else out


class _Styles:
    """The export's table of styles: id 0 is the default, later ids in order of first use;
    each drawn as `[foreground hex, background hex, attrs]` (reverse video resolved)."""

    def __init__(self) -> None:
        self.ids = {0: 0}
        self.table = [[hex_of(DEFAULT_FG), hex_of(DEFAULT_BG), 0]]

    def plane(self, fg: np.ndarray, bg: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """int32 [ROWS, COLS]: each cell's style id."""
        keys = styles_of(fg, bg, attrs)
        if not keys.any():
            return np.zeros(keys.shape, np.int32)
        unique, inverse = np.unique(keys, return_inverse=True)
        for key in unique.tolist():
            if key not in self.ids:
                self.ids[key] = len(self.table)
                f, b, a = key & 0xFF, key >> 8 & 0xFF, key >> 16 & 0xFF
                front, back = rgb_planes(np.uint8(f), np.uint8(b), np.uint8(a))
                self.table.append([hex_of(front), hex_of(back), a & ~REVERSE])
        lut = np.array([self.ids[k] for k in unique.tolist()], np.int32)
        return lut[inverse].reshape(keys.shape)


def player_data(
    session: LazySession,
    start: int,
    stop: int,
    cps: float | None = None,
    idle_time_limit: float = IDLE_TIME_LIMIT,
) -> dict:
    """What the page embeds for frames [start, stop). `dt`: each frame's ms on screen (the
    shard's), or None to play at the fixed rate `cps` (given, or DEFAULT_CPS for a shard that
    records no times); `idle`: the longest a frame is shown, in ms (0: no limit); `styles`:
    the table of cell styles the frames' run-length coded style ids point into."""
    recorded = cps is None and session.dt is not None
    styles = _Styles()
    frames = []
    prev = prev_ids = None
    for t in range(start, stop):
        frame = session.frame(t)
        ids = styles.plane(*session.colours(t))
        if (t - start) % KEYFRAME == 0:
            frames.append(
                [[_cells(row) for row in frame], [_runs(row, whole_row=True) for row in ids]]
            )
        else:
            diffs = []
            restyled = prev_ids != ids
            changed = (prev != frame) | restyled
            for y in np.flatnonzero(changed.any(axis=1)).tolist():
                at = np.flatnonzero(changed[y])
                a, b = int(at[0]), int(at[-1]) + 1
                diff = [y, a, _cells(frame[y, a:b])]
                if restyled[y, a:b].any():
                    diff.append(_runs(ids[y, a:b]))
                diffs.append(diff)
            frames.append(diffs)
        prev, prev_ids = frame, ids
    files = []
    for change in session.changes:
        if change["first_frame"] >= 0:
            files.append([change["first_frame"], change["path"]])
    return {
        "session": session.id,
        "repo": session.repo,
        "start": start,
        "total": len(session),
        "cps": None if recorded else (DEFAULT_CPS if cps is None else cps),
        "dt": session.dt[start:stop].tolist() if recorded else None,
        "idle": round(idle_time_limit * 1000),
        "keyframe": KEYFRAME,
        "rows": ROWS,
        "cols": COLS,
        "actions": session.actions[start:stop],
        "cursor": session.cursor[start:stop].reshape(-1).tolist(),
        "commits": [[c.first_frame, c.id, c.message] for c in session.commits],
        "files": files,
        "styles": styles.table,
        "frames": frames,
    }


# Characters that could end the data element or open another inside it (`</script`, `<!--`,
# `<script`), plus `&` and `>` for good measure, written as JSON escapes of themselves.
_SCRIPT_UNSAFE = {ord(c): f"\\u{ord(c):04x}" for c in "<>&"}


def script_json(value) -> str:
    """`value` as JSON that is inert inside `<script type="application/json">`.

    No file's content can end the element or open another inside it (a `<!--<script>` would
    otherwise swallow the player's script): `<`, `>` and `&` are written as `\\u003c`,
    `\\u003e`, `\\u0026`, and everything past ASCII (U+2028 and U+2029 included) as `\\uXXXX`.
    `JSON.parse` reads them back as the same characters; only strings can hold them in JSON.
    """
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).translate(_SCRIPT_UNSAFE)


def write_html(
    session: LazySession,
    path: str,
    start: int,
    stop: int,
    cps: float | None,
    atomic,
    idle_time_limit: float = IDLE_TIME_LIMIT,
) -> None:
    data = script_json(player_data(session, start, stop, cps, idle_time_limit))
    title = html.escape(f"{session.repo}: {session.id}")
    # One pass, so that a title holding "__DATA__" stays a title.
    page = re.sub("__TITLE__|__DATA__", lambda m: title if m[0] == "__TITLE__" else data, PAGE)
    with atomic(path, "w") as out:
        out.write(page)


_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{background:#303030;color:#ddd;font-family:sans-serif;margin:12px}
#screen{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;line-height:1.15;
 background:#__BG__;color:#__FG__;padding:6px;margin:0;white-space:pre;display:inline-block;
 unicode-bidi:bidi-override;direction:ltr}
#screen span.cur{background:#__CURSOR__}
@keyframes gfblink{50%{opacity:0}}
#controls{margin:8px 0}
#controls button{margin-right:4px}
#timeline{position:relative;width:960px;height:34px}
#slider{width:960px;margin:0}
.tick{position:absolute;top:22px;width:1px;height:10px;background:#e0a030}
#status,#action{font-family:monospace;white-space:pre}
#action{font-size:16px;margin-top:6px}
</style></head>
<body>
<pre id="screen"></pre>
<div id="action"></div>
<div id="timeline"><input id="slider" type="range" min="0" value="0"></div>
<div id="controls">
<button id="play" title="space">play</button>
<button data-k="-" title="-">slower</button><button data-k="+" title="+">faster</button>
<button data-k="," title=", or Left">&lt; step</button><button data-k="." title=". or Right">step &gt;</button>
<button data-k="[" title="[">-100</button><button data-k="]" title="]">+100</button>
<button data-k="{" title="{">prev commit</button><button data-k="}" title="}">next commit</button>
<button data-k="g" title="g">go to…</button><button data-k="/" title="/">search…</button>
<button data-k="n" title="n">next match</button><button data-k="N" title="N">prev match</button>
</div>
<div id="status"></div>
<script id="data" type="application/json">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const N = D.frames.length, K = D.keyframe;
const REC = D.dt !== null;  // at the recorded times (speed: a multiple), else D.cps frames/s
const SPEEDS = REC ? [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
  : [1, 2, 5, 10, 20, 30, 60, 120, 250, 500, 1000, 2500];
let t = 0, playing = false, speed = nearestSpeed(REC ? 1 : D.cps), query = "", message = "";
let grid = null, sgrid = null, gridAt = -1;
styleSheet();
function unrun(row, a, runs) { for (let i = 0; i < runs.length; i += 2) for (let n = 0; n < runs[i + 1]; n++) row[a++] = runs[i]; }
function apply(rows, styles, diffs) {
  for (const [y, a, text, runs] of diffs) {
    const cells = Array.from(text);
    for (let i = 0; i < cells.length; i++) rows[y][a + i] = cells[i];
    if (runs) unrun(styles[y], a, runs);
  }
}
function frameRows(i) {  // cells of frame i (index within the export); their styles: sgrid
  if (gridAt === i) return grid;
  let from;
  if (gridAt >= 0 && gridAt < i && Math.floor(gridAt / K) === Math.floor(i / K)) {
    from = gridAt + 1;
  } else {
    const k = Math.floor(i / K) * K;
    grid = D.frames[k][0].map(r => Array.from(r));
    sgrid = D.frames[k][1].map(r => { const s = new Array(D.cols).fill(0); unrun(s, 0, r); return s; });
    from = k + 1;
  }
  for (let j = from; j <= i; j++) apply(grid, sgrid, D.frames[j]);
  gridAt = i;
  return grid;
}
function rowText(cells) { return cells.filter(c => c !== "\u0000").join(""); }
function frameText(i) { return frameRows(i).map(rowText); }
function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
function rowHTML(cells, styles, cx) {  // one span per run of one style; the cursor cell alone
  let out = "";
  for (let a = 0; a < cells.length;) {
    const s = a === cx ? -1 : styles[a];
    let b = a + 1;
    if (s >= 0) while (b < cells.length && b !== cx && styles[b] === s) b++;
    const text = esc(rowText(cells.slice(a, b)));
    if (s === 0) out += text;
    else if (s < 0) out += '<span class="cur' + (styles[a] ? " s" + styles[a] : "") + '">' + (text || " ") + "</span>";
    else out += '<span class="s' + s + '">' + text + "</span>";
    a = b;
  }
  return out;
}
function styleSheet() {  // D.styles as classes .s1, .s2, ...: colours, then the attribute bits
  const rules = [];
  D.styles.forEach(([fg, bg, a], i) => {
    if (!i || !/^[0-9a-f]{12}$/.test(fg + bg)) return;
    const deco = [a & 4 ? "underline" : "", a & 16 ? "line-through" : ""].filter(Boolean);
    rules.push("#screen .s" + i + "{color:#" + fg + ";background:#" + bg + (a & 1 ? ";font-weight:bold" : "") +
      (a & 2 ? ";font-style:italic" : "") + (deco.length ? ";text-decoration:" + deco.join(" ") : "") +
      (a & 32 ? ";animation:gfblink 1s step-end infinite" : "") + "}");
  });
  const el = document.createElement("style");
  el.textContent = rules.join("\n");
  document.head.appendChild(el);
}
function lastAtOrBefore(list, f) { let hit = null; for (const x of list) if (x[0] <= f) hit = x; return hit; }
function draw() {
  const rows = frameRows(t), cy = D.cursor[2 * t], cx = D.cursor[2 * t + 1];
  const out = rows.map((cells, y) => rowHTML(cells, sgrid[y], y === cy ? cx : -1));
  document.getElementById("screen").innerHTML = out.join("\n");
  const f = D.start + t, commit = lastAtOrBefore(D.commits, f) || D.commits[0], file = lastAtOrBefore(D.files, f);
  document.getElementById("action").textContent = "action: " + D.actions[t];
  let s = (playing ? "playing" : "paused") + " | frame " + f + "/" + D.total + " | " +
    (REC ? SPEEDS[speed] + "x recorded time | dt " + D.dt[t] + " ms" : SPEEDS[speed] + " f/s");
  if (commit) s += " | commit " + commit[1].slice(0, 7) + " " + commit[2];
  if (file) s += " | file " + file[1];
  if (message) s += "\n" + message;
  document.getElementById("status").textContent = s;
  document.getElementById("slider").value = t;
  document.getElementById("play").textContent = playing ? "pause" : "play";
  document.title = "frame " + f;
}
function nearestSpeed(fps) {
  let best = 0;
  for (let i = 1; i < SPEEDS.length; i++)
    if (Math.abs(Math.log(SPEEDS[i] / fps)) < Math.abs(Math.log(SPEEDS[best] / fps))) best = i;
  return best;
}
function hold(i) { return D.idle > 0 ? Math.min(D.dt[i], D.idle) : D.dt[i]; }  // ms on screen
function go(i) { t = Math.max(0, Math.min(N - 1, i)); draw(); }
function gotoText(s) {  // "N": frame N of the session; "P%": P percent into the exported frames
  s = s.trim();
  const pct = s.endsWith("%"), v = Number(pct ? s.slice(0, -1) : s);
  if (!s || !Number.isFinite(v) || (pct ? v < 0 || v > 100 : !Number.isInteger(v)))
    message = "not a frame number or percentage: " + JSON.stringify(s);
  else if (pct) go(Math.round(v / 100 * (N - 1)));
  else if (v >= D.start && v < D.start + N) go(v - D.start);
  else message = "frame " + v + " is out of range (" + D.start + ".." + (D.start + N - 1) + ")";
}
function search(from, step) {
  for (let i = from; i >= 0 && i < N; i += step) {
    if (frameText(i).some(r => r.includes(query))) { message = "found " + JSON.stringify(query) + " at frame " + (D.start + i); go(i); return; }
  }
  message = JSON.stringify(query) + " not found"; draw();
}
function commitJump(dir) {
  const starts = D.commits.map(c => c[0] - D.start).filter(i => i >= 0 && i < N);
  const cand = dir > 0 ? starts.filter(i => i > t) : starts.filter(i => i < t).reverse();
  if (cand.length) go(cand[0]); else { message = "no " + (dir > 0 ? "later" : "earlier") + " commit"; draw(); }
}
function key(k) {
  message = "";
  if (k === " ") { playing = !playing; if (playing && t >= N - 1) t = 0; last = performance.now(); carry = 0; }
  else if (k === "+" || k === "=") speed = Math.min(speed + 1, SPEEDS.length - 1);
  else if (k === "-") speed = Math.max(speed - 1, 0);
  else if (k === "." || k === "ArrowRight") { playing = false; go(t + 1); }
  else if (k === "," || k === "ArrowLeft") { playing = false; go(t - 1); }
  else if (k === "]" || k === "PageDown") go(t + 100);
  else if (k === "[" || k === "PageUp") go(t - 100);
  else if (k === "}") commitJump(1);
  else if (k === "{") commitJump(-1);
  else if (k === "Home") go(0);
  else if (k === "End") go(N - 1);
  else if (k === "g") { const s = prompt("go to frame (N or N%)"); if (s) gotoText(s); }
  else if (k === "/") { const s = prompt("search"); if (s) { query = s; search(t, 1); } }
  else if (k === "n") { if (query) search(t + 1, 1); }
  else if (k === "N") { if (query) search(t - 1, -1); }
  else return false;
  draw();
  return true;
}
document.addEventListener("keydown", e => { if (!e.ctrlKey && !e.metaKey && key(e.key)) e.preventDefault(); });
for (const b of document.querySelectorAll("button[data-k]")) b.onclick = () => key(b.dataset.k);
document.getElementById("play").onclick = () => key(" ");
const slider = document.getElementById("slider");
slider.max = N - 1;
slider.oninput = () => go(parseInt(slider.value, 10));
for (const c of D.commits) {
  const i = c[0] - D.start;
  if (i < 0 || i >= N) continue;
  const tick = document.createElement("div");
  tick.className = "tick"; tick.title = c[2]; tick.style.left = (960 * i / Math.max(N - 1, 1)) + "px";
  document.getElementById("timeline").appendChild(tick);
}
let last = performance.now(), carry = 0;
setInterval(() => {
  const now = performance.now();
  if (playing && REC) {  // carry: ms of recorded time played since frame t appeared
    carry += (now - last) * SPEEDS[speed];
    const from = t;
    while (t < N - 1 && carry >= hold(t)) { carry -= hold(t); t++; }
    if (t >= N - 1) playing = false;
    if (t !== from || !playing) draw();
  } else if (playing) {  // carry: frames due at the fixed rate
    carry += (now - last) / 1000 * SPEEDS[speed];
    const step = Math.floor(carry); carry -= step;
    if (step) { t = Math.min(N - 1, t + step); if (t >= N - 1) playing = false; draw(); }
  }
  last = now;
}, 20);
const params = new URLSearchParams(location.hash.slice(1));
if (params.has("speed")) { const v = Number(params.get("speed")); if (v > 0 && Number.isFinite(v)) speed = nearestSpeed(v); }
if (params.has("frame")) t = Math.max(0, Math.min(N - 1, parseInt(params.get("frame"), 10) - D.start));
if (params.has("goto")) gotoText(params.get("goto"));
if (params.has("play")) playing = true;
if (params.has("search")) { query = params.get("search"); search(t, 1); }
if (params.has("keys")) for (const k of Array.from(params.get("keys"))) key(k);
draw();
</script>
</body></html>
"""
# The views' colours (ghframes.view.palette), fixed into the page's style once.
PAGE = (
    _PAGE.replace("__FG__", hex_of(DEFAULT_FG))
    .replace("__BG__", hex_of(DEFAULT_BG))
    .replace("__CURSOR__", hex_of(CURSOR))
)
