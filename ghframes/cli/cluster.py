"""The shared Ray flags' checks: `--num-cpus`, `--ray-address`, and a bounded probe of the address.

`ray.init(address=...)` waits minutes for a head that does not answer, saying nothing; a TCP
connect to the head's port, bounded by `--ray-timeout`, tells the same thing in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
from collections.abc import Iterator

from ghframes.errors import GhframesError

CLIENT = "ray://"
# Ray's bounds on connecting to a head, read when `ray` is imported and when it starts.
WAIT_VARIABLES = (
    "RAY_gcs_server_port_wait_time_s",  # connection attempts, about one a second
    "RAY_py_gcs_connect_timeout_s",  # seconds one attempt may take
    "RAY_gcs_rpc_server_connect_timeout_s",
)
ADDRESS_FORMS = "`auto`, `local`, HOST:PORT or ray://HOST:PORT"


def positive_int(text: str) -> int:
    """A count of one or more (`--num-cpus 0` would start a Ray that never runs a task)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: not a positive integer")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: not a finite number of seconds above 0")
    return value


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a HOST:PORT or ray://HOST:PORT address; None for `auto` and `local`."""
    if address in ("auto", "local"):
        return None
    rest = address.removeprefix(CLIENT)
    host, sep, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536) or "/" in rest:
        return None
    return host, int(port)


def ray_address(text: str) -> str:
    """An argparse type: `text` if it is one of the address forms Ray takes."""
    if text not in ("auto", "local") and host_port(text) is None:
        raise argparse.ArgumentTypeError(f"{text}: not {ADDRESS_FORMS}")
    return text


def _auto_address() -> str:
    """HOST:PORT of the cluster `ray start` last started on this machine."""
    from ray._private import services  # Ray's own lookup: RAY_ADDRESS, then its cluster file

    try:
        found = services.canonicalize_bootstrap_address("auto")
    except Exception:  # noqa: BLE001 - any failure of the lookup means: none found
        found = None
    if not found:
        raise GhframesError(
            "--ray-address auto: no Ray cluster started on this machine (`ray start --head`)"
        )
    return found


def check_reachable(address: str | None, timeout: float) -> None:
    """Raise a one-line `GhframesError` unless the head at `address` accepts a connection
    within `timeout` seconds; nothing to check without an address (an embedded Ray)."""
    if address is None or address == "local":
        return
    target = host_port(_auto_address() if address == "auto" else address)
    if target is None:
        raise GhframesError(f"--ray-address {address}: not {ADDRESS_FORMS}")
    host, port = target
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise GhframesError(
            f"--ray-address {address}: {host}:{port} did not accept a connection within "
            f"{timeout:g} s ({reason}); is the Ray head running there? (--ray-timeout)"
        ) from None


def token_available(env=os.environ) -> bool:
    """Whether this machine holds a Ray authentication token where Ray looks for one:
    RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token (what `ray
    get-auth-token --generate` writes, and what a head started with it enables token
    authentication from)."""
    if env.get("RAY_AUTH_TOKEN"):
        return True
    path = env.get("RAY_AUTH_TOKEN_PATH") or os.path.join(
        os.path.expanduser("~"), ".ray", "auth_token"
    )
    return os.path.isfile(path)


@contextlib.contextmanager
def connect_bounds(address: str | None, timeout: float) -> Iterator[None]:
    """Around the first `import ray` and `ray.init`, which read them, when connecting to a
    cluster: Ray's connection retries bounded by `timeout`, for a head whose port answers but
    is no Ray (measured with Ray 2.60: 2 s gives up after about 14 s, where unbounded it waited
    minutes); and token authentication (RAY_AUTH_MODE=token) when a token is available: a head
    `ray start --head` started on a machine holding one (Ray 2.60's default) refuses clients
    without it, and one without authentication accepts them too. The operator's own settings
    win."""
    settings = {}
    if address is not None:
        settings = {name: str(max(1, math.ceil(timeout))) for name in WAIT_VARIABLES}
        if token_available():
            settings["RAY_AUTH_MODE"] = "token"
    settings = {name: value for name, value in settings.items() if name not in os.environ}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name in settings:
            del os.environ[name]
