"""The action vocabulary, read from schemas/actions.json: named tokens, control keys, keys by number.

The editor (what keys do) and training (action ids) both take the vocabulary from here, so
schemas/actions.json is the only place it is listed.
"""

from __future__ import annotations

import functools
import importlib.resources
import json


@functools.cache
def vocabulary() -> dict:
    """schemas/actions.json as parsed JSON."""
    text = importlib.resources.files("ghframes.schemas").joinpath("actions.json").read_text()
    return json.loads(text)


# Every named token, once, in the order training ids take them (schemas/chars.json).
TOKENS: tuple[str, ...] = tuple(vocabulary()["tokens"])
# Control key -> the control character it inserts after <C-v>.
CONTROL: dict[str, str] = {
    key: chr(code) for key, code in vocabulary()["control"]["code_points"].items()
}
# A character entered by its code point: `<U+XXXX>`, 4 to 6 upper-case hex digits.
BY_NUMBER_PATTERN: str = vocabulary()["by_number"]["pattern"]
