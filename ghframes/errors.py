"""The one exception users see: a single line naming the input and what is wrong with it."""


class GhframesError(Exception):
    """Bad input or an unrecoverable condition, reported as one line on stderr by the CLI."""
