"""One writer per DATA: a lock file naming its holder (command, host, pid, start time).

Two crawls or renders of one DATA at once would each remove the other's shards as unlisted
and publish manifests that list half of each. The lock is published whole with `os.link`
(atomic, and refused where the name exists, also on NFS); a lock whose process has died on
this host is taken over; a lock from another host cannot be checked, so it is respected and
named. Remote DATA (s3://) is not locked: object stores have no exclusive create.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator

import pyarrow.fs as pafs

from ghframes.errors import GhframesError
from ghframes.store import shards

log = logging.getLogger(__name__)

LOCK = ".ghframes-lock.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: a holder that cannot be named, never taken over
    return holder if isinstance(holder, dict) else {}


def describe(holder: dict) -> str:
    """`crawl (pid 12, host h, since 2026-01-01T00:00:00Z)` for a holder read from a lock."""
    return (
        f"{holder.get('command', '?')} (pid {holder.get('pid', '?')} on host "
        f"{holder.get('host', '?')}, since {holder.get('started', '?')})"
    )


def _publish(path: str, holder: dict) -> bool:
    """Write `holder` to `path` unless something is there already; True if written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(holder, f, sort_keys=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def acquire(folder: str, command: str) -> tuple[str, dict]:
    """Take the lock of `folder` for `command`; (lock path, holder). A one-line
    `GhframesError` naming the holder if a live process, or one on another host, has it."""
    path = os.path.join(folder, LOCK)
    holder = {
        "command": command,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for _ in range(2):  # the second try follows the takeover of a dead holder's lock
        if _publish(path, holder):
            return path, holder
        other = _read(path)
        if other is None:
            continue  # released meanwhile
        pid = other.get("pid")
        if other.get("host") == holder["host"] and isinstance(pid, int) and not _alive(pid):
            log.warning("%s: taking over the lock of %s, no longer running", path, describe(other))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        raise GhframesError(
            f"{folder}: in use by {describe(other)}; wait for it to end, or remove {path} "
            "if that process is gone"
        )
    raise GhframesError(f"{folder}: could not take the lock {path}; another run is starting")


def release(path: str, holder: dict) -> None:
    """Remove the lock at `path` if it is still `holder`'s (not one taken over meanwhile)."""
    if _read(path) == holder:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def hold(data: str, command: str, create: bool = False) -> Iterator[None]:
    """Hold DATA's lock for the body, released when it ends, also by an error.

    Without `create`, a DATA folder that does not exist is not made (nor locked): the command
    fails on its own for lack of input. With it, the folder is made, and removed again if the
    body left nothing in it (it failed before writing)."""
    fs, root = shards.filesystem(data)
    if not isinstance(fs, pafs.LocalFileSystem):
        yield
        return
    made = not os.path.isdir(root)
    if made:
        if not create:
            yield
            return
        os.makedirs(root)
    try:
        path, holder = acquire(root, command)
        try:
            yield
        finally:
            release(path, holder)
    finally:
        if made:
            with contextlib.suppress(OSError):  # left only if the body wrote nothing there
                os.rmdir(root)
