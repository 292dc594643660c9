"""The serial-depth sweep: train every backbone on every task, score accuracy by depth, report.

For each task, parameter budget and model: build the model at the width that brings it closest
to the budget, train it with one shared recipe on sequences of depth 1..train_max_depth
(dense supervision: the answer so far at every step), then measure final-answer accuracy on
fresh sequences of each evaluation depth, including depths longer than any seen in training.
All sequences of a task have the same length, so depth is the only thing that varies.

Outputs in the run folder: results.json (everything), and from it (report.py) table.md (accuracy
by model x depth) and accuracy_vs_depth.png (one line per model, one panel per task).
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbones import make_backbone
from .report import markdown_table, plot
from .tasks import IGNORE, TASKS, make_task

DEFAULT_MODELS = (
    ("transformer", 1),
    ("transformer", 2),
    ("transformer", 4),
    ("transformer", 8),
    ("mamba", 1),
    ("mamba", 2),
    ("mamba", 4),
    ("mamba", 8),
    ("lstm", 1),
    ("residual_lstm", 2),
)


@dataclass(frozen=True)
class SweepConfig:
    """One sweep. Presets below; the command line overrides single fields."""

    tasks: tuple[str, ...] = ("frjt", "maze")
    models: tuple[tuple[str, int], ...] = DEFAULT_MODELS  # (backbone name, n_layers)
    # Extra constructor arguments by backbone name. A small SSM state keeps the scan's
    # [B, T, d_inner, d_state] tensors, the CPU bottleneck, within the quick preset's budget.
    backbone_kwargs: dict[str, dict] = field(default_factory=lambda: {"mamba": {"d_state": 4}})
    # Model sizes swept: total parameters per model, embedding and head included. Every model
    # is built once per budget, at the width that brings it closest to that budget.
    param_budgets: tuple[int, ...] = (20_000,)
    maze_size: int = 3  # the maze is maze_size x maze_size cells
    train_max_depth: int = 24  # training depths are uniform in [1, train_max_depth]
    eval_depths: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 24, 32)
    # Optimizer steps per task, the same for every model. The maze needs more: its per-step rule
    # (a wall lookup at the current position) takes a small LSTM ~100k sequences to learn.
    steps: dict[str, int] = field(default_factory=lambda: {"frjt": 400, "maze": 1500})
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_samples: int = 256  # per depth
    seed: int = 0
    # Runs go to `workers` processes of `threads` torch threads each. These models are too small
    # for intra-op threads to pay: two 1-thread workers beat one 2-thread process on 2 cores,
    # and stay fast when another program takes a core (2 threads then stall on each other).
    workers: int = 2
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.tasks or not self.models:
            raise ValueError("sweep: needs at least one task and one model")
        if min(self.eval_depths) < 1 or self.train_max_depth < 1:
            raise ValueError(
                f"sweep: depths must be >= 1, got eval_depths={self.eval_depths}, "
                f"train_max_depth={self.train_max_depth}"
            )
        for task in self.tasks:
            if task.startswith("repl_"):
                raise ValueError(
                    f"sweep: {task} is a REPL-trace task, scored on its printed answers, not a "
                    "serial-depth one: run it with python -m ghframes.training.synthetic.statetracking"
                )
            if self.steps.get(task, 0) < 1:
                raise ValueError(
                    f"sweep: steps for task {task!r} must be >= 1, got {self.steps.get(task)}"
                )
        for name in ("batch_size", "workers", "threads", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"sweep: {name} must be >= 1, got {getattr(self, name)}")
        if not self.param_budgets or min(self.param_budgets) < 1:
            raise ValueError(f"sweep: param_budgets must be >= 1, got {self.param_budgets}")

    @property
    def max_depth(self) -> int:
        """Depth capacity of every sequence: sequences are padded to fit the deepest evaluation."""
        return max(max(self.eval_depths), self.train_max_depth)


PRESETS = {
    # 2 CPU cores, 8-10 minutes: 20k-parameter models, one seed.
    "quick": SweepConfig(),
    # One GPU: two sizes, 5x and 15x the parameters, ~10x the sequences, a 4x4 maze, depths up
    # to 64. Not yet run at this scale: expect to tune lr and steps on first use.
    "full": SweepConfig(
        backbone_kwargs={"mamba": {"d_state": 16}},
        param_budgets=(100_000, 300_000),
        maze_size=4,
        train_max_depth=32,
        eval_depths=(1, 2, 4, 8, 16, 24, 32, 48, 64),
        steps={"frjt": 4_000, "maze": 15_000},
        batch_size=128,
        lr=3e-3,
        warmup_steps=500,
        eval_samples=2_000,
        workers=1,
        threads=8,
        device="cuda",
    ),
}


class SequenceModel(nn.Module):
    """Token embedding -> backbone -> per-position classifier.

    forward(tokens: int64 [B, T], targets: int64 [B, T] | None) -> (logits float [B, T, C], loss).
    """

    def __init__(
        self,
        backbone: str,
        n_layers: int,
        d_model: int,
        vocab_size: int,
        num_classes: int,
        seq_len: int,
        **kwargs,
    ):
        super().__init__()
        if backbone == "transformer":
            kwargs = {"max_len": seq_len, **kwargs}
        self.embed = nn.Embedding(vocab_size, d_model)
        self.backbone = make_backbone(backbone, d_model, n_layers, **kwargs)
        self.head = nn.Linear(d_model, num_classes)

    def forward(
        self, tokens: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden, _ = self.backbone(self.embed(tokens))  # (B, T, H)
        logits = self.head(hidden)  # (B, T, C)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Widths step by 4: every backbone accepts it (the Transformer's 4 heads divide it), and it brings
# each model within a few percent of the budget, where steps of 8 left some 30% off.
WIDTH_STEP = 4


def fit_width(build: Callable[[int], nn.Module], budget: int, multiple: int = WIDTH_STEP) -> int:
    """The width (a multiple of ``multiple``) whose model has a parameter count closest to ``budget``."""
    best, best_gap, width = multiple, math.inf, multiple
    while True:
        count = num_params(build(width))
        if abs(count - budget) < best_gap:
            best, best_gap = width, abs(count - budget)
        if count > budget:  # parameter count grows with width: nothing wider can be closer
            return best
        width += multiple


def build_task(name: str, cfg: SweepConfig):
    """The task ``name`` sized for ``cfg``: every sequence fits the deepest evaluation."""
    if name == "maze":
        return make_task(name, max_depth=cfg.max_depth, height=cfg.maze_size, width=cfg.maze_size)
    return make_task(name, max_depth=cfg.max_depth)


def build_model(
    backbone: str, n_layers: int, task, cfg: SweepConfig, budget: int | None = None
) -> SequenceModel:
    """The model for (backbone, n_layers) on ``task`` at the width closest to ``budget``
    parameters (default: the sweep's first budget), initialised from cfg.seed."""
    kwargs = cfg.backbone_kwargs.get(backbone, {})

    def build(width: int) -> SequenceModel:
        return SequenceModel(
            backbone, n_layers, width, task.vocab_size, task.num_classes, task.seq_len, **kwargs
        )

    width = fit_width(build, cfg.param_budgets[0] if budget is None else budget)
    torch.manual_seed(cfg.seed)
    return build(width).to(cfg.device)


def task_seed(name: str) -> int:
    """A fixed number per task, so a task's data do not depend on which other tasks run."""
    return sorted(TASKS).index(name)


def training_batches(task, cfg: SweepConfig) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The training data: tokens and targets, int64 [B, T], for each step.

    A function of (task, cfg) alone, so every model trains on the same sequences in the same
    order. Depths are uniform in [1, train_max_depth].
    """
    rng = np.random.default_rng([cfg.seed, 0, task_seed(task.name)])
    for _ in range(cfg.steps[task.name]):
        batch = task.sample(rng, rng.integers(1, cfg.train_max_depth + 1, size=cfg.batch_size))
        yield batch["tokens"], batch["targets"]


def lr_at(step: int, peak: float, warmup_steps: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model: SequenceModel, task, cfg: SweepConfig, log: Callable[[str], None] = print
) -> list[float]:
    """AdamW on ``task``'s training batches, one step each; returns the loss of every step."""
    steps = cfg.steps[task.name]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses = []
    for step, (tokens, targets) in enumerate(training_batches(task, cfg)):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.lr, cfg.warmup_steps, steps)
        tokens = torch.from_numpy(tokens).to(cfg.device)  # (B, T)
        targets = torch.from_numpy(targets).to(cfg.device)  # (B, T)
        _, loss = model(tokens, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % max(1, steps // 4) == 0:
            log(f"step {step + 1:5d}/{steps}  loss {np.mean(losses[-50:]):.4f}")
    return losses


@torch.no_grad()
def evaluate(
    model: SequenceModel, task, cfg: SweepConfig, batch_size: int = 256
) -> dict[int, float]:
    """Final-answer accuracy (the prediction at the QUERY token), cfg.eval_samples sequences per depth.

    The sequences depend only on (task, depth, seed), so every model sees the same ones.
    """
    model.eval()
    accuracy = {}
    for depth in cfg.eval_depths:
        rng = np.random.default_rng([cfg.seed, 1, task_seed(task.name), depth])
        correct = 0
        for start in range(0, cfg.eval_samples, batch_size):
            n = min(batch_size, cfg.eval_samples - start)
            batch = task.sample(rng, np.full(n, depth))
            logits, _ = model(torch.from_numpy(batch["tokens"]).to(cfg.device))
            correct += (logits[:, -1].argmax(-1).cpu().numpy() == batch["targets"][:, -1]).sum()
        accuracy[depth] = int(correct) / cfg.eval_samples
    model.train()
    return accuracy


def chance_accuracy(task, cfg: SweepConfig) -> float:
    """Accuracy of always giving the most frequent final answer, measured on fresh sequences."""
    rng = np.random.default_rng([cfg.seed, 2, task_seed(task.name)])
    answers = task.sample(rng, rng.integers(1, cfg.max_depth + 1, size=4096))["targets"][:, -1]
    return float(np.bincount(answers).max() / len(answers))


def setup_torch(threads: int) -> None:
    torch.set_num_threads(threads)
    # The SSM's decays multiply into subnormal floats, which run ~100x slower on x86 CPUs.
    torch.set_flush_denormal(True)


def run_one(cfg: SweepConfig, task_name: str, budget: int, backbone: str, n_layers: int) -> dict:
    """Build, train and evaluate one model on one task; returns its row of results.json."""
    label = f"{task_name}: {backbone} x{n_layers}"
    if len(cfg.param_budgets) > 1:
        label += f" @{budget:,}"

    def log(line: str) -> None:
        print(f"{label:36s} {line}", flush=True)

    task = build_task(task_name, cfg)
    model = build_model(backbone, n_layers, task, cfg, budget)
    log(f"d_model={model.embed.embedding_dim}  params={num_params(model):,}")
    started = time.perf_counter()
    losses = train(model, task, cfg, log)
    train_seconds = time.perf_counter() - started
    accuracy = evaluate(model, task, cfg)
    log("accuracy by depth: " + "  ".join(f"{d}:{a:.2f}" for d, a in accuracy.items()))
    return {
        "task": task_name,
        "param_budget": budget,
        "backbone": backbone,
        "n_layers": n_layers,
        "d_model": model.embed.embedding_dim,
        "params": num_params(model),
        "train_seconds": round(train_seconds, 1),
        "final_train_loss": round(float(np.mean(losses[-50:])), 4),
        "accuracy": {str(d): a for d, a in accuracy.items()},
    }


def _worker_job(args: tuple) -> tuple[int, dict]:
    index, cfg, *job = args
    return index, run_one(cfg, *job)


def run_sweep(cfg: SweepConfig, out: Path) -> dict:
    """Run every (task, budget, model) of ``cfg``; write results.json after each, then table.md
    and the plot."""
    out.mkdir(parents=True, exist_ok=True)
    setup_torch(cfg.threads)
    jobs = [
        (task, budget, backbone, n_layers)
        for task in cfg.tasks
        for budget in cfg.param_budgets
        for backbone, n_layers in cfg.models
    ]
    results = {
        "config": {**dataclasses.asdict(cfg), "max_depth": cfg.max_depth},
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cpu_count": multiprocessing.cpu_count(),
        },
        "tasks": {},
        "runs": [],
    }
    for name in cfg.tasks:
        task = build_task(name, cfg)
        results["tasks"][name] = {
            "seq_len": task.seq_len,
            "num_classes": task.num_classes,
            "chance": chance_accuracy(task, cfg),
        }
    done: dict[int, dict] = {}
    started = time.perf_counter()

    def record(index: int, run: dict) -> None:
        done[index] = run
        results["runs"] = [done[i] for i in sorted(done)]  # always in (task, budget, model) order
        results["wall_seconds"] = round(time.perf_counter() - started, 1)
        write_json(out / "results.json", results)

    if cfg.workers == 1:
        for index, job in enumerate(jobs):
            record(index, run_one(cfg, *job))
    else:
        # Longest first (parameters x layers x sequence length x steps, SSMs ~2x), so no long
        # run starts last.
        def cost(index: int) -> float:
            task, budget, backbone, n_layers = jobs[index]
            return (
                budget
                * n_layers
                * results["tasks"][task]["seq_len"]
                * cfg.steps[task]
                * (2 if backbone == "mamba" else 1)
            )

        order = sorted(range(len(jobs)), key=cost, reverse=True)
        # spawn, not fork: a forked child inherits torch's thread pool state and can hang in it.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(cfg.workers, initializer=setup_torch, initargs=(cfg.threads,)) as pool:
            for index, run in pool.imap_unordered(_worker_job, [(i, cfg, *jobs[i]) for i in order]):
                record(index, run)
    (out / "table.md").write_text(markdown_table(results))
    plot(results, out / "accuracy_vs_depth.png")
    return results


def write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    tmp.replace(path)  # atomic: a reader never sees half a file


def config_with(preset: str, **overrides) -> SweepConfig:
    """A preset with ``overrides`` applied (None values keep the preset's)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid names: {', '.join(sorted(PRESETS))}")
    return dataclasses.replace(
        PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}
    )
