"""pyte's stream, with the renderer's common sequences parsed a whole sequence at a time.

pyte.Stream sends every character of an escape sequence through a generator, one `send` each;
the editor's output is mostly such sequences (cursor moves and SGR colours: about 27 characters
a frame on the render benchmark), so that parsing was the largest single cost of a frame with
colour. `Stream` here matches a complete `CSI [?] digits;... final` whose final character pyte
dispatches, and a lone C0 control pyte dispatches, with one regular expression or dict lookup,
and calls the very handler pyte's parser would, with the same arguments (its parameters each
clamped to 9999, empty as 0; `private=True` after `?`). Anything else (a sequence split across
`feed` calls, other escapes, OSC, SO/SI, a CSI with characters pyte treats specially) goes
through pyte's own parser, unchanged; tests/test_vtstream.py checks both give the same screen.
"""

from __future__ import annotations

import re

import pyte
from pyte import control as ctrl

# A complete CSI that pyte would parse as: optional "?", parameters of ASCII digits and ";", one
# final character (pyte's parser dispatches any other; those take its path).
_CSI = re.compile(r"\x1b\[(\?)?([0-9;]*)([@A-Za-z`])")


class Stream(pyte.Stream):
    """A pyte.Stream (the same events, the same screen) with a bulk path for whole sequences."""

    def attach(self, screen: pyte.Screen) -> None:
        super().attach(screen)
        self._csi_handlers = {final: getattr(screen, name) for final, name in self.csi.items()}
        # SO and SI are left to pyte, which ignores them in UTF-8 mode
        self._basic_handlers = {
            char: getattr(screen, name)
            for char, name in self.basic.items()
            if char not in (ctrl.SO, ctrl.SI)
        }

    def feed(self, data: str) -> None:  # profiled: every byte the renderer writes
        if self.listener is None:
            raise RuntimeError("Listener is not set")
        draw = self.listener.draw
        match_text = self._text_pattern.match
        match_csi = _CSI.match
        csi, basic = self._csi_handlers, self._basic_handlers
        send = self._send_to_parser
        plain = self._taking_plain_text  # pyte's parser waits for a sequence's first character
        length, offset = len(data), 0
        while offset < length:
            if not plain:
                plain = send(data[offset])
                offset += 1
                continue
            char = data[offset]
            if char == "\x1b":
                match = match_csi(data, offset)
                if match is not None:
                    handler = csi.get(match[3])
                    if handler is not None:
                        offset = match.end()
                        params = [min(int(p or 0), 9999) for p in match[2].split(";")]
                        try:
                            if match[1]:
                                handler(*params, private=True)
                            else:
                                handler(*params)
                        except Exception:  # as pyte's parser: the rest of `data` is dropped
                            self._initialize_parser()
                            raise
                        continue
                plain = False
                continue
            handler = basic.get(char)
            if handler is not None:
                handler()
                offset += 1
                continue
            match = match_text(data, offset)
            if match is None:
                plain = False
                continue
            offset = match.end()
            draw(match.group())
        self._taking_plain_text = plain
