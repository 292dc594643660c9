"""Typists: the policies that turn a change into keys, picked by name (`--typist`).

`human` (the default, render/human.py) types like a person, with habits drawn per repository
from the render's `--seed` (render/habits.py); `replay` (render/replay.py) is the exact
shortest-path planner, typing at a fixed `REPLAY_MS` per key. Both are exact: their keys
reproduce `after` in the editor model, which `ghframes verify` checks.

Every random draw comes from a generator seeded by the identity of what it decides (seed,
repository, commit, path: render/seeding.py), so a commit plans the same keys whichever
session it lands in, on every machine.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from ghframes.errors import GhframesError
from ghframes.render import human, replay
from ghframes.render.habits import Clock, Habits, draw_habits
from ghframes.render.seeding import rng_for
from ghframes.render.typed import TypedEdit

REPLAY_MS = 100  # the replay typist's time per key: 10 keys a second, always


def _replay(before: str, after: str, habits: Habits | None, rng: random.Random) -> TypedEdit:
    plan = replay.plan_edit(before, after)
    times = [REPLAY_MS] * len(plan.actions)
    return TypedEdit(plan.actions, times, plan.typed, plan.inserted, plan.deleted)


PlanEdit = Callable[[str, str, "Habits | None", random.Random], TypedEdit]
TYPISTS: dict[str, PlanEdit] = {"human": human.plan_edit, "replay": _replay}


@dataclass(frozen=True)
class Person:
    """Who types a repository's history: a typist and, for the human one, its habits."""

    typist: str
    seed: int
    repo: str
    habits: Habits | None

    def as_dict(self) -> dict:
        """As the session metadata records it (`typist`)."""
        habits = None if self.habits is None else self.habits.as_dict()
        return {"name": self.typist, "seed": self.seed, "habits": habits}

    def plan_edit(self, before: str, after: str, commit: str, path: str) -> TypedEdit:
        """The keys (and their times) of one change, from the opened file to the save."""
        rng = rng_for(self.seed, "edit", self.repo, commit, path)
        return TYPISTS[self.typist](before, after, self.habits, rng)

    def command_times(self, command: str, commit: str, step: int, after_output: bool) -> list[int]:
        """Times of a shell command's keys and its `<Enter>`; the first after a pause."""
        if self.habits is None:
            return [REPLAY_MS] * (len(command) + 1)
        clock = Clock(self.habits, rng_for(self.seed, "shell", self.repo, commit, step))
        times = [clock.pause("output" if after_output else "command")]
        times += [
            clock.key("word" if command[k - 1] == " " else "char") for k in range(1, len(command))
        ]
        times.append(clock.key("enter"))
        return times

    def pause(self, kind: str, commit: str, step: int) -> int:
        """One key after a pause (habits.PAUSES_MS) at a step of a commit: quitting the editor."""
        if self.habits is None:
            return REPLAY_MS
        return Clock(self.habits, rng_for(self.seed, kind, self.repo, commit, step)).pause(kind)


def check_typist(name: str) -> None:
    if name not in TYPISTS:
        valid = ", ".join(sorted(TYPISTS))
        raise GhframesError(f"--typist must be one of {valid}, got {name!r}")


@functools.lru_cache(maxsize=256)
def person_for(typist: str, seed: int, typo_rate: float | None, repo: str) -> Person:
    """The person who types `repo` under these options (habits drawn from seed and repo)."""
    check_typist(typist)
    habits = None
    if typist == "human":
        habits = draw_habits(rng_for(seed, "habits", repo), typo_rate)
    return Person(typist, seed, repo, habits)
