"""What every layer agrees a frame is: its shape, and the code point of a wide character's right half."""

ROWS = 48
COLS = 160

# Code point stored for the right half of a two-cell (wide) character, where pyte keeps "".
WIDE_STUB = 0
