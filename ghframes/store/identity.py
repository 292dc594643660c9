"""Repository identities, the `repo` of every edit row and session: how a local repository's
carries its location, and the name without it, from which a render draws what it types and
which its shell prompt shows."""

from __future__ import annotations

import hashlib
import re

LOCATION_HASH_CHARS = 8
_LOCATION = re.compile(rf"local-[0-9a-f]{{{LOCATION_HASH_CHARS}}}/")


def with_location(folder: str, name: str) -> str:
    """`local-HASH/NAME` for the local repository `name` at absolute path `folder`: HASH the
    first 8 hex digits of sha256 of `folder`, so that two folders of one name differ."""
    digest = hashlib.sha256(folder.encode("utf-8", "surrogateescape")).hexdigest()
    return f"local-{digest[:LOCATION_HASH_CHARS]}/{name}"


def without_location(repo: str) -> str:
    """`repo` without the `local-HASH/` a local repository's starts with: the same history
    crawled from any folder renders the same frames (only the sessions' names differ)."""
    match = _LOCATION.match(repo)
    return repo[match.end() :] if match else repo
