"""Run configuration: a typed dataclass, and how defaults, config file, environment and flags combine.

Precedence, lowest first (STYLE.md §6):
    1. dataclass defaults (TrainConfig below; ModelConfig and its presets in model.py)
    2. the preset (`preset`, default "tiny"): a ModelConfig, plus PRESET_TRAINING below
    3. a config file (`--config run.toml` or .json): top-level `preset`, tables [train] and [model]
    4. the environment: GHFRAMES_TRAIN_<FIELD>, GHFRAMES_MODEL_<FIELD>, GHFRAMES_PRESET
    5. command-line flags: --<field> for the run, --model-<field> for the architecture
       (a true/false setting: --<field> / --no-<field>, --model-<field> / --no-model-<field>)
Invalid values raise GhframesError naming the field, the value and where it came from. `data`
has no default: a run names its frames (a DATA location, or `fake` for the synthetic sessions).

For example, a monochrome model (characters only) on data with colour: `--no-model-colour`,
GHFRAMES_MODEL_COLOUR=false, or `colour = false` under [model] of the config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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
from .tokens import ACTIONS, TOKEN_VOCAB

# Run settings that belong to a preset. tiny: a 10x AdamW rate for its embeddings and head
# (make demo, earlier split: held-out loss 2.41 vs 2.88 at 3e-4 after 240 steps). paper: batch 512 (per process:
# with N processes pass --batch-size 512/N) on a GPU; a short chunk keeps a chunk's graph in memory.
PRESET_TRAINING: dict[str, dict] = {
    "tiny": {"lr_adamw": 3e-3},
    "paper": {"batch_size": 512, "device": "cuda", "chunk_len": 4},
}

DEFAULT_PRESET = "tiny"
FROM_DATA = ("char_vocab", "action_vocab")  # model settings the trainer takes from the loader
BPTT_MODES = ("streaming", "plain")
AMP_MODES = ("auto", "bf16", "off")

# What TrainConfig requires of its fields; --help shows the same (train_help). Every number
# (float field) must also be finite: nan passes any comparison and would surface mid-run.
POSITIVE = (
    "seq_len", "batch_size", "chunk_len", "steps", "log_every", "eval_batches", "token_vocab",
)  # fmt: skip
NON_NEGATIVE = (
    "stop_at", "warmup_steps", "eval_every", "checkpoint_every", "threads", "grad_clip",
    "weight_decay", "muon_weight_decay",
)  # fmt: skip
ABOVE_ZERO = ("lr_muon", "lr_adamw")  # numbers > 0
IN_RANGE = {"min_lr_ratio": "[0, 1]", "beta1": "[0, 1)", "beta2": "[0, 1)"}
CHOICES = {
    "mode": LOADER_MODES,
    "split_by": SPLIT_BY,
    "bptt": BPTT_MODES,
    "amp": AMP_MODES,
    "schedule": SCHEDULES,
    "actions": ACTIONS,
}


def _setting(default, help: str, valid: str = ""):
    """A TrainConfig field with its --help text: the meaning, and the valid values where neither
    its type nor POSITIVE, NON_NEGATIVE or CHOICES says them."""
    return dataclasses.field(default=default, metadata={"help": help, "valid": valid})


NO_DATA = (
    "no training data: pass --data DATA (rendered frames: a path or an s3:// URI), or --data "
    "fake for the built-in synthetic sessions (or GHFRAMES_TRAIN_DATA, or data = ... under "
    "[train] of --config)"
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `data` is required; `data="fake"` trains on the built-in synthetic
    sessions (tests, development)."""

    data: str = dataclasses.field(
        metadata={
            "help": "the rendered frames to train on, or fake: the built-in synthetic sessions "
            "(tests, development)",
            "valid": "a DATA path, a pyarrow.fs URI (s3://...), or fake",
        }
    )
    out: str = _setting(
        "runs/train",
        "directory for checkpoint.pt, metrics.jsonl, loss.png and tb/ (created if missing)",
        "a directory path",
    )
    mode: str = _setting(
        "stream",
        "loader mode: stream carries each lane's LSTM state from batch to batch, window starts "
        "every sequence from the initial state",
    )
    split_by: str = _setting(
        "session",
        "what the held-out split holds out whole: sessions, or repositories (repo)",
    )
    actions: str = _setting(
        "keys",
        "what the model predicts: keys (one action per frame), or tokens: typed-text tokens "
        "(FBAM_TOK-style: each key, arrow-key and space runs up to 31, frequent words) of a "
        "tokenizer trained on the train split's key streams and kept in the checkpoint; a token "
        "can span several frames, and the loss counts only the steps where one starts",
    )
    token_vocab: int = _setting(
        TOKEN_VOCAB,
        "most tokens with --actions tokens, single keys and runs included (fewer when the data "
        "holds fewer frequent words)",
    )
    seq_len: int = _setting(64, "timesteps per training sequence")
    batch_size: int = _setting(8, "sequences per step, per process")
    bptt: str = _setting(
        "streaming",
        "backpropagation through time: streaming (autograd memory flat in --seq-len) or plain "
        "(the whole graph at once; the reference)",
    )
    chunk_len: int = _setting(16, "timesteps per streaming BPTT chunk")
    steps: int = _setting(
        300,
        "total optimizer steps; the learning-rate schedule spans them, so a --resume keeps the "
        "checkpoint's --steps (another number is refused unless --reschedule, or --schedule "
        "constant)",
    )
    stop_at: int = _setting(
        0, "stop after this step with a checkpoint, as if interrupted (0: run to --steps)"
    )
    warmup_steps: int = _setting(20, "steps of linear learning-rate warmup")
    schedule: str = _setting(
        "cosine", "learning rate after warmup: cosine decay to --min-lr-ratio, or constant"
    )
    min_lr_ratio: float = _setting(
        0.1, "fraction of the peak learning rate the cosine schedule ends at", "a number in [0, 1]"
    )
    lr_muon: float = _setting(
        3e-3, "peak learning rate of Muon (the hidden weight matrices)", "a number > 0"
    )
    lr_adamw: float = _setting(
        3e-4,
        "peak learning rate of AdamW (embeddings, positions, action head, norms, biases, "
        "initial state)",
        "a number > 0",
    )
    beta1: float = _setting(0.9, "AdamW's decay of its first moment (beta1)", "a number in [0, 1)")
    beta2: float = _setting(
        0.95, "AdamW's decay of its second moment (beta2)", "a number in [0, 1)"
    )
    weight_decay: float = _setting(
        0.01, "AdamW's weight decay (embeddings and the action head's weight)"
    )
    muon_weight_decay: float = _setting(0.01, "Muon's weight decay")
    grad_clip: float = _setting(
        1.0, "largest global gradient norm; larger gradients are scaled down (0: no clipping)"
    )
    device: str = _setting(
        "cpu",
        "where to train; under torchrun each process takes cuda:LOCAL_RANK",
        "cpu, cuda or cuda:N",
    )
    amp: str = _setting("auto", "mixed precision: auto (bf16 on cuda, off on cpu), bf16 or off")
    threads: int = _setting(0, "torch CPU threads per process (0: torch's default)")
    seed: int = _setting(0, "seed of the initial weights and of the data order")
    log_every: int = _setting(10, "steps per training metrics record")
    eval_every: int = _setting(
        100,
        "steps between held-out evaluations, the first before any step "
        "(0: only after the last step)",
    )
    eval_batches: int = _setting(4, "held-out batches per evaluation (the same ones every time)")
    checkpoint_every: int = _setting(
        100, "steps between checkpoints (0: none but the last; the last step always writes one)"
    )
    resume: str = _setting(
        "",
        "checkpoint to continue from, on its learning-rate schedule: with the --steps it was "
        "started with (--stop-at stops earlier; --reschedule to change --steps)",
        "a checkpoint path, auto (OUT/checkpoint.pt if it exists), or empty (start afresh)",
    )
    reschedule: bool = _setting(
        False,
        "with --resume and a --steps other than the checkpoint's: continue on the cosine "
        "schedule over the new --steps, taken up at the step resumed from (the learning rate "
        "jumps to that schedule's value there)",
    )
    progress: bool = _setting(True, "show a progress bar on stderr (rank 0)")
    tensorboard: bool = _setting(
        False, "also write TensorBoard events to OUT/tb (needs the tensorboard package)"
    )
    plot: bool = _setting(True, "draw OUT/loss.png from the metrics at the end")

    def __post_init__(self) -> None:
        for name, typ in _fields(TrainConfig).items():
            value = getattr(self, name)
            if typ is float and not (isinstance(value, int | float) and math.isfinite(value)):
                hint = " (0: no clipping)" if name == "grad_clip" else ""
                raise GhframesError(
                    f"train config: {name} must be a finite number{hint}, got {value!r}"
                )
        for name in POSITIVE:
            if getattr(self, name) < 1:
                raise GhframesError(f"train config: {name} must be >= 1, got {getattr(self, name)}")
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise GhframesError(f"train config: {name} must be >= 0, got {getattr(self, name)}")
        for name, valid in CHOICES.items():
            if getattr(self, name) not in valid:
                raise GhframesError(
                    f"train config: unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}"
                )
        for name in ABOVE_ZERO:
            if getattr(self, name) <= 0:
                raise GhframesError(f"train config: {name} must be > 0, got {getattr(self, name)}")
        for name, interval in IN_RANGE.items():
            value = getattr(self, name)
            if not (0 <= value < 1 or interval.endswith("]") and value == 1):
                raise GhframesError(f"train config: {name} must lie in {interval}, got {value}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise GhframesError(
                f"train config: unknown device {self.device!r}; valid: cpu, cuda, cuda:N"
            )
        if not self.data:
            raise GhframesError(f"train config: {NO_DATA}")


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


# --help of each --model-* flag: (meaning, valid values). ModelConfig's fields are in model.py.
MODEL_HELP: dict[str, tuple[str, str]] = {
    "rows": ("frame height in cells; must match the data", "an integer >= 1"),
    "cols": ("frame width in cells; must match the data", "an integer >= 1"),
    "merge_dims": (
        "width after each 2x2 patch merge of the frame-head (cells -> ...)",
        "comma-separated integers >= 1; rows and cols must halve once per merge and stage",
    ),
    "stage_blocks": (
        "transformer blocks per stage, with a 2x2 average pool between stages",
        "comma-separated integers >= 0",
    ),
    "heads": (
        "attention heads per transformer block",
        "an integer >= 1 dividing the last merge width",
    ),
    "mlp_ratio": ("transformer MLP width over the block width", "an integer >= 1"),
    "d_model": ("width of the frame vector and of the LSTM", "an integer >= 1"),
    "lstm_layers": ("residual LSTM layers", "an integer >= 1"),
    "fovea": (
        "cells read at full resolution at the cursor: it and the FOVEA-1 before it (0: none)",
        "an integer >= 0",
    ),
    "fovea_dim": ("embedding width of a fovea cell", "an integer >= 0"),
    "colour": (
        "embed each cell's fg, bg and attributes beside its character (the colour planes of "
        "frames schema 2.0); --no-model-colour: characters only, the same data",
        "",
    ),
}

EXAMPLES = """\
examples:
  %(prog)s --data DATA --out runs/x --steps 2000 --eval-every 200
  %(prog)s --config run.toml --preset paper --device cuda --model-d-model 512

Precedence: defaults < --preset < --config file < GHFRAMES_* environment < flags. Each --NAME
is also GHFRAMES_TRAIN_NAME in the environment and NAME = value under [train] of a config file
(--model-NAME: GHFRAMES_MODEL_NAME, [model]), with _ for -: --seq-len 32 is
GHFRAMES_TRAIN_SEQ_LEN=32 and seq_len = 32.
"""


def train_help(name: str) -> str:
    """--help of the flag of TrainConfig field `name`: meaning, valid values, default(s)."""
    field = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    typ = _fields(TrainConfig)[name]
    if typ is bool:
        valid = ""  # argparse shows --NAME and --no-NAME
    elif name in CHOICES:
        valid = "one of " + ", ".join(CHOICES[name])
    elif name in POSITIVE or name in NON_NEGATIVE:
        valid = f"{_type_name(typ)} >= {int(name in POSITIVE)}"
    else:
        valid = field.metadata["valid"] or _type_name(typ)
    if field.default is dataclasses.MISSING:
        default = "required, no default (also GHFRAMES_TRAIN_" + name.upper() + ")"
    else:
        default = _defaults({p: s.get(name, field.default) for p, s in PRESET_TRAINING.items()})
    return "; ".join(filter(None, (field.metadata["help"], valid, default)))


def model_help(name: str) -> str:
    """--help of --model-<name>: meaning, valid values, default(s)."""
    meaning, valid = MODEL_HELP[name]
    by_preset = {p: getattr(c, name) for p, c in PRESETS.items()}
    return "; ".join(filter(None, (meaning, valid, _defaults(by_preset))))


def _defaults(by_preset: dict) -> str:
    """The default under the default preset, then the value of each preset that differs."""
    default = by_preset[DEFAULT_PRESET]
    others = [
        f"preset {p}: {_shown(v)}"
        for p, v in sorted(by_preset.items())
        if _shown(v) != _shown(default)
    ]
    return f"default {_shown(default)}" + (f" ({', '.join(others)})" if others else "")


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "empty" if value == "" else str(value)


def _flag(name: str) -> str:
    return name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    """Flags for every TrainConfig field (--field) and ModelConfig field (--model-field).

    Every flag defaults to None ("not given"), so that only flags actually passed override the
    file and the environment; the defaults their help shows are the dataclasses' and presets'.
    """
    parser = argparse.ArgumentParser(
        prog="python -m ghframes.training.train",
        description="Train the recurrence-complete action model (frame-head + residual LSTM).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings from a file: top-level preset = NAME, tables [train] and [model] of the "
        "settings below; a TOML file, or JSON when it ends in .json; default none",
    )
    parser.add_argument(
        "--preset",
        help="model preset, with its run settings; "
        f"one of {', '.join(sorted(PRESETS))}; default {DEFAULT_PRESET} (or the config file's, "
        "or GHFRAMES_PRESET)",
    )
    for name, typ in _fields(TrainConfig).items():
        if typ is bool:
            parser.add_argument(
                "--" + _flag(name),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=train_help(name),
            )
        else:
            parser.add_argument(
                "--" + _flag(name),
                dest=name,
                default=None,
                metavar=name.upper(),
                help=train_help(name),
            )
    group = parser.add_argument_group("model (architecture; defaults from the preset)")
    for name, typ in _fields(ModelConfig).items():
        if name in FROM_DATA:
            continue
        kind = {"action": argparse.BooleanOptionalAction} if typ is bool else {"metavar": "V"}
        group.add_argument(
            "--model-" + _flag(name),
            dest="model_" + name,
            default=None,
            help=model_help(name),
            **kind,
        )
    return parser


def resolve(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[TrainConfig, ModelConfig, str]:
    """(train config, model config, preset name) from parsed flags and the environment."""
    doc = read_config_file(args.config) if args.config else {}
    preset = doc.get("preset", DEFAULT_PRESET)
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
            train[name] = coerce(TrainConfig, name, value, "--" + _flag(name))
    for name in _fields(ModelConfig):
        value = getattr(args, "model_" + name, None)
        if value is not None:
            model[name] = coerce(ModelConfig, name, value, "--model-" + _flag(name))
    if "data" not in train:  # not a dataclass default: a run says what it trains on
        raise GhframesError(NO_DATA)
    return TrainConfig(**train), dataclasses.replace(PRESETS[preset], **model), preset
