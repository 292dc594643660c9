"""Run configuration: a typed dataclass, and how defaults, config file, environment and flags combine.

Precedence, lowest first (STYLE.md §6):
    1. dataclass defaults (TrainConfig below; ModelConfig and its presets in model.py)
    2. the preset (`preset`, default "tiny"): a ModelConfig, plus PRESET_TRAINING below
    3. a config file (`--config run.toml` or .json): top-level `preset`, tables [train] and [model]
    4. the environment: GHFRAMES_TRAIN_<FIELD>, GHFRAMES_MODEL_<FIELD>, GHFRAMES_PRESET
    5. command-line flags: --<field> for the run, --model-<field> for the architecture
Invalid values raise GhframesError naming the field, the value and where it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ghframes.errors import GhframesError

from .loader import MODES as LOADER_MODES
from .loader import SPLIT_BY
from .model import PRESETS, ModelConfig
from .optim import SCHEDULES

# Run settings that belong to a preset. tiny: a 10x AdamW rate for its embeddings and head
# (make demo, earlier split: held-out loss 2.41 vs 2.88 at 3e-4 after 240 steps). paper: batch 512 (per process:
# with N processes pass --batch-size 512/N) on a GPU; a short chunk keeps a chunk's graph in memory.
PRESET_TRAINING: dict[str, dict] = {
    "tiny": {"lr_adamw": 3e-3},
    "paper": {"batch_size": 512, "device": "cuda", "chunk_len": 4},
}

FROM_DATA = ("char_vocab", "action_vocab")  # model settings the trainer takes from the loader
BPTT_MODES = ("streaming", "plain")
AMP_MODES = ("auto", "bf16", "off")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `data="fake"` trains on the built-in synthetic sessions (tests, dev)."""

    data: str = "fake"  # DATA (path or URI with rendered frames), or "fake"
    out: str = "runs/train"  # checkpoint, metrics.jsonl, loss.png go here
    mode: str = "stream"  # loader mode: stream (state carried across batches) | window
    split_by: str = "session"  # held out: sessions | whole repositories (repo); train and eval
    seq_len: int = 64  # timesteps per training sequence
    batch_size: int = 8  # sequences per step per process
    bptt: str = "streaming"  # streaming (flat memory) | plain (whole graph, reference)
    chunk_len: int = 16  # streaming BPTT chunk, timesteps
    steps: int = 300  # total optimizer steps (the schedule spans these)
    stop_at: int = 0  # stop after this step with a checkpoint, as if interrupted (0: run to steps)
    warmup_steps: int = 20
    schedule: str = "cosine"  # cosine | constant, after warmup
    min_lr_ratio: float = 0.1  # cosine ends at this fraction of the peak learning rate
    lr_muon: float = 3e-3
    lr_adamw: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.01
    muon_weight_decay: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm (0: no clipping)
    device: str = "cpu"  # cpu | cuda (cuda:LOCAL_RANK under torchrun)
    amp: str = "auto"  # auto (bf16 on cuda, off on cpu) | bf16 | off
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    seed: int = 0
    log_every: int = 10  # steps per metrics record
    eval_every: int = 100  # steps between held-out evaluations (0: only at the end)
    eval_batches: int = 4
    checkpoint_every: int = 100  # steps between checkpoints (the last step always writes one)
    resume: str = ""  # checkpoint to continue from; "auto": OUT/checkpoint.pt if present
    progress: bool = True  # progress bar on stderr (rank 0)
    tensorboard: bool = False  # also write TensorBoard events to OUT/tb (needs `tensorboard`)
    plot: bool = True  # draw OUT/loss.png from the metrics

    def __post_init__(self) -> None:
        positive = ("seq_len", "batch_size", "chunk_len", "steps", "log_every", "eval_batches")
        for name in positive:
            if getattr(self, name) < 1:
                raise GhframesError(f"train config: {name} must be >= 1, got {getattr(self, name)}")
        nonneg = (
            "stop_at",
            "warmup_steps",
            "eval_every",
            "checkpoint_every",
            "threads",
            "grad_clip",
        )
        for name in nonneg:
            if getattr(self, name) < 0:
                raise GhframesError(f"train config: {name} must be >= 0, got {getattr(self, name)}")
        for name, valid in (
            ("mode", LOADER_MODES),
            ("split_by", SPLIT_BY),
            ("bptt", BPTT_MODES),
            ("amp", AMP_MODES),
            ("schedule", SCHEDULES),
        ):
            if getattr(self, name) not in valid:
                raise GhframesError(
                    f"train config: unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}"
                )
        for name in ("lr_muon", "lr_adamw"):
            if getattr(self, name) <= 0:
                raise GhframesError(f"train config: {name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise GhframesError(
                f"train config: min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}"
            )
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise GhframesError(
                f"train config: unknown device {self.device!r}; valid: cpu, cuda, cuda:N"
            )


# -- parsing ------------------------------------------------------------------------------------


def _fields(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def coerce(cls, name: str, value, where: str):
    """`value` (from a file, the environment or a flag) as the type of field `name` of `cls`."""
    kind = {TrainConfig: "train", ModelConfig: "model"}[cls]
    types = _fields(cls)
    if name not in types:
        raise GhframesError(
            f"{where}: unknown {kind} setting {name!r}; valid: {', '.join(sorted(types))}"
        )
    if cls is ModelConfig and name in FROM_DATA:
        raise GhframesError(
            f"{where}: model setting {name} comes from the data (the loader); it cannot be set"
        )
    typ = types[name]
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return text in ("1", "true", "yes", "on")
        if typing.get_origin(typ) is tuple:
            item = typing.get_args(typ)[0]
            items = (
                value
                if isinstance(value, list | tuple)
                else [v for v in str(value).split(",") if v.strip()]
            )
            return tuple(item(v) for v in items)
        if typ is int and isinstance(value, float) or typ is not str and isinstance(value, bool):
            raise ValueError(value)
        return typ(value)
    except (TypeError, ValueError):
        raise GhframesError(
            f"{where}: {kind} setting {name} must be {_type_name(typ)}, got {value!r}"
        ) from None


def _type_name(typ) -> str:
    if typing.get_origin(typ) is tuple:
        return f"a comma-separated list of {typing.get_args(typ)[0].__name__}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[typ]


def read_config_file(path: str) -> dict:
    """{"preset": str?, "train": {...}, "model": {...}} from a TOML or JSON file."""
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as err:
        raise GhframesError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        doc = json.loads(text) if file.suffix == ".json" else tomllib.loads(text.decode())
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise GhframesError(
            f"{path}: not a valid {'JSON' if file.suffix == '.json' else 'TOML'} config: {err}"
        ) from None
    unknown = set(doc) - {"preset", "train", "model"}
    if unknown:
        raise GhframesError(
            f"{path}: unknown config section(s) {', '.join(sorted(unknown))}; valid: preset, train, model"
        )
    return doc


def build_parser() -> argparse.ArgumentParser:
    """Flags for every TrainConfig field (--field) and ModelConfig field (--model-field).

    Every flag defaults to None ("not given"), so that only flags actually passed override the
    file and the environment.
    """
    parser = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train the recurrence-complete action model (frame-head + residual LSTM).",
        epilog="Precedence: defaults < --preset < --config file < GHFRAMES_* environment < flags.",
    )
    parser.add_argument("--config", help="TOML or JSON file: preset = ..., [train], [model]")
    parser.add_argument(
        "--preset", help=f"model preset: {', '.join(sorted(PRESETS))} (default tiny)"
    )
    train_defaults = TrainConfig()
    for name, typ in _fields(TrainConfig).items():
        flag = "--" + name.replace("_", "-")
        if typ is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"(default {getattr(train_defaults, name)})",
            )
        else:
            parser.add_argument(
                flag,
                dest=name,
                default=None,
                metavar=name.upper(),
                help=f"(default {getattr(train_defaults, name)!r})",
            )
    group = parser.add_argument_group("model (architecture; defaults from the preset)")
    for name in _fields(ModelConfig):
        if name in FROM_DATA:
            continue
        group.add_argument(
            "--model-" + name.replace("_", "-"), dest="model_" + name, default=None, metavar="V"
        )
    return parser


def resolve(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[TrainConfig, ModelConfig, str]:
    """(train config, model config, preset name) from parsed flags and the environment."""
    doc = read_config_file(args.config) if args.config else {}
    preset = doc.get("preset", "tiny")
    preset = env.get("GHFRAMES_PRESET", preset)
    preset = args.preset or preset
    if preset not in PRESETS:
        raise GhframesError(
            f"unknown model preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}"
        )
    train: dict = dict(PRESET_TRAINING[preset])
    model: dict = {}
    for section, cls, into in (("train", TrainConfig, train), ("model", ModelConfig, model)):
        for name, value in (doc.get(section) or {}).items():
            into[name] = coerce(cls, name, value, f"{args.config} [{section}]")
    for key, value in env.items():
        for prefix, cls, into in (
            ("GHFRAMES_TRAIN_", TrainConfig, train),
            ("GHFRAMES_MODEL_", ModelConfig, model),
        ):
            if key.startswith(prefix):
                name = key[len(prefix) :].lower()
                into[name] = coerce(cls, name, value, f"environment {key}")
    for name in _fields(TrainConfig):
        value = getattr(args, name)
        if value is not None:
            train[name] = coerce(TrainConfig, name, value, "--" + name.replace("_", "-"))
    for name in _fields(ModelConfig):
        value = getattr(args, "model_" + name, None)
        if value is not None:
            model[name] = coerce(ModelConfig, name, value, "--model-" + name.replace("_", "-"))
    return TrainConfig(**train), dataclasses.replace(PRESETS[preset], **model), preset
