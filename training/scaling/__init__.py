"""Loss against trained sequence length: the seed paper's headline, measured on ghframes data.

`python -m ghframes.training.scaling --preset quick --out runs/scaling` (`make scaling`):

1. data (corpus.py): the demo's corpus repository and more histories built like it (realistic
   histories over other installed Python packages), crawled and rendered by the current
   renderer; one repository is held out whole (split by repo).
2. runs (runs.py): one model size trained at each sequence length L of the preset, in window
   mode with full streaming BPTT, batch x L the same for every L (the same frames per optimizer
   step), the same schedule and steps, for each seed. Every run is evaluated at a few points in
   training on the same held-out windows of the longest L, from the initial state, so every
   model is scored on the same frames at the same positions.
3. analysis (analysis.py): held-out loss against L with the power-law fit loss = A * L^-alpha at
   each evaluation point (a bootstrap interval over held-out windows and seeds), loss against
   training wall time per L, loss by position in the window per L, and a context control (the
   same windows scored with the state reset every `control_context` frames). A Markdown and
   JSON report and PNG plots are written under OUT.

Finished runs are kept (OUT/runs/L<L>-s<seed>.json and .npz) and skipped when the command is
run again with the same preset: an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from ghframes.errors import GhframesError

# Installed packages whose sources the corpora type in, two per repository (those not installed
# are passed over). The first pair is the demo corpus's and the render benchmark's.
CORPUS_PACKAGES: tuple[tuple[str, ...], ...] = (
    ("pyte", "tqdm"),
    ("requests", "urllib3"),
    ("click", "packaging"),
    ("jinja2", "markupsafe"),
    ("jsonschema", "yaml"),
    ("idna", "charset_normalizer"),
    ("pygments", "wcwidth"),
    ("_pytest", "pluggy"),
)


@dataclass(frozen=True)
class Preset:
    """One scaling experiment: its data, its runs and its evaluation."""

    name: str
    lengths: tuple[int, ...]  # trained sequence lengths L
    frames_per_step: int  # batch x L, the same for every L
    steps: int  # optimizer steps of every run
    seeds: tuple[int, ...]
    eval_points: int  # held-out evaluations per run, evenly spaced; the last after the last step
    eval_windows: int  # held-out windows of max(lengths) frames, the same for every run
    control_context: int  # the context control's state reset interval (frames)
    corpora: int  # repositories in the data (CORPUS_PACKAGES, in order)
    files_per_corpus: int
    edits_per_file: int
    max_frames_per_session: int
    jobs: int = 1  # runs trained at once, one process each
    model_preset: str = "tiny"  # training/model.py PRESETS
    model: dict = field(default_factory=dict)  # ModelConfig overrides
    train: dict = field(default_factory=dict)  # TrainConfig overrides (lr, warmup, device, ...)

    def __post_init__(self) -> None:
        if not self.lengths or min(self.lengths) < 1:
            raise GhframesError(f"scaling preset {self.name}: lengths must be >= 1")
        for length in self.lengths:
            if self.frames_per_step % length:
                raise GhframesError(
                    f"scaling preset {self.name}: frames_per_step {self.frames_per_step} is not "
                    f"a multiple of L = {length} (batch x L must be the same for every L)"
                )
        if max(self.lengths) % self.control_context:
            raise GhframesError(
                f"scaling preset {self.name}: control_context {self.control_context} must "
                f"divide the longest L ({max(self.lengths)})"
            )
        if not 1 <= self.eval_points <= self.steps:
            raise GhframesError(f"scaling preset {self.name}: eval_points must be in [1, steps]")
        if self.jobs < 1:
            raise GhframesError(f"scaling preset {self.name}: jobs must be >= 1")
        if not 1 <= self.corpora <= len(CORPUS_PACKAGES):
            raise GhframesError(
                f"scaling preset {self.name}: corpora must be in [1, {len(CORPUS_PACKAGES)}]"
            )

    @property
    def eval_length(self) -> int:
        return max(self.lengths)

    @property
    def eval_steps(self) -> list[int]:
        """The steps after which each run is evaluated."""
        return sorted(
            {round(self.steps * (k + 1) / self.eval_points) for k in range(self.eval_points)}
        )

    def batch_size(self, length: int) -> int:
        return self.frames_per_step // length

    def fingerprint(self) -> dict:
        """What a finished run's results depend on (a stored run of another preset is redone),
        as it reads back from JSON (tuples as lists), so that a stored one compares equal."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


PRESETS: dict[str, Preset] = {
    # 2 CPU cores, under 30 minutes in all (README: measured): the tiny model, two runs at a
    # time on one thread each (two threads per run on a shared 2-core machine are several
    # times slower: OpenMP threads wait on each other), two seeds.
    "quick": Preset(
        name="quick",
        lengths=(16, 32, 64, 128, 256),
        frames_per_step=256,
        steps=150,
        seeds=(0, 1),
        eval_points=3,
        eval_windows=16,
        control_context=16,
        corpora=6,
        files_per_corpus=12,
        edits_per_file=4,
        max_frames_per_session=4000,
        jobs=2,
        train={"warmup_steps": 15, "threads": 1},
    ),
    # A GPU: the paper's model, L up to 4,096, three seeds. Not run on this project's machines.
    "full": Preset(
        name="full",
        lengths=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
        frames_per_step=8192,
        steps=3000,
        seeds=(0, 1, 2),
        eval_points=6,
        eval_windows=64,
        control_context=16,
        corpora=len(CORPUS_PACKAGES),
        files_per_corpus=40,
        edits_per_file=6,
        max_frames_per_session=20000,
        model_preset="paper",
        train={"device": "cuda", "warmup_steps": 100},
    ),
    # The tests': every stage in seconds.
    "test": Preset(
        name="test",
        lengths=(4, 8),
        frames_per_step=16,
        steps=2,
        seeds=(0, 1),
        eval_points=2,
        eval_windows=2,
        control_context=4,
        corpora=2,
        files_per_corpus=2,
        edits_per_file=1,
        max_frames_per_session=400,
        model={"merge_dims": (8, 16, 32), "stage_blocks": (1, 0), "d_model": 32, "heads": 2},
        jobs=2,
        train={"warmup_steps": 1, "threads": 1},
    ),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise GhframesError(f"unknown scaling preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]
