"""Starting Ray for a pipeline: an embedded local Ray, or a cluster reached within a timeout.

Connecting to a head whose port answers but is no Ray (a proxy, another server) makes
`ray.init` retry, each retry a warning line from Ray's C++ core on stderr. The retries are
bounded by Ray's own settings, read at `import ray` and `ray.init` (the command line sets them
from --ray-timeout: `ghframes/cli/cluster.py`); what is left is one error line after them.
"""

from __future__ import annotations

import ray

from ghframes.errors import GhframesError


def init_ray(
    address: str | None, num_cpus: int | None, timeout: float, log_to_driver: bool
) -> bool:
    """Connect to `address` or start an embedded Ray of `num_cpus`; True if this call did
    either, False if Ray was running already. A one-line `GhframesError` if the cluster
    cannot be reached within about `timeout` seconds."""
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": log_to_driver}
    if address is None:
        ray.init(num_cpus=num_cpus, configure_logging=False, **kwargs)
        return True
    try:
        ray.init(address=address, configure_logging=False, **kwargs)
    except ConnectionError as exc:
        lines = str(exc).strip().splitlines() or ["no answer"]
        raise GhframesError(
            f"--ray-address {address}: {lines[0]} within {timeout:g} s (--ray-timeout)"
        ) from None
    return True
