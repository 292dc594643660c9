"""The checkpoint: tensors and plain data only, read with weights_only; a file that would run
code, or is no checkpoint at all, is refused with one line; `ghframes.training.load`; what the
model saw (colour or characters only) recorded and read back; a resume keeps its --steps."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from test_train import TINY, quiet, refuse, run_main, small_run

import ghframes.training
import ghframes.training.train as train_module
from ghframes.errors import GhframesError
from ghframes.training.checkpoint import CHECKPOINT_FORMAT, read_checkpoint
from ghframes.training.config import build_parser, resolve
from ghframes.training.fake_batches import FakeBatches
from ghframes.training.model import ModelConfig, colour_planes
from ghframes.training.train import train

REFUSED = "refused: not a checkpoint of tensors and plain data ("


class RunsCode:
    """Unpickled, it runs `touch MARKER`: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile(path, marker, legacy: bool) -> bytes:
    """A checkpoint whose `format` field would run code when unpickled (torch.save's zip, or a
    plain pickle as torch.load also reads), written to `path`; returns its bytes."""
    payload = {"format": RunsCode(marker), "step": 1}
    if legacy:
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    return path.read_bytes()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "pickle"])
@pytest.mark.parametrize("resume", ["path", "auto"])
def test_a_checkpoint_that_would_run_code_is_refused_before_it_runs(
    tmp_path, capsys, resume, legacy
):
    marker = tmp_path / "code-ran"
    out = tmp_path / "out"
    out.mkdir()
    path = out / "checkpoint.pt" if resume == "auto" else tmp_path / "given.pt"
    written = hostile(path, marker, legacy)
    err = refuse(out, capsys, "--resume", "auto" if resume == "auto" else str(path))
    assert err.startswith(f"train: error: {path}: {REFUSED}"), err
    assert not marker.exists()
    assert path.read_bytes() == written  # nothing already there is lost
    with pytest.raises(GhframesError, match=REFUSED.replace("(", r"\(")):
        ghframes.training.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(7, 250)) * 3, REFUSED),  # random bytes
        (b"model = 'not a checkpoint'\n", REFUSED),
        (b"hello world\n", "not a ghframes training checkpoint (cannot be unpickled: KeyError"),
        (b"", "not a ghframes training checkpoint (cannot be unpickled: EOFError"),
        (b"PK\x03\x04" + b"\0" * 60, "not a ghframes training checkpoint (cannot be unpickled"),
    ],
    ids=["random", "text", "other-text", "empty", "truncated-zip"],
)
def test_bytes_that_are_no_checkpoint_are_one_clear_line(tmp_path, capsys, content, message):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    err = refuse(tmp_path, capsys, "--resume", "auto")
    assert err.startswith(f"train: error: {path}: {message}"), err


def test_a_checkpoint_with_damaged_fields_is_one_clear_line(tmp_path, capsys):
    assert run_main(tmp_path) == 0
    capsys.readouterr()
    (tmp_path / "metrics.jsonl").unlink()
    ckpt = read_checkpoint(tmp_path / "checkpoint.pt")
    torch.save({**ckpt, "step": "two"}, tmp_path / "checkpoint.pt")
    assert refuse(tmp_path, capsys, "--resume", "auto") == (
        f"train: error: {tmp_path / 'checkpoint.pt'}: damaged checkpoint: step is str, expected int"
    )
    torch.save({**ckpt, "loader_state": [{"loader": {}}]}, tmp_path / "checkpoint.pt")
    assert refuse(tmp_path, capsys, "--resume", "auto") == (
        f"train: error: {tmp_path / 'checkpoint.pt'}: damaged checkpoint: loader_state of rank 0"
    )


def test_the_checkpoint_holds_only_tensors_and_plain_data(tmp_path):
    train(small_run(tmp_path), TINY, env={}, log=quiet)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # would raise otherwise
    assert ckpt["format"] == CHECKPOINT_FORMAT

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool | torch.Tensor)

    assert plain(ckpt)


def test_load_gives_the_model_its_configs_and_actions(tmp_path):
    cfg = small_run(tmp_path)
    result = train(cfg, TINY, env={}, log=quiet)
    loaded = ghframes.training.load(tmp_path / "checkpoint.pt")
    model, model_config, train_config, action_names, step = loaded
    assert not model.training
    assert isinstance(model_config, ModelConfig) and model_config == result.model.cfg
    assert train_config == cfg and step == 2
    assert action_names == list(FakeBatches.action_names)
    for (name, a), b in zip(
        result.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    batch = next(iter(FakeBatches(1, 4)))
    with torch.no_grad():
        inputs = (batch["frames"], batch["cursor"], batch["reset"], None)
        logits, _ = model.unroll(*inputs, **colour_planes(batch))
    assert logits.shape == (1, 4, len(action_names))
    with pytest.raises(GhframesError, match="cannot read checkpoint"):
        ghframes.training.load(tmp_path / "nope.pt")


def test_resume_at_the_end_of_an_epoch_starts_the_next(tmp_path, monkeypatch):
    """Three steps are one epoch: resumed there, the run continues with the second epoch, as
    six steps straight do; `--steps 3` then `--steps 6 --resume auto` trains six."""

    def three_per_epoch(cfg, split, rank, world_size, colour=True):
        return FakeBatches(
            cfg.batch_size, cfg.seq_len, cfg.mode, cfg.seed, split, batches_per_epoch=3
        )

    monkeypatch.setattr(train_module, "make_loader", three_per_epoch)
    straight = train(small_run(tmp_path / "a", steps=6), TINY, env={}, log=quiet)
    train(small_run(tmp_path / "b", steps=6, stop_at=3), TINY, env={}, log=quiet)
    saved = read_checkpoint(tmp_path / "b" / "checkpoint.pt")["loader_state"][0]["loader"]
    assert saved == {"epoch": 0, "batch": 3}
    resumed = train(small_run(tmp_path / "b", steps=6, resume="auto"), TINY, env={}, log=quiet)
    assert resumed.step == 6 and resumed.last["epoch"] == 1
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    train(small_run(tmp_path / "c", steps=3), TINY, env={}, log=quiet)
    longer = small_run(tmp_path / "c", steps=6, resume="auto", reschedule=True)
    again = train(longer, TINY, env={}, log=quiet)
    assert again.step == 6 and again.last["epoch"] == 1


def test_a_trainer_error_line_is_printed_escaped(tmp_path, capsys):
    """The trainer's one error line carries paths and names from data: shown, never raw."""
    from ghframes.training.train import main

    afile = tmp_path / "run\x1b]0;pwned\x07"
    afile.write_text("kept")
    assert main(["--data", "fake", "--out", str(afile), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert err.strip().endswith("run^[]0;pwned^G: exists and is not a directory")


def test_with_and_without_colour_on_the_same_data(tmp_path):
    """The comparison the README reports, one flag apart on the same batches: each checkpoint
    records whether its model saw colour, and loads back as that model."""
    colour = train(small_run(tmp_path / "colour"), TINY, env={}, log=quiet)
    _, mono_cfg, _ = resolve(build_parser().parse_args(["--data", "fake", "--no-model-colour"]), {})
    mono = train(small_run(tmp_path / "mono"), mono_cfg, env={}, log=quiet)
    assert colour.last["loss"] != mono.last["loss"]
    for run, seen in ((colour, True), (mono, False)):
        path = run.out / "checkpoint.pt"
        assert read_checkpoint(path)["model_config"]["colour"] is seen
        loaded = ghframes.training.load(path)
        assert loaded.model_config.colour is seen and loaded.model_config == run.model.cfg
        names = set(loaded.model.state_dict())
        assert any("colours" in name for name in names) is seen
        assert names == set(run.model.state_dict())


def test_a_checkpoint_from_before_colour_is_a_monochrome_model(tmp_path, capsys):
    """A checkpoint without the colour setting was written when every model read characters
    only: it loads as one, resumes as one, and a colour run is refused with the difference."""
    assert run_main(tmp_path, "--no-model-colour") == 0
    capsys.readouterr()
    (tmp_path / "metrics.jsonl").unlink()
    path = tmp_path / "checkpoint.pt"
    ckpt = read_checkpoint(path)
    del ckpt["model_config"]["colour"]
    torch.save(ckpt, path)
    assert ghframes.training.load(path).model_config.colour is False
    assert refuse(tmp_path, capsys, "--resume", "auto") == (
        f"train: error: {path}: checkpoint is of another model config: "
        "colour=False (checkpoint) vs True (this run)"
    )
    assert (
        run_main(tmp_path, "--resume", "auto", "--steps", "2", "--reschedule", "--no-model-colour")
        == 0
    )


def test_changing_steps_on_resume_is_refused_unless_rescheduled(tmp_path, capsys):
    """The cosine schedule spans --steps: resuming with another number would change the
    learning rate from the resumed step on. Refused in one line; --reschedule accepts it, and
    a constant schedule, which --steps does not shape, needs nothing."""
    from ghframes.training.optim import lr_multiplier

    assert run_main(tmp_path, "--steps", "4", "--stop-at", "2", "--warmup-steps", "1",
                    "--log-every", "1") == 0  # fmt: skip
    capsys.readouterr()
    metrics = (tmp_path / "metrics.jsonl").read_text()
    (tmp_path / "metrics.jsonl").unlink()
    path = tmp_path / "checkpoint.pt"
    assert refuse(tmp_path, capsys, "--resume", "auto", "--steps", "6", "--warmup-steps", "1") == (
        f"train: error: {path}: checkpoint is at step 2 of a --steps 4 run, whose cosine "
        "learning-rate schedule spans 4 steps; --steps 6 would change the learning rate from "
        "here on: resume with --steps 4 (--stop-at N to stop earlier), or add --reschedule to "
        "continue on a schedule over 6 steps"
    )
    assert read_checkpoint(path)["step"] == 2  # nothing written
    (tmp_path / "metrics.jsonl").write_text(metrics)
    assert run_main(tmp_path, "--resume", "auto", "--steps", "6", "--warmup-steps", "1",
                    "--log-every", "1", "--reschedule") == 0  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lr = {r["step"]: r["lr_muon"] for r in records if r["split"] == "train"}
    cfg = small_run(tmp_path)
    for step in (3, 6):  # the learning rate of step N is set before it, at 0-based step N - 1
        assert lr[step] == pytest.approx(cfg.lr_muon * lr_multiplier(step - 1, 6, 1, "cosine", 0.1))
    assert read_checkpoint(path)["train_config"]["steps"] == 6  # later resumes keep 6
    assert run_main(tmp_path, "--resume", "auto", "--steps", "8", "--schedule", "constant") == 0
