"""Waiting for what a test can observe, with a deadline: files appearing, a line on a pipe.

Files: Linux inotify (through ctypes), so that the test wakes when a directory under `root`
changes rather than polling on a timer; each wake re-checks the test's condition, and watches
every directory created meanwhile. A deadline passed is an AssertionError naming what never
happened.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import time
from collections.abc import Callable
from pathlib import Path

# <sys/inotify.h>: what makes a file appear under a watched directory
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x008, 0x080, 0x100
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class _Inotify:
    def __init__(self) -> None:
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.watched: set[str] = set()

    def watch_tree(self, top: Path) -> None:
        """Watch `top` and every directory under it (again: inotify keeps one watch a path)."""
        mask = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE
        for here, _, _ in os.walk(top):
            if (
                here not in self.watched
                and _libc.inotify_add_watch(self.fd, here.encode(), mask) >= 0
            ):
                self.watched.add(here)

    def wait(self, seconds: float) -> bool:
        """Block until an event or `seconds`; drain the events; whether any came."""
        ready, _, _ = select.select([self.fd], [], [], max(seconds, 0))
        if not ready:
            return False
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return True
            except BlockingIOError:
                return True

    def close(self) -> None:
        os.close(self.fd)


def wait_for_files(root: Path, condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Return once `condition()` holds, re-checked whenever a file appears under `root` (which
    may not exist yet: its nearest existing parent is watched until it does)."""
    deadline = time.monotonic() + timeout
    top = Path(root)
    while not top.exists():
        top = top.parent
    notify = _Inotify()
    try:
        while True:
            notify.watch_tree(top)  # before the check: nothing can appear unseen in between
            if condition():
                return
            if not notify.wait(deadline - time.monotonic()) and time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not seen within {timeout:g} s")
    finally:
        notify.close()


def wait_for_line(stream, needle: str, what: str, timeout: float) -> str:
    """Read `stream` line by line until one holds `needle`; return that line. `stream`: an
    unbuffered binary pipe (`Popen(..., bufsize=0)`), so that no line waits in a buffer that
    `select` cannot see."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"{what}: no line with {needle!r} within {timeout:g} s: {seen}")
        line = stream.readline()
        if not line:
            raise AssertionError(f"{what}: the pipe closed without a line with {needle!r}: {seen}")
        text = line.decode(errors="replace")
        if needle in text:
            return text
        seen.append(text)
