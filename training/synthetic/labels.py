"""The target of positions that carry no label, shared by every task module (tasks.py, repl.py)."""

IGNORE = -100  # matches torch's cross-entropy default ignore_index
