"""Render: the shell, the editor, typing plans and terminal capture that turn edits into frames."""
