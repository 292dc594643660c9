"""Serial-depth benchmarks: FRJT and Withheld Maze Position Tracking across sequence backbones."""

from .backbones import BACKBONES, make_backbone
from .tasks import FRJT, TASKS, Maze, make_task

__all__ = ["BACKBONES", "FRJT", "TASKS", "Maze", "make_backbone", "make_task"]
