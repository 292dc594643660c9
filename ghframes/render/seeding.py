"""Seeds from identities: every random choice of a render is drawn from `rng_for(parts…)`.

A policy's generator is seeded by the identity of what it decides about (the render `--seed`,
the repository, the commit, the path), never by a shared stream, so that a commit's plan is
the same whichever session it lands in and on every machine (sha256, then Python's
`random.Random`, whose Mersenne Twister and `random()` are the same on every platform).
"""

from __future__ import annotations

import hashlib
import random


def seed_for(*parts: object) -> int:
    """A 64-bit seed from `parts` (each turned into text with `str`, joined by NUL bytes)."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:8], "little")


def rng_for(*parts: object) -> random.Random:
    """A generator seeded by `parts`: the same parts give the same draws, everywhere."""
    return random.Random(seed_for(*parts))
