"""The self-describing training checkpoint: written atomically, read back, checked before a resume.

OUT/checkpoint.pt is one `torch.save`d dict:

    format         CHECKPOINT_FORMAT
    model          the model's state_dict
    optimizer      Optimizers.state_dict(): {"muon": ..., "adamw": ...}
    model_config   dataclasses.asdict(ModelConfig), vocabulary sizes from the data included;
                   a setting added since a checkpoint was written takes the value the models
                   of then had (MODEL_SETTINGS_ADDED: before `colour`, every model was monochrome)
    train_config   dataclasses.asdict(TrainConfig) of the run that wrote it
    action_names   list[str]: action id -> action string (schemas/actions.json)
    step, epoch    optimizer steps taken; the loader's epoch
    loader_state   one entry per process, by rank (see `process_entry`)
    tokenizer      only with --actions tokens: the tokenizer (tokens.Tokenizer.to_dict), token id
                   -> keys; the model predicts its token ids

It holds only tensors and plain data (dicts, lists, strings, numbers, None), and is read with
`torch.load(weights_only=True)`: a file whose pickle would build anything else (run code) is
refused before any of it runs. `load(path)` (also `ghframes.training.load`) gives the model.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings
from pathlib import Path
from typing import NamedTuple

import torch

from ghframes.errors import GhframesError

from .config import TrainConfig
from .lstm import State
from .model import ActionModel, ModelConfig

CHECKPOINT_FORMAT = "ghframes.training.checkpoint/1"

# Model settings added after the format, with the value every model had before: a checkpoint
# without one was trained that way (its dataclass default may since say otherwise).
MODEL_SETTINGS_ADDED = {"colour": False}


def process_entry(loader_state: dict, state: State | None, prev: torch.Tensor) -> dict:
    """What one process resumes from: its loader position, the LSTM state it carries across
    batches (None before the first batch) and each row's last position (long [B])."""
    return {
        "loader": loader_state,
        "state": None if state is None else (state[0].cpu(), state[1].cpu()),
        "prev_position": prev.cpu(),
    }


def restore_entry(entry: dict, device: torch.device) -> tuple[State | None, torch.Tensor]:
    """(carried LSTM state, last position of each row) of a `process_entry`, on `device`."""
    state = entry["state"]
    if state is not None:
        state = (state[0].to(device), state[1].to(device))
    return state, entry["prev_position"].to(device)


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    action_names: list[str],
    step: int,
    epoch: int,
    loader_state: list[dict],
    tokenizer: dict | None = None,
) -> None:
    """Write atomically: a temporary name, then rename."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "model_config": dataclasses.asdict(model_cfg),
        "train_config": dataclasses.asdict(train_cfg),
        "action_names": action_names,
        "step": step,
        "epoch": epoch,
        "loader_state": loader_state,
        **({"tokenizer": tokenizer} if tokenizer is not None else {}),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint at `path`; one clear error if it cannot be read, holds anything but tensors
    and plain data, or is not one of ours."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # a global, a class, or bytes that are no pickle
        raise GhframesError(
            f"{path}: refused: not a checkpoint of tensors and plain data ({_reason(err)})"
        ) from None
    except OSError as err:
        raise GhframesError(f"{path}: cannot read checkpoint ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - untrusted bytes: any failure is "not a checkpoint"
        raise GhframesError(
            f"{path}: not a ghframes training checkpoint (cannot be unpickled: "
            f"{type(err).__name__}: {_reason(err)})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise GhframesError(
            f"{path}: not a ghframes training checkpoint (format {CHECKPOINT_FORMAT})"
        )
    for key, kind in FIELDS.items():
        if not isinstance(ckpt.get(key), kind) or isinstance(ckpt.get(key), bool):
            raise GhframesError(
                f"{path}: damaged checkpoint: {key} is {type(ckpt.get(key)).__name__}, "
                f"expected {kind.__name__}"
            )
    for rank, entry in enumerate(ckpt["loader_state"]):
        state = entry.get("state", ()) if isinstance(entry, dict) else ()
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("loader"), dict)
            and isinstance(entry.get("prev_position"), torch.Tensor)
            and (state is None or _tensor_pair(state))
        ):
            raise GhframesError(f"{path}: damaged checkpoint: loader_state of rank {rank}")
    return ckpt


def _tensor_pair(value) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, torch.Tensor) for v in value)
    )


# What read_checkpoint requires of each field (the format above).
FIELDS = {
    "model": dict,
    "optimizer": dict,
    "model_config": dict,
    "train_config": dict,
    "action_names": list,
    "step": int,
    "epoch": int,
    "loader_state": list,
}


def _reason(err: Exception) -> str:
    """torch's paragraph saying why (its message is several paragraphs of advice), on one line."""
    paragraphs = [p for p in str(err).split("\n\n") if p.strip()]
    text = paragraphs[-2] if len(paragraphs) > 2 else (paragraphs or [repr(err)])[0]
    return " ".join(text.split())[:200]


class Loaded(NamedTuple):
    """A checkpoint read back for use: `ghframes.training.load(path)`."""

    model: ActionModel  # eval mode, the checkpoint's weights
    model_config: ModelConfig
    train_config: TrainConfig  # the run that wrote it
    action_names: list[str]  # action id -> action string (schemas/actions.json)
    step: int  # optimizer steps taken


def load(path: str | os.PathLike) -> Loaded:
    """The model of the checkpoint at `path`, its configs and action vocabulary. Loads only
    tensors and plain data (weights_only); anything else is refused with one error line."""
    path = Path(path)
    return loaded_from(read_checkpoint(path), path)


def loaded_from(ckpt: dict, path: Path) -> Loaded:
    """`load` of a checkpoint already read (`read_checkpoint`), so that its other fields (the
    tokenizer of --actions tokens) need no second read."""
    model_cfg = _config(ModelConfig, saved_model_config(ckpt), path)
    train_cfg = _config(TrainConfig, ckpt["train_config"], path)
    model = ActionModel(model_cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise GhframesError(
            f"{path}: weights do not fit the model config ({_reason(err)})"
        ) from None
    model.eval()
    return Loaded(model, model_cfg, train_cfg, [str(a) for a in ckpt["action_names"]], ckpt["step"])


def saved_model_config(ckpt: dict) -> dict:
    """The checkpoint's model settings, with those it predates at the value they had then."""
    return {**MODEL_SETTINGS_ADDED, **ckpt["model_config"]}


def _config(cls, saved: dict, path: Path):
    """A config dataclass from a checkpoint's plain dict (lists back to tuples; settings this
    version does not know are left out, ones it added take their defaults)."""
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in known}
    try:
        return cls(**values)
    except (GhframesError, TypeError) as err:
        raise GhframesError(f"{path}: {err}") from None


def resume_path(cfg: TrainConfig) -> Path | None:
    """The checkpoint `cfg.resume` names; None when there is none to resume from."""
    if not cfg.resume:
        return None
    if cfg.resume == "auto":
        path = Path(cfg.out) / "checkpoint.pt"
        return path if path.exists() else None
    path = Path(cfg.resume)
    if not path.exists():
        raise GhframesError(f"--resume {cfg.resume}: no such checkpoint")
    return path


def check_checkpoint(
    ckpt: dict,
    path: Path,
    model_cfg: ModelConfig,
    action_names: list[str],
    cfg: TrainConfig,
    world_size: int,
) -> None:
    """Refuse to resume from a checkpoint the run does not match."""
    check_actions(ckpt["action_names"], action_names, path, cfg.data)
    check_predicts(ckpt, path, cfg.actions)
    saved = saved_model_config(ckpt)
    mine = dataclasses.asdict(model_cfg)
    diff = [
        f"{k}={saved.get(k)!r} (checkpoint) vs {mine[k]!r} (this run)"
        for k in mine
        if _plain(saved.get(k)) != _plain(mine[k])
    ]
    if diff:
        raise GhframesError(f"{path}: checkpoint is of another model config: " + ", ".join(diff))
    saved_split = ckpt["train_config"].get("split_by", "session")  # older ones: by session
    if saved_split != cfg.split_by:
        raise GhframesError(
            f"{path}: checkpoint split its held-out data by {saved_split!r}, this run by "
            f"{cfg.split_by!r}: train and held-out sessions differ; resume with "
            f"--split-by {saved_split}"
        )
    if len(ckpt["loader_state"]) != world_size:
        raise GhframesError(
            f"{path}: checkpoint was written by {len(ckpt['loader_state'])} process(es), this "
            f"run has {world_size}; resume with the same number of processes"
        )
    check_schedule(ckpt, path, cfg)


def check_predicts(ckpt: dict, path: Path, actions: str) -> None:
    """Refuse a run that predicts other targets (--actions) than the checkpoint's model."""
    saved = ckpt["train_config"].get("actions", "keys")  # before --actions: keys
    if saved != actions:
        raise GhframesError(
            f"{path}: checkpoint predicts {saved} (--actions {saved}), this run {actions}: "
            f"resume with --actions {saved}"
        )


def check_actions(theirs: list[str], mine: list[str], path: Path, data: str) -> None:
    """Refuse data whose action ids mean other keys than the checkpoint's (`theirs`)."""
    if theirs == mine:
        return
    first = next(
        (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
        min(len(theirs), len(mine)),
    )
    mine_at = repr(mine[first]) if first < len(mine) else "(none)"
    theirs_at = repr(theirs[first]) if first < len(theirs) else "(none)"
    raise GhframesError(
        f"{path}: the action vocabulary of {data} ({len(mine)} actions) does not "
        f"match the checkpoint's ({len(theirs)} actions): first difference at id {first}: "
        f"{mine_at} in the data, {theirs_at} in the checkpoint"
    )


def check_schedule(ckpt: dict, path: Path, cfg: TrainConfig) -> None:
    """Refuse a --steps that would silently move a resumed run onto another learning-rate
    schedule: the cosine decay spans --steps, so the learning rate at the resumed step depends on
    it. With --reschedule (or a constant schedule, which --steps does not shape) it is allowed."""
    theirs = ckpt["train_config"].get("steps", cfg.steps)
    if theirs == cfg.steps or cfg.schedule == "constant" or cfg.reschedule:
        return
    raise GhframesError(
        f"{path}: checkpoint is at step {ckpt['step']} of a --steps {theirs} run, whose cosine "
        f"learning-rate schedule spans {theirs} steps; --steps {cfg.steps} would change the "
        f"learning rate from here on: resume with --steps {theirs} (--stop-at N to stop "
        f"earlier), or add --reschedule to continue on a schedule over {cfg.steps} steps"
    )


def _plain(value):
    """A tuple as a list: a config read back from a checkpoint may hold either."""
    return list(value) if isinstance(value, tuple | list) else value
