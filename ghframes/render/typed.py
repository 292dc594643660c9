"""What a typist makes of one change: the keys from the opened file to the save, with times."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypedEdit:
    """The editor actions of one change, from the opened file to the save (quit excluded)."""

    actions: list[str]
    times: list[int]  # milliseconds before each action (the frame it answers was on screen)
    typed: int  # characters of the new text typed, newlines included (corrections excluded)
    inserted: int  # lines added and deleted, as `git commit` counts them
    deleted: int
    typos: int = 0  # mistakes made (and fixed) on the way
