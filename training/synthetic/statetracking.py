"""The state-tracking sweep: every backbone on REPL traces, by reveal density and trace length.

``python -m ghframes.training.synthetic.statetracking --preset quick --out DIR`` (``make
statetracking``). Each setting is a REPL-trace task of the registry (repl.py) with a reveal
density and, for the partially observed variant, hidden steps. Every model is built at the width
closest to the parameter budget, trained with one recipe on traces of 1..train_max_len steps
(loss on the printed answers only), then scored on fresh traces of each evaluation length,
longer ones included: accuracy on the last reveal ("final") and on every reveal ("all"), and
for hidden steps the Bayes-optimal predictor's accuracy and cross-entropy on the same answers.

Each (setting, model) is trained once per seed (its initial weights, training and evaluation
traces); the tables and the plot show the mean over seeds and the range.

Outputs in DIR: results.json (every run, rewritten after each: a sweep started again into the
same DIR keeps them and runs the rest), table.md (report.py's accuracy tables, plus model
against optimum for the partially observed settings) and accuracy_vs_length.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import platform
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .__main__ import parse_ints, parse_models
from .experiment import SequenceModel, fit_width, lr_at, num_params, setup_torch, write_json
from .report import markdown_table, plot
from .tasks import IGNORE, TASKS, make_task

MODELS = (
    ("transformer", 2),
    ("mamba", 2),
    ("lstm", 1),
    ("residual_lstm", 2),
    ("deltanet", 2),
    ("deltanet_neg", 2),
)


@dataclass(frozen=True)
class StateTrackingConfig:
    """One sweep. Presets below; the command line overrides single fields."""

    # (label, task name in TASKS, task options): one training run per setting and model.
    settings: tuple[tuple[str, str, dict], ...] = (
        ("S3 dense", "repl_s3", {"reveal_prob": 1.0}),
        ("S3 sparse", "repl_s3", {"reveal_prob": 0.25}),
        ("S3 hidden", "repl_s3", {"reveal_prob": 0.5, "hidden_prob": 0.5}),
    )
    models: tuple[tuple[str, int], ...] = MODELS
    # Rotary positions: learned ones would cost 30k parameters at these lengths, and leave the
    # positions past the training lengths untrained.
    backbone_kwargs: dict[str, dict] = field(
        default_factory=lambda: {"transformer": {"rotary": True}, "mamba": {"d_state": 4}}
    )
    param_budget: int = 20_000
    train_max_len: int = 8  # training traces have 1..train_max_len steps, uniformly
    eval_lengths: tuple[int, ...] = (2, 4, 8, 16, 32)
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_samples: int = 128  # per length
    seeds: tuple[int, ...] = (0,)  # one run per seed; the tables give the mean and the range
    workers: int = 2
    threads: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.settings or not self.models:
            raise ValueError("statetracking: needs at least one setting and one model")
        for label, task, _ in self.settings:
            if task not in TASKS:
                raise ValueError(f"statetracking: setting {label!r}: unknown task {task!r}")
        for name in ("steps", "batch_size", "workers", "threads", "eval_samples", "train_max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"statetracking: {name} must be >= 1, got {getattr(self, name)}")
        if min(self.eval_lengths) < 1:
            raise ValueError(f"statetracking: eval_lengths must be >= 1, got {self.eval_lengths}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(
                f"statetracking: seeds must be distinct and non-empty, got {self.seeds}"
            )


PRESETS = {
    # 2 CPU cores, under 20 minutes (11 measured on a shared VM): 20k-parameter models, one
    # seed, S3 only (S5 is the cpu preset's).
    "quick": StateTrackingConfig(),
    # 2 CPU cores, about 50 minutes alone (98 core-minutes measured): S5 (dense, sparse,
    # partially observed) and the solvable controls A4 and Z5, two seeds, the quick preset's
    # models and recipe at 600 steps (DeltaNet with negative eigenvalues fits S5 sparse in ~500).
    "cpu": StateTrackingConfig(
        settings=(
            ("S5 dense", "repl_s5", {"reveal_prob": 1.0}),
            ("S5 sparse", "repl_s5", {"reveal_prob": 0.25}),
            ("S5 hidden", "repl_s5", {"reveal_prob": 0.5, "hidden_prob": 0.3, "print_count": 2}),
            ("A4 sparse", "repl_a4", {"reveal_prob": 0.25}),
            ("Z5 sparse", "repl_z5", {"reveal_prob": 0.25}),
        ),
        steps=600,
        seeds=(0, 1),
    ),
    # One GPU: both groups and the solvable controls, three densities, 5x the parameters and
    # ~15x the sequences. Not yet run: expect to tune lr and steps on first use.
    "full": StateTrackingConfig(
        settings=tuple(
            (f"{group} {name}", f"repl_{group.lower()}", {"reveal_prob": prob})
            for group in ("S3", "S5", "A4", "Z5")
            for name, prob in (("dense", 1.0), ("sparse", 0.1), ("end only", 0.0))
        )
        + (
            ("S3 hidden", "repl_s3", {"reveal_prob": 0.5, "hidden_prob": 0.5, "print_count": 1}),
            ("S5 hidden", "repl_s5", {"reveal_prob": 0.5, "hidden_prob": 0.3, "print_count": 2}),
        ),
        backbone_kwargs={"transformer": {"rotary": True}, "mamba": {"d_state": 16}},
        param_budget=100_000,
        train_max_len=32,
        eval_lengths=(4, 8, 16, 32, 64, 128, 256),
        steps=10_000,
        batch_size=64,
        lr=1e-3,
        warmup_steps=500,
        eval_samples=1_000,
        seeds=(0, 1, 2),
        workers=1,
        threads=8,
        device="cuda",
    ),
}


def build_task(cfg: StateTrackingConfig, task_name: str, options: dict):
    """The task sized so that every sequence fits the longest evaluation."""
    return make_task(task_name, max_depth=max(*cfg.eval_lengths, cfg.train_max_len), **options)


def build_model(
    cfg: StateTrackingConfig, backbone: str, n_layers: int, task, seed: int = 0
) -> SequenceModel:
    kwargs = cfg.backbone_kwargs.get(backbone, {})

    def build(width: int) -> SequenceModel:
        return SequenceModel(
            backbone, n_layers, width, task.vocab_size, task.num_classes, task.seq_len, **kwargs
        )

    width = fit_width(build, cfg.param_budget)
    torch.manual_seed(seed)
    return build(width).to(cfg.device)


def trimmed(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The batch cut after its last non-padding token (causal models: nothing before changes)."""
    used = int((batch["tokens"] != 0).sum(axis=1).max())  # padding (id 0) only at the end
    return {k: v[:, :used] if v.ndim > 1 else v for k, v in batch.items()}


def label_seed(label: str) -> int:
    return zlib.crc32(label.encode())


def train(model, task, label: str, cfg: StateTrackingConfig, seed: int, log) -> list[float]:
    """AdamW on traces of 1..train_max_len steps; the same traces for every model of a setting
    and seed."""
    rng = np.random.default_rng([seed, 0, label_seed(label)])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    losses = []
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        batch = trimmed(task.sample(rng, rng.integers(1, cfg.train_max_len + 1, cfg.batch_size)))
        tokens = torch.from_numpy(batch["tokens"]).to(cfg.device)  # (B, T)
        _, loss = model(tokens, torch.from_numpy(batch["targets"]).to(cfg.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % max(1, cfg.steps // 4) == 0:
            log(f"step {step + 1:5d}/{cfg.steps}  loss {np.mean(losses[-50:]):.4f}")
    return losses


@torch.no_grad()
def evaluate(
    model, task, label: str, cfg: StateTrackingConfig, seed: int = 0, batch_size: int = 64
) -> dict:
    """Scores by trace length on fresh traces (a function of setting, length and seed alone).

    final / all: accuracy on the last reveal / on every revealed value; loss: mean cross-entropy
    on every revealed value (nats). With hidden steps also optimum_final, optimum_all and
    optimum_loss: the Bayes-optimal predictor's on the same values.
    """
    model.eval()
    hidden = task.hidden_prob > 0
    scores = {}
    for length in cfg.eval_lengths:
        rng = np.random.default_rng([seed, 1, label_seed(label), length])
        sums = dict.fromkeys(
            ("final", "all", "loss", "optimum_final", "optimum_all", "optimum_loss"), 0.0
        )
        n_final = n_all = 0
        for start in range(0, cfg.eval_samples, batch_size):
            n = min(batch_size, cfg.eval_samples - start)
            batch = trimmed(task.sample(rng, np.full(n, length), optimum=hidden))
            logits, _ = model(torch.from_numpy(batch["tokens"]).to(cfg.device))
            logp = F.log_softmax(logits.double(), dim=-1).cpu().numpy()  # (B, T, C)
            answer = batch["targets"] != IGNORE  # (B, T)
            target = batch["targets"][answer]  # (A,)
            right = logp[answer].argmax(-1) == target
            final = batch["final"][answer]
            sums["all"] += right.sum()
            sums["final"] += right[final].sum()
            sums["loss"] -= logp[answer][np.arange(len(target)), target].sum()
            if hidden:
                opt = batch["optimum"][answer]  # (A, C)
                opt_right = opt.argmax(-1) == target
                sums["optimum_all"] += opt_right.sum()
                sums["optimum_final"] += opt_right[final].sum()
                sums["optimum_loss"] -= np.log(opt[np.arange(len(target)), target]).sum()
            n_final, n_all = n_final + final.sum(), n_all + len(target)
        keys = sums if hidden else ("final", "all", "loss")
        scores[length] = {
            k: round(float(sums[k]) / (n_final if k.endswith("final") else n_all), 4) for k in keys
        }
    model.train()
    return scores


def run_one(
    cfg: StateTrackingConfig, setting: int, backbone: str, n_layers: int, seed: int = 0
) -> dict:
    """Build, train and evaluate one model in one setting from one seed (its initial weights,
    training traces and evaluation traces); returns its row of results.json."""
    label, task_name, options = cfg.settings[setting]
    tag = f"{label}: {backbone} x{n_layers}" + (f" seed {seed}" if len(cfg.seeds) > 1 else "")

    def log(line: str) -> None:
        print(f"{tag:34s} {line}", flush=True)

    task = build_task(cfg, task_name, options)
    model = build_model(cfg, backbone, n_layers, task, seed)
    log(f"d_model={model.embed.embedding_dim}  params={num_params(model):,}")
    started = time.perf_counter()
    losses = train(model, task, label, cfg, seed, log)
    train_seconds = time.perf_counter() - started
    scores = evaluate(model, task, label, cfg, seed)
    log(
        "final-reveal accuracy by length: "
        + "  ".join(f"{n}:{s['final']:.2f}" for n, s in scores.items())
    )
    return {
        "task": label,
        "backbone": backbone,
        "n_layers": n_layers,
        "seed": seed,
        "d_model": model.embed.embedding_dim,
        "params": num_params(model),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - started - train_seconds, 1),
        "final_train_loss": round(float(np.mean(losses[-50:])), 4),
        "accuracy": {str(n): s["final"] for n, s in scores.items()},
        "scores": {str(n): s for n, s in scores.items()},
    }


def _worker_job(args: tuple) -> tuple[int, dict]:
    index, cfg, *job = args
    return index, run_one(cfg, *job)


def config_record(cfg: StateTrackingConfig) -> dict:
    """The sweep's config as results.json holds it."""
    return {
        **dataclasses.asdict(cfg),
        # the fields report.py reads, in the serial-depth sweep's names
        "train_max_depth": cfg.train_max_len,
        "steps": {label: cfg.steps for label, _, _ in cfg.settings},
        "param_budgets": [cfg.param_budget],
        "axis": "trace length",
    }


# How a sweep runs, not what it computes: a sweep may resume under other values of these.
RUNTIME_FIELDS = ("workers", "threads")


def earlier_runs(cfg: StateTrackingConfig, path: Path) -> list[dict]:
    """The runs already in ``path`` (a results.json) from this same sweep, to keep; none when
    there is no file. A file of another sweep, or not of a sweep at all, is an error rather
    than overwritten."""
    if not path.exists():
        return []
    hint = "use another --out or remove it"
    try:
        earlier = json.loads(path.read_text())
        config, runs = earlier["config"], earlier["runs"]
        keys = [(r["task"], r["backbone"], r["n_layers"], r["seed"]) for r in runs]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a statetracking results.json ({exc!r}); {hint}") from None
    ours = json.loads(json.dumps(config_record(cfg)))
    fields = [f.name for f in dataclasses.fields(cfg) if f.name not in RUNTIME_FIELDS]
    differ = [k for k in fields if config.get(k) != ours[k]]
    if differ:
        raise ValueError(
            f"{path} is from another sweep (it differs in {', '.join(differ)}); {hint}"
        )
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: a run appears twice; {hint}")
    return runs


def run_sweep(cfg: StateTrackingConfig, out: Path, log=print) -> dict:
    """Every (setting, model, seed) of ``cfg``; results.json after each run, then table.md and the
    plot, both of the mean over seeds. Runs already in ``out/results.json`` from the same sweep
    are kept, not run again: an interrupted sweep resumes (with other workers or threads)."""
    out.mkdir(parents=True, exist_ok=True)
    kept = {
        (r["task"], r["backbone"], r["n_layers"], r["seed"]): r
        for r in earlier_runs(cfg, out / "results.json")
    }
    # wall time of the sweep's earlier invocations, when it resumes
    earlier = json.loads((out / "results.json").read_text()) if kept else {}
    earlier_wall = float(earlier.get("wall_seconds", 0.0))
    setup_torch(cfg.threads)
    jobs = [
        (s, name, layers, seed)
        for s in range(len(cfg.settings))
        for name, layers in cfg.models
        for seed in cfg.seeds
    ]
    results = {
        "config": config_record(cfg),
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cpu_count": multiprocessing.cpu_count(),
        },
        "tasks": {},
        "runs": [],
    }
    for label, task_name, options in cfg.settings:
        task = make_task(task_name, max_depth=cfg.train_max_len, **options)
        results["tasks"][label] = {
            "task": task_name,
            **options,
            "seq_len": task.seq_len,  # the longest trained session, in tokens
            "num_classes": task.num_classes,
            "chance": task.chance(),
            # reading the first assignment and knowing the group, but not the steps
            "group_chance": task.group_chance(),
        }
    done: dict[int, dict] = {}
    for index, (setting, name, layers, seed) in enumerate(jobs):
        run = kept.get((cfg.settings[setting][0], name, layers, seed))
        if run is not None:
            done[index] = run
    if done:
        log(f"{out}/results.json: kept {len(done)} of {len(jobs)} runs, running the rest")
    todo = [i for i in range(len(jobs)) if i not in done]
    results["runs"] = [done[i] for i in sorted(done)]
    started = time.perf_counter()

    def record(index: int, run: dict) -> None:
        done[index] = run
        results["runs"] = [done[i] for i in sorted(done)]
        results["wall_seconds"] = round(earlier_wall + time.perf_counter() - started, 1)
        write_json(out / "results.json", results)

    if cfg.workers == 1:
        for index in todo:
            record(index, run_one(cfg, *jobs[index]))
    elif todo:
        # Slowest first, so that none starts last: on a CPU the Transformer and Mamba take
        # 5-8x the fused LSTMs' time per step, DeltaNet (its chunk loop) 4-5x.
        cost = {"transformer": 0, "mamba": 0, "deltanet": 1, "deltanet_neg": 1}
        order = sorted(todo, key=lambda i: cost.get(jobs[i][1], 2))
        ctx = multiprocessing.get_context("spawn")  # see experiment.run_sweep
        with ctx.Pool(cfg.workers, initializer=setup_torch, initargs=(cfg.threads,)) as pool:
            for index, run in pool.imap_unordered(_worker_job, [(i, cfg, *jobs[i]) for i in order]):
                record(index, run)
    results["wall_seconds"] = round(earlier_wall + time.perf_counter() - started, 1)
    write_json(out / "results.json", results)  # also when every run was kept: tasks, machine
    summary = {**results, "runs": mean_over_seeds(results["runs"])}
    (out / "table.md").write_text(markdown_table(summary) + "\n" + optimum_table(summary))
    plot(summary, out / "accuracy_vs_length.png")
    return results


def mean_over_seeds(runs: list[dict]) -> list[dict]:
    """One row per (setting, model), in order of first appearance: accuracy and scores are the
    means over the row's seeds; with several seeds, accuracy_range holds [min, max] by length."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["task"], run["backbone"], run["n_layers"]), []).append(run)
    rows = []
    for group in groups.values():
        row = {**group[0], "seeds": [r["seed"] for r in group]}
        row.pop("seed", None)
        row["accuracy"] = {
            n: float(np.mean([r["accuracy"][n] for r in group])) for n in row["accuracy"]
        }
        row["scores"] = {
            n: {k: float(np.mean([r["scores"][n][k] for r in group])) for k in s}
            for n, s in group[0]["scores"].items()
        }
        if len(group) > 1:
            row["accuracy_range"] = {
                n: [min(r["accuracy"][n] for r in group), max(r["accuracy"][n] for r in group)]
                for n in row["accuracy"]
            }
        rows.append(row)
    return rows


def optimum_table(results: dict) -> str:
    """Partially observed settings: model against the Bayes optimum, on every revealed value."""
    lines = []
    for label in results["tasks"]:
        runs = [r for r in results["runs"] if r["task"] == label]
        if not runs or "optimum_all" not in next(iter(runs[0]["scores"].values())):
            continue
        lengths = list(runs[0]["scores"])
        best = runs[0]["scores"]
        lines += [
            f"**{label}**: accuracy (%) on every revealed value, and cross-entropy (nats) pooled "
            "over lengths, against the Bayes-optimal predictor",
            "",
            "| model | " + " | ".join(lengths) + " | loss |",
            "|---|" + "---:|" * (len(lengths) + 1),
            "| *Bayes optimum* | "
            + " | ".join(f"{100 * best[n]['optimum_all']:.0f}" for n in lengths)
            + f" | {np.mean([best[n]['optimum_loss'] for n in lengths]):.3f} |",
        ]
        for r in runs:
            cells = " | ".join(f"{100 * r['scores'][n]['all']:.0f}" for n in lengths)
            loss = np.mean([r["scores"][n]["loss"] for n in lengths])
            lines.append(f"| {r['backbone']} x{r['n_layers']} | {cells} | {loss:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ghframes.training.synthetic.statetracking",
        description="REPL-trace state tracking (Siems et al.): accuracy by model, reveal density and trace length.",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    p.add_argument(
        "--out", type=Path, required=True, help="folder for results.json, table.md, the PNG"
    )
    p.add_argument("--models", type=parse_models, help="comma-separated NAME:LAYERS")
    p.add_argument("--eval-lengths", type=parse_ints)
    p.add_argument("--train-max-len", type=int)
    p.add_argument("--param-budget", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--eval-samples", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seeds", type=parse_ints, help="comma-separated seeds, one run each")
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument("--device")
    args = vars(p.parse_args(argv))
    preset, out = args.pop("preset"), args.pop("out")
    try:
        cfg = dataclasses.replace(
            PRESETS[preset], **{k: v for k, v in args.items() if v is not None}
        )
        earlier_runs(cfg, out / "results.json")  # before any work: a wrong --out says so now
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    run_sweep(cfg, out)
    print(
        f"wrote {out}/table.md, results.json, accuracy_vs_length.png in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
