"""Starting Ray for a pipeline: an embedded local Ray, or a cluster reached within a timeout.

Connecting to a head whose port answers but is no Ray (a proxy, another server) makes
`ray.init` retry, each retry a warning line from Ray's C++ core. The retries are bounded by
Ray's own settings, read at `import ray` and `ray.init` (the command line sets them from
--ray-timeout: `ghframes/cli/cluster.py`); the warnings are kept off the terminal while Ray
starts (`_core_output`), so what the user sees is one error line.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import tempfile
from collections.abc import Callable, Iterator

import ray

from ghframes.errors import GhframesError
from ghframes.progress import say

RAY_LOG = "_logs/ray.log"  # under a local DATA: Ray's own warnings and banners
# `ray.init` resets the handlers of the "ray" logger itself; those below it keep ours.
RAY_LOGGERS = ("ray", "ray._private")


class _LazyFileHandler(logging.FileHandler):
    """A log file made, folder and all, at its first record: a run that fails before Ray
    says anything leaves DATA as it was."""

    def _open(self):
        os.makedirs(os.path.dirname(self.baseFilename), exist_ok=True)
        return super()._open()


class _HeldHandler(logging.handlers.MemoryHandler):
    """Holds records until `let_go()`, then writes them and every later one to `target`;
    never released (Ray did not come up), it drops them, even at interpreter exit."""

    def __init__(self, target: logging.Handler) -> None:
        super().__init__(10_000, logging.CRITICAL + 1, target, flushOnClose=False)
        self.released = False

    def let_go(self) -> None:
        self.released = True
        self.flush()

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        return self.released or super().shouldFlush(record)

    def flush(self) -> None:
        if self.released:
            super().flush()


def route_ray_logs(data: str | None) -> str | None:
    """Send Ray's Python log records (its token-authentication banner, warnings) to
    DATA/_logs/ray.log instead of the terminal; for a remote DATA they are dropped. Returns the
    log file's path, if any. Ray's C++ core still writes its own lines to stderr."""
    path = None
    if data is not None and "://" not in data:
        path = os.path.join(data, RAY_LOG)
        target = _LazyFileHandler(path, encoding="utf-8", delay=True)
        target.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        # Held until Ray is up (`ray_is_up`): a run that cannot reach Ray writes nothing.
        handler = _HeldHandler(target)
    else:
        handler = logging.NullHandler()
    handler.ghframes = True
    for name in RAY_LOGGERS:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if getattr(old, "ghframes", False):
                logger.removeHandler(old)
                old.close()
        logger.addHandler(handler)
        logger.propagate = False
    return path


def ray_is_up() -> None:
    """Write Ray's log records held so far, and every later one as it comes."""
    for name in RAY_LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, _HeldHandler):
                handler.let_go()


def init_ray(
    address: str | None,
    num_cpus: int | None,
    timeout: float,
    log_to_driver: bool,
    log_dir: str | None = None,
    announce: bool = False,
) -> bool:
    """Connect to `address` or start an embedded Ray of `num_cpus`; True if this call did
    either, False if Ray was running already. A one-line `GhframesError` if the cluster
    cannot be reached within about `timeout` seconds. Ray's log records go to `log_dir`'s
    `_logs/ray.log` (route_ray_logs); `announce` says "starting Ray …" on stderr first."""
    if ray.is_initialized():
        return False
    route_ray_logs(log_dir)
    if announce:
        where = f"at {address}" if address is not None else "(embedded, on this machine)"
        say(f"starting Ray {where} …")
    kwargs = {"include_dashboard": False, "log_to_driver": log_to_driver}
    with _core_output(log_dir) as keep:
        if address is None:
            ray.init(num_cpus=num_cpus, configure_logging=False, **kwargs)
        else:
            try:
                ray.init(address=address, configure_logging=False, **kwargs)
            except ConnectionError as exc:
                lines = str(exc).strip().splitlines() or ["no answer"]
                raise GhframesError(
                    f"--ray-address {address}: {lines[0]} within {timeout:g} s (--ray-timeout)"
                ) from None
        keep()
    ray_is_up()
    return True


@contextlib.contextmanager
def _core_output(data: str | None) -> Iterator[Callable[[], None]]:
    """While Ray starts or connects: what its C++ core writes to file descriptor 2 itself
    (`Failed to connect to GCS ...` while it retries a head) goes to a scratch file instead of
    the terminal; `keep()`, once Ray is up, appends it to DATA/_logs/ray.log (a local DATA), and
    a run that never reaches Ray drops it: its one error line says what happened."""
    kept = False

    def keep() -> None:
        nonlocal kept
        kept = True

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield keep
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            scratch.seek(0)
            text = scratch.read()
    if kept and text and data is not None and "://" not in data:
        path = os.path.join(data, RAY_LOG)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab") as log:
            log.write(text)
