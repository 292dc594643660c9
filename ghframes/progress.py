"""Progress that fits where it runs: a bar on a terminal, elsewhere a line every few seconds.

In a pipe, a log file or a Ray job's log, a bar's carriage returns are noise and a bar that
stays quiet until the end says nothing; there `Progress` prints one plain line every `EVERY`
seconds (and one at the end) with the counts and the rate, never a carriage return.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY = 5.0  # seconds between progress lines off a terminal


class Progress:
    """Counts of `unit` done out of `total` (0: unknown yet), shown as suits `stream`."""

    def __init__(
        self,
        desc: str,
        unit: str,
        total: int = 0,
        stream: TextIO | None = None,
        enabled: bool = True,
        scale: bool = False,  # the bar shows 12.3k rather than 12,345
    ) -> None:
        self.desc, self.unit = desc, unit
        self.n, self.total = 0, total
        self.extra = ""
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self._bar = None
        self._start = self._last = time.monotonic()
        if enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, unit_scale=scale, desc=desc, file=self.stream)

    def set(self, n: int, total: int | None = None, extra: str = "") -> None:
        """Now `n` done (of `total`, if it became known); `extra`: a few words after the counts."""
        self.n = n
        if total is not None:
            self.total = total
        self.extra = extra
        if self._bar is not None:
            self._bar.total = self.total
            if extra:
                self._bar.set_postfix_str(extra, refresh=False)
            self._bar.update(n - self._bar.n)
        elif self.enabled and time.monotonic() - self._last >= EVERY:
            self._line()

    def update(self, n: int = 1) -> None:
        self.set(self.n + n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self.n:
            self._line()
        self.enabled = False

    def _line(self) -> None:
        now = time.monotonic()
        self._last = now
        rate = self.n / max(now - self._start, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        extra = f", {self.extra}" if self.extra else ""
        line = f"{self.desc}: {self.n:,}{of} {self.unit}s{share}, {rate:,.0f} {self.unit}s/s{extra}"
        print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a file
        return False


def say(message: str, stream: TextIO | None = None) -> None:
    """One status line on stderr (`starting Ray …`)."""
    print(message, file=stream if stream is not None else sys.stderr, flush=True)
