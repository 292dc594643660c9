"""Serial-depth benchmarks: FRJT, Withheld Maze Position Tracking and REPL-trace state tracking
across sequence backbones."""

from .backbones import BACKBONES, make_backbone
from .repl import ReplTrace, repl_trace, run_trace
from .tasks import FRJT, TASKS, Maze, make_task

__all__ = [
    "BACKBONES",
    "FRJT",
    "TASKS",
    "Maze",
    "ReplTrace",
    "make_backbone",
    "make_task",
    "repl_trace",
    "run_trace",
]
