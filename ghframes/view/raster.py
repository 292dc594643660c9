"""Frames as pixels, for the PNG and GIF exports: fonts, a glyph cache, cells composed with numpy.

Each cell is `cw x ch` pixels. A glyph (a code point in a style: bold, italic, underline,
strikethrough; a wide character's two halves apart) is drawn once with Pillow into a coverage
mask and cached; a frame is then one gather of masks and one blend of each cell's foreground
over its background (palette.py), so a frame costs a few milliseconds whatever it shows.

Fonts: DejaVu Sans Mono in its four faces (matplotlib's copy, or Debian's fonts-dejavu-core);
a character it lacks (Hebrew, Hangul, CJK, ...) is drawn from the first FALLBACK_FONTS file
whose character map holds it, and where none is installed, as the box DejaVu draws, with one
log line saying which Debian package covers it. A face the fallback lacks is imitated: bold
by drawing twice a pixel apart, italic upright.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import numpy as np

from ghframes.errors import GhframesError
from ghframes.store.geometry import COLS, ROWS, WIDE_STUB
from ghframes.view import palette
from ghframes.view.palette import BOLD, ITALIC, STRIKE, UNDERLINE

log = logging.getLogger(__name__)

DEJAVU_DIRS = ("/usr/share/fonts/truetype/dejavu",)  # Debian fonts-dejavu-core
FACES = {  # style bits (BOLD | ITALIC) -> DejaVu Sans Mono's file for it
    0: "DejaVuSansMono.ttf",
    BOLD: "DejaVuSansMono-Bold.ttf",
    ITALIC: "DejaVuSansMono-Oblique.ttf",
    BOLD | ITALIC: "DejaVuSansMono-BoldOblique.ttf",
}
FALLBACK_FONTS = (  # in order of preference; a name without a folder is looked up beside DejaVu
    "DejaVuSans.ttf",  # Hebrew, Arabic, ... (fonts-dejavu-core, matplotlib)
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",  # Debian fonts-noto-mono
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian fonts-noto-cjk
    "/usr/share/fonts/opentype/unifont/unifont.otf",  # Debian fonts-unifont: the whole BMP
    "/usr/share/fonts/opentype/unifont/unifont_upper.otf",  # fonts-unifont: past the BMP
)
FALLBACK_PACKAGE = "fonts-unifont"  # the Debian package the log line names

_WARNED = [False]  # the missing-font line is logged once per process


def _dejavu_dirs() -> list[str]:
    dirs = []
    spec = importlib.util.find_spec("matplotlib")
    if spec and spec.submodule_search_locations:
        dirs += [
            os.path.join(b, "mpl-data", "fonts", "ttf") for b in spec.submodule_search_locations
        ]
    return dirs + list(DEJAVU_DIRS)


def _find(name: str) -> str | None:
    if os.path.isabs(name):
        return name if os.path.exists(name) else None
    for folder in _dejavu_dirs():
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    return None


def font_path(style: int = 0) -> str:
    """DejaVu Sans Mono's file for `style` (BOLD | ITALIC bits; the regular face if that one
    is absent), from matplotlib's package data or Debian."""
    path = _find(FACES[style]) or _find(FACES[0])
    if path is None:
        raise GhframesError(
            "no monospace font found for --format png/gif "
            "(install matplotlib, or Debian's fonts-dejavu-core)"
        )
    return path


def _char_map(path: str) -> set[int]:
    from fontTools.ttLib import TTFont  # a matplotlib dependency

    with TTFont(path, fontNumber=0, lazy=True) as font:
        return set(font.getBestCmap())


class Fonts:
    """The faces a cell is drawn in, at `size` points, and which font draws each code point."""

    def __init__(self, size: int) -> None:
        from PIL import ImageFont

        self.size = size
        self.faces = {style: ImageFont.truetype(font_path(style), size) for style in FACES}
        self.covered = _char_map(font_path())
        self._fallbacks: list | None = None  # [(font, char map)], opened when first needed
        self._chosen: dict[int, tuple] = {}

    def fallbacks(self) -> list:
        if self._fallbacks is None:
            from PIL import ImageFont

            self._fallbacks = []
            for name in FALLBACK_FONTS:
                path = _find(name)
                if path is not None:
                    self._fallbacks.append((ImageFont.truetype(path, self.size), _char_map(path)))
        return self._fallbacks

    def face(self, code: int, style: int):
        """(font, whether to imitate bold) for drawing code point `code` in `style`."""
        if code in self.covered:
            return self.faces[style], False
        chosen = self._chosen.get(code)
        if chosen is None:
            chosen = next((font for font, cmap in self.fallbacks() if code in cmap), None)
            if chosen is None and not _WARNED[0]:
                _WARNED[0] = True
                log.warning(
                    "no installed font draws U+%04X (and maybe others): drawn as a box; "
                    "Debian's %s covers every script",
                    code,
                    FALLBACK_PACKAGE,
                )
            self._chosen[code] = chosen = (chosen,)
        if chosen[0] is None:
            return self.faces[style], False
        return chosen[0], bool(style & BOLD)


def _inert(codes: np.ndarray) -> np.ndarray:
    """int64 copy of `codes` with what no font should be asked for (controls, surrogates,
    values past Unicode) as U+FFFD."""
    c = codes.astype(np.int64)
    bad = ((c > 0) & (c < 32)) | ((c >= 0x7F) & (c < 0xA0)) | ((c >= 0xD800) & (c < 0xE000))
    bad |= c > 0x10FFFF
    c[bad] = 0xFFFD
    return c


class Raster:
    """Draws frames as pixel arrays: `rgb` (anti-aliased) for PNG, `indexed` (each pixel one
    palette slot, exactly) for GIF. Cells are `cw x ch` pixels."""

    def __init__(self, size: int = 14) -> None:
        self.fonts = Fonts(size)
        regular = self.fonts.faces[0]
        self.ascent, descent = regular.getmetrics()
        self.cw = int(round(regular.getlength("M")))
        self.ch = self.ascent + descent
        self._ids: dict[int, int] = {}
        self._masks: list[np.ndarray] = []
        self._atlas = np.zeros((0, self.ch, self.cw), np.uint8)

    # A glyph's key: code point << 8 | decoration << 2 | wide << 1 | right half, where the
    # decoration bits are bold 1, italic 2, underline 4, strikethrough 8.
    def keys(self, codes: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """int64 [ROWS, COLS]: each cell's glyph key; a stub takes its wide character's."""
        stub = codes == WIDE_STUB
        wide = np.zeros_like(stub)
        wide[:, :-1] = stub[:, 1:] & ~stub[:, :-1]
        a = attrs.astype(np.int64)
        deco = (a & (BOLD | ITALIC | UNDERLINE)) | ((a & STRIKE) >> 1)
        keys = _inert(codes) << 8 | deco << 2 | wide.astype(np.int64) << 1
        right = np.zeros_like(stub)
        right[:, 1:] = stub[:, 1:] & wide[:, :-1]
        keys[:, 1:][right[:, 1:]] = keys[:, :-1][right[:, 1:]] | 1
        keys[stub & ~right] = 32 << 8  # a stub without its character: blank
        return keys

    def _glyph(self, key: int) -> np.ndarray:
        from PIL import Image, ImageDraw

        code, deco, wide, half = key >> 8, key >> 2 & 15, key >> 1 & 1, key & 1
        image = Image.new("L", (self.cw * (1 + wide), self.ch), 0)
        draw = ImageDraw.Draw(image)
        if code != 32:
            font, fake_bold = self.fonts.face(code, deco & (BOLD | ITALIC))
            for dx in (0, 1) if fake_bold else (0,):
                draw.text((dx, self.ascent), chr(code), font=font, fill=255, anchor="ls")
        thick = max(1, self.fonts.size // 14)
        if deco & 4:  # underline, just below the baseline
            draw.rectangle([0, self.ascent + 1, image.width, self.ascent + thick], fill=255)
        if deco & 8:  # strikethrough, through the middle of a lower-case letter
            y = self.ascent - int(self.ascent * 0.3)
            draw.rectangle([0, y, image.width, y + thick - 1], fill=255)
        return np.asarray(image)[:, half * self.cw : (half + 1) * self.cw]

    def coverage(self, codes: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """uint8 [ROWS, ch, COLS, cw]: how much of each pixel the glyphs cover (0..255)."""
        unique, inverse = np.unique(self.keys(codes, attrs), return_inverse=True)
        new = [k for k in unique.tolist() if k not in self._ids]
        if new:
            for k in new:
                self._ids[k] = len(self._masks)
                self._masks.append(self._glyph(k))
            self._atlas = np.stack(self._masks)
        ids = np.array([self._ids[k] for k in unique.tolist()], np.intp)[inverse]
        return self._atlas[ids.reshape(ROWS, COLS)].transpose(0, 2, 1, 3)

    def rgb(self, codes, fg, bg, attrs, cursor=None) -> np.ndarray:
        """uint8 [ROWS * ch, COLS * cw, 3]: the frame in its colours (palette.rgb_planes),
        the cursor cell (row, col) on palette.CURSOR; glyph edges blended."""
        front, back = palette.rgb_planes(fg, bg, attrs)
        if cursor is not None:
            back = back.copy()
            back[int(cursor[0]), int(cursor[1])] = palette.CURSOR
        ink = self.coverage(codes, attrs)[..., None].astype(np.uint16)  # (R, ch, C, cw, 1)
        f = front[:, None, :, None, :].astype(np.uint16)
        b = back[:, None, :, None, :].astype(np.uint16)
        out = (f * ink + b * (255 - ink) + 127) // 255
        return out.astype(np.uint8).reshape(ROWS * self.ch, COLS * self.cw, 3)

    def indexed(self, codes, fg, bg, attrs, cursor, slots) -> np.ndarray:
        """uint8 [ROWS * ch, COLS * cw]: the frame as slots of palette.indexed_palette
        (`slots`: its fg_slot, bg_slot, cursor_slot), a pixel its cell's foreground where a
        glyph covers at least half of it, else its background: exact colours, no dithering."""
        fg_slot, bg_slot, cursor_slot = slots
        front, back = palette.resolved(fg, bg, attrs, fg_slot, bg_slot)
        if cursor is not None:
            back = back.copy()
            back[int(cursor[0]), int(cursor[1])] = cursor_slot
        ink = self.coverage(codes, attrs) >= 128
        out = np.where(ink, front[:, None, :, None], back[:, None, :, None])
        return out.astype(np.uint8).reshape(ROWS * self.ch, COLS * self.cw)
