"""The person at the keyboard: a typist's habits, drawn once per repository, and its clock.

`draw_habits(rng)` draws every parameter of the human typist from the distributions below
(documented in README.md, "The typist"); the session metadata records them, so a frame can be
explained. `Clock` turns a key and what it is for into milliseconds since the previous key.

Sources for the typing figures: Dhakal, Feit, Kristensson and Oulasvirta, "Observations on
Typing from 136 Million Keystrokes", CHI 2018 (168,000 volunteers transcribing sentences):
mean 51.56 words per minute (SD 20.2), mean inter-key interval 238.66 ms, about 1.17
keystrokes per character with backspace the main correction. Key repeat: X11's and most
desktops' defaults, 660 ms before a held key repeats (xset's default is 660/25; GNOME and
macOS are close: 500 ms, 30/s); here 500 ms, then 30 keys/s.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass

WPM_MEAN, WPM_SD, WPM_RANGE = 51.56, 20.2, (15.0, 150.0)  # Dhakal et al. 2018
CHARS_PER_WORD = 5  # the words-per-minute convention
KEY_SIGMA = 0.35  # log-normal spread of one inter-key interval around the person's mean
REPEAT_DELAY_MS, REPEAT_MS = 500, 33  # a held key: first repeat after 500 ms, then 30/s
HELD_RUN = 5  # runs of one navigation key at least this long are held down, not tapped
MAX_MS = 65_535  # the frames table stores times as uint16


@dataclass(frozen=True)
class Habits:
    """One person's typing and navigation habits (every field drawn by `draw_habits`)."""

    wpm: float  # typing speed, words (5 characters) per minute
    typo_rate: float  # typos per typed letter
    notice: float  # chance a typo is noticed after each further key (mean keys = 1/notice - 1)
    late_fix: float  # share of typos noticed only after the word, fixed by moving back
    near_lines: int  # targets at most this many lines away are walked to with arrows
    far: tuple[float, float, float]  # farther: chances of paging, go-to-line and search
    word_motion: float  # share of moves along a line made with word keys
    word_delete: float  # share of deletions of whole words made with <C-BS>
    cut_lines: float  # share of rewritten lines cut with <C-k> and retyped below
    revisit: float  # chance, per pair of neighbouring hunks, of doing the lower one first
    pause: float  # scales every pause to think, read or look

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @property
    def key_ms(self) -> float:
        """Mean interval between two typed characters."""
        return 60_000 / (self.wpm * CHARS_PER_WORD)


def draw_habits(rng: random.Random, typo_rate: float | None = None) -> Habits:
    """A person's habits: typing speed from Dhakal et al.'s distribution, the rest uniform or
    log-normal over ranges observed in editing sessions (the README lists them)."""
    # Log-normal with Dhakal et al.'s mean and SD (typing speed is right-skewed).
    sigma2 = math.log(1 + (WPM_SD / WPM_MEAN) ** 2)
    mu = math.log(WPM_MEAN) - sigma2 / 2
    wpm = min(max(math.exp(rng.gauss(mu, math.sqrt(sigma2))), WPM_RANGE[0]), WPM_RANGE[1])
    if typo_rate is None:
        # Median 5.5% of letters: each corrected typo costs about 2 typed characters deleted
        # and retyped (the typo, the key or two before it is seen), which on code (about 65%
        # letters) gives Dhakal et al.'s 1.17 keystrokes per character.
        typo_rate = min(max(0.055 * math.exp(rng.gauss(0, 0.4)), 0.01), 0.15)
    weights = [rng.gammavariate(2.0, 1.0) for _ in range(3)]
    total = sum(weights)
    return Habits(
        wpm=round(wpm, 2),
        typo_rate=round(typo_rate, 4),
        notice=round(rng.uniform(0.4, 0.7), 3),
        late_fix=round(rng.uniform(0.03, 0.15), 3),
        near_lines=rng.randint(6, 16),
        far=tuple(round(w / total, 3) for w in weights),
        word_motion=round(rng.uniform(0.2, 0.7), 3),
        word_delete=round(rng.uniform(0.3, 0.9), 3),
        cut_lines=round(rng.uniform(0.2, 0.6), 3),
        revisit=round(rng.uniform(0.05, 0.3), 3),
        pause=round(math.exp(rng.gauss(0, 0.3)), 3),
    )


# Median milliseconds of what a key is for, beyond typing a character: thinking, reading,
# reacting. Multiplied by Habits.pause and spread log-normally.
PAUSES_MS = {
    "read": 1800,  # the file just opened: look before the first key
    "think": 700,  # about to edit at a new place
    "notice": 350,  # a typo seen: the reaction before the first backspace
    "prompt": 600,  # deciding what to search for or which line to go to
    "page": 350,  # each page: look where it landed
    "save": 600,
    "quit": 300,
    "command": 1200,  # at the shell prompt, before typing a command
    "output": 500,  # after a command printed something, before the next
}
# Typing keys relative to the person's mean interval (Enter and the first key of a word take
# longer: the hand moves, the next word is recalled).
KEY_FACTOR = {"char": 1.0, "word": 1.3, "enter": 1.5, "bs": 0.7, "tap": 0.8}


class Clock:
    """Milliseconds since the previous key, for each key a typist presses."""

    def __init__(self, habits: Habits, rng: random.Random) -> None:
        self.habits = habits
        self.rng = rng
        self._key = habits.key_ms
        self._lognorm = rng.lognormvariate

    def key(self, kind: str = "char") -> int:
        """A typing key: `char`, `word` (first of a word), `enter`, `bs`, `tap` (a tapped
        navigation key)."""
        return min(round(self._key * KEY_FACTOR[kind] * self._lognorm(0, KEY_SIGMA)), MAX_MS)

    def pause(self, kind: str) -> int:
        """A key after a pause (PAUSES_MS), the key's own interval included."""
        wait = PAUSES_MS[kind] * self.habits.pause * self._lognorm(0, 0.5)
        return min(round(wait + self._key * self._lognorm(0, KEY_SIGMA)), MAX_MS)

    def run(self, n: int) -> list[int]:
        """Times of `n` presses of one navigation key: tapped, or held when the run is long."""
        if n < HELD_RUN:
            return [self.key("tap") for _ in range(n)]
        return [self.key("tap"), REPEAT_DELAY_MS] + [REPEAT_MS] * (n - 2)
