"""The trainer: a two-step run, exact resume, torchrun with 2 processes, bad input (its
configuration: test_train_config.py; held-out evaluation: test_evaluate.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import ghframes.training.train as train_module
from ghframes.errors import GhframesError
from ghframes.store import schema
from ghframes.training.checkpoint import read_checkpoint
from ghframes.training.config import TrainConfig
from ghframes.training.fake_batches import FakeBatches
from ghframes.training.model import PRESETS, ActionModel
from ghframes.training.streaming import streaming_bptt
from ghframes.training.train import main, train

REPO = Path(__file__).resolve().parents[1]
TINY = PRESETS["tiny"]


def small_run(out: Path, **overrides) -> TrainConfig:
    """A run that takes well under a second per step on one core."""
    settings = dict(
        data="fake", out=str(out), batch_size=2, seq_len=16, chunk_len=8, steps=2, warmup_steps=1, log_every=1,
        eval_every=0, eval_batches=1, checkpoint_every=0, threads=1, progress=False,
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def quiet(_: str) -> None: ...


def test_two_steps_write_metrics_checkpoint_and_plot(tmp_path):
    result = train(small_run(tmp_path), TINY, env={}, log=quiet)
    assert result.step == 2
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["split"], r["step"]) for r in records] == [("train", 1), ("train", 2), ("eval", 2)]
    train_record = records[1]
    for key in ("loss", "accuracy", "accuracy_by_kind", "loss_by_position", "loss_early", "loss_late",
                "steps_per_s", "timesteps_per_s", "memory", "lr_muon", "lr_adamw", "grad_norm"):  # fmt: skip
        assert key in train_record, key
    assert train_record["timesteps"] == 2 * 16
    assert train_record["memory"]["autograd_peak_bytes"] > 0
    assert 0 < train_record["loss"] < 10
    ckpt = read_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 2
    assert ckpt["model_config"]["action_vocab"] == len(FakeBatches.action_names)
    assert ckpt["train_config"]["seq_len"] == 16
    assert ckpt["loader_state"][0]["loader"] == {"epoch": 0, "batch": 2}
    assert ckpt["loader_state"][0]["state"][0].shape == (TINY.lstm_layers, 2, TINY.d_model)
    assert set(ckpt["optimizer"]) == {"muon", "adamw"}
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_loss_falls_on_synthetic_sessions(tmp_path):
    """A few dozen steps on the dev sessions: the held-out loss drops well below chance."""
    cfg = small_run(tmp_path, steps=40, batch_size=4, seq_len=32, eval_every=40, eval_batches=2, plot=False,
                    lr_adamw=3e-3, warmup_steps=5)  # fmt: skip
    result = train(cfg, TINY, env={}, log=quiet)
    chance = torch.log(torch.tensor(float(len(FakeBatches.action_names)))).item()
    assert result.evals[-1]["loss"] < chance - 1.0, (result.evals, chance)


@pytest.mark.parametrize("bptt", ["streaming", "plain"])
def test_resume_continues_exactly(tmp_path, bptt):
    """4 steps straight == 2 steps, a restart from the checkpoint, 2 more (bitwise): the state
    carried across stream batches, the optimizers' moments and the loader position all resume."""
    straight = train(small_run(tmp_path / "a", steps=4, bptt=bptt), TINY, env={}, log=quiet)
    train(small_run(tmp_path / "b", steps=4, stop_at=2, bptt=bptt), TINY, env={}, log=quiet)
    assert read_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 2
    resumed = train(
        small_run(tmp_path / "b", steps=4, resume="auto", bptt=bptt), TINY, env={}, log=quiet
    )
    assert resumed.step == 4
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name

    def losses(run: str) -> list:
        text = (tmp_path / run / "metrics.jsonl").read_text()
        return [json.loads(line)["loss"] for line in text.splitlines()]

    assert losses("a") == losses("b")  # steps 1-4 and the evaluation, each once
    assert len(losses("b")) == 5


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from ghframes.training.config import TrainConfig
    from ghframes.training.fake_batches import FakeBatches
    from ghframes.training.model import PRESETS
    from ghframes.training.streaming import streaming_bptt
    from ghframes.training.distributed import average_gradients
    from ghframes.training.train import train
    out, rank = sys.argv[1], int(os.environ["RANK"])
    cfg = TrainConfig(data="fake", out=out, batch_size=2, seq_len=8, chunk_len=4, steps=2, warmup_steps=1, log_every=1,
                      eval_every=0, eval_batches=1, threads=1, progress=False, plot=False)
    torch.distributed.init_process_group("gloo")  # kept for the check below; train() uses it
    result = train(cfg, PRESETS["tiny"], env=os.environ, log=lambda _: None)
    torch.save(result.model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    # One more gradient, averaged over the two processes, on this rank's share of a batch.
    model = result.model
    model.zero_grad(set_to_none=True)
    batch = next(iter(FakeBatches(2, 8, rank=rank, world_size=2)))
    streaming_bptt(model, batch, None, 4)
    average_gradients(model, 2)
    torch.save({n: p.grad for n, p in model.named_parameters()}, os.path.join(out, f"grads{rank}.pt"))
    torch.distributed.destroy_process_group()
    """
)


def test_torchrun_two_processes_keep_identical_parameters(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_"))
    }
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(script),
        str(tmp_path),
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    initial = ActionModel(dataclasses.replace(TINY, action_vocab=len(FakeBatches.action_names)))
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    assert not torch.equal(
        rank0["lstm.lstms.0.weight_hh_l0"], initial.state_dict()["lstm.lstms.0.weight_hh_l0"]
    )
    # The ranks trained on different sessions (lanes 0-1 and 2-3); the checkpoint holds both
    # ranks' loader positions and carried states.
    ckpt = read_checkpoint(tmp_path / "checkpoint.pt")
    assert len(ckpt["loader_state"]) == 2
    assert not torch.equal(ckpt["loader_state"][0]["state"][0], ckpt["loader_state"][1]["state"][0])
    # The averaged gradient is the gradient of one process holding both ranks' rows.
    model = ActionModel(initial.cfg)
    model.load_state_dict(rank0)
    streaming_bptt(model, next(iter(FakeBatches(4, 8))), None, 4)
    grads0, grads1 = torch.load(tmp_path / "grads0.pt"), torch.load(tmp_path / "grads1.pt")
    for name, param in model.named_parameters():
        assert torch.equal(grads0[name], grads1[name]), name
        torch.testing.assert_close(grads0[name], param.grad, rtol=1e-4, atol=1e-7, msg=name)


def test_out_that_cannot_be_written_is_refused_before_training(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("kept")
    assert refuse(afile, capsys) == f"train: error: --out {afile}: exists and is not a directory"
    assert afile.read_text() == "kept"
    below = afile / "run"
    assert refuse(below, capsys) == f"train: error: --out {below}: {afile} is not a directory"
    assert not below.exists()
    if Path("/proc/self").exists():
        for out in (Path("/proc/x"), Path("/proc")):
            assert refuse(out, capsys).startswith(
                f"train: error: --out {out}: cannot write the output directory ("
            )
        assert not Path("/proc/x").exists()


# -- bad input: refused before any training time is spent -------------------------------------------


def run_main(tmp_path: Path, *argv: str) -> int:
    return main(["--data", "fake", "--out", str(tmp_path), "--batch-size", "2", "--seq-len", "8", "--chunk-len", "4",
                 "--steps", "1", "--eval-batches", "1", "--threads", "1", "--no-progress", "--no-plot", *argv],
                env={})  # fmt: skip


def refuse(tmp_path, capsys, *argv: str) -> str:
    assert run_main(tmp_path, *argv) == 2
    assert not (tmp_path / "metrics.jsonl").exists()  # no step was taken
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def test_unknown_schema_version(tmp_path, capsys, monkeypatch):
    def newer_shards(cfg, split, rank, world_size, colour=True):
        return FakeBatches(
            cfg.batch_size, cfg.seq_len, cfg.mode, split=split, schema_version="99.0"
        )

    monkeypatch.setattr(train_module, "make_loader", newer_shards)
    assert refuse(tmp_path, capsys) == (
        "train: error: fake: frames schema version 99.0 is not supported "
        f"(this ghframes reads {schema.load('frames').major}.x)"
    )


def test_colour_the_data_cannot_give_is_one_clear_line(tmp_path, capsys, monkeypatch):
    def characters_only(cfg, split, rank, world_size, colour=True):  # characters only, always
        return FakeBatches(cfg.batch_size, cfg.seq_len, cfg.mode, split=split, colour=False)

    monkeypatch.setattr(train_module, "make_loader", characters_only)
    assert refuse(tmp_path, capsys) == (
        "train: error: fake: the batches have no colour planes (fg, bg, attrs), but the model "
        "sees colour; train on characters only with --no-model-colour "
        "(GHFRAMES_MODEL_COLOUR=false, or colour = false under [model])"
    )
    assert run_main(tmp_path, "--no-model-colour") == 0  # a monochrome model trains on them
    batch = next(iter(FakeBatches(2, 8)))
    batch["attrs"][0, 0, 0, 0] = 64  # a bit above the six of the contract
    with pytest.raises(GhframesError, match=r"^fake: attrs holds value 64, .* attrs 0\.\.63$"):
        train_module.check_batch(batch, TINY, small_run(tmp_path, seq_len=8), "fake")


def test_sequence_length_the_loader_cannot_fill(tmp_path, capsys):
    assert refuse(tmp_path, capsys, "--mode", "window", "--seq-len", "1000") == (
        "train: error: fake: seq_len 1000 is longer than any window the loader can fill in mode 'window' "
        "(longest: 600 steps); lower --seq-len or use --mode stream"
    )


def test_checkpoint_from_another_model_config(tmp_path, capsys):
    assert run_main(tmp_path) == 0
    capsys.readouterr()
    (tmp_path / "metrics.jsonl").unlink()
    assert refuse(
        tmp_path, capsys, "--resume", "auto", "--model-d-model", "64", "--model-lstm-layers", "3"
    ) == (
        f"train: error: {tmp_path / 'checkpoint.pt'}: checkpoint is of another model config: "
        "d_model=128 (checkpoint) vs 64 (this run), lstm_layers=2 (checkpoint) vs 3 (this run)"
    )


def test_checkpoint_of_another_split(tmp_path, capsys):
    assert run_main(tmp_path) == 0
    capsys.readouterr()
    (tmp_path / "metrics.jsonl").unlink()
    assert refuse(tmp_path, capsys, "--resume", "auto", "--split-by", "repo") == (
        f"train: error: {tmp_path / 'checkpoint.pt'}: checkpoint split its held-out data by "
        "'session', this run by 'repo': train and held-out sessions differ; resume with "
        "--split-by session"
    )
    ckpt = read_checkpoint(tmp_path / "checkpoint.pt")  # one from before split_by: by session
    del ckpt["train_config"]["split_by"]
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    assert refuse(tmp_path, capsys, "--resume", "auto", "--split-by", "repo").endswith(
        "resume with --split-by session"
    )
    assert run_main(tmp_path, "--resume", "auto", "--steps", "2", "--reschedule") == 0


def test_action_vocabulary_mismatch_with_checkpoint(tmp_path, capsys, monkeypatch):
    assert run_main(tmp_path) == 0
    capsys.readouterr()
    (tmp_path / "metrics.jsonl").unlink()
    names = list(FakeBatches.action_names)
    at, n = names.index("<Enter>"), len(names)
    names[at] = "<Return>"  # the data now names that action differently
    monkeypatch.setattr(FakeBatches, "action_names", names)
    assert refuse(tmp_path, capsys, "--resume", "auto") == (
        f"train: error: {tmp_path / 'checkpoint.pt'}: the action vocabulary of fake ({n} actions) does not "
        f"match the checkpoint's ({n} actions): first difference at id {at}: '<Return>' in the data, "
        "'<Enter>' in the checkpoint"
    )


def test_missing_checkpoint_and_bad_ids(tmp_path, capsys, monkeypatch):
    assert refuse(tmp_path, capsys, "--resume", str(tmp_path / "nope.pt")) == (
        f"train: error: --resume {tmp_path / 'nope.pt'}: no such checkpoint"
    )
    top = int(next(iter(FakeBatches(2, 8)))["frames"].max())  # the first batch's largest id
    monkeypatch.setattr(FakeBatches, "char_vocab", 100)
    assert (
        refuse(tmp_path, capsys)
        == f"train: error: fake: frames hold character id {top}, but char_vocab is 100"
    )


def test_module_entry_points(tmp_path):
    """`python -m ghframes.training.train` from the repository root and from elsewhere."""
    for cwd in (REPO, tmp_path):
        done = subprocess.run(
            [sys.executable, "-m", "ghframes.training.train", "--help"],
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert "--chunk-len" in done.stdout and "--model-d-model" in done.stdout


def test_tensorboard_scalars(tmp_path):
    """--tensorboard writes the train and eval scalars TensorBoard reads back."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(small_run(tmp_path, tensorboard=True, eval_every=2, steps=2), TINY, env={}, log=quiet)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for split in ("train", "eval"):
        logged = [(r["step"], r["loss"]) for r in records if r["split"] == split]
        board = [(e.step, e.value) for e in events.Scalars(f"{split}/loss")]
        assert [s for s, _ in board] == [s for s, _ in logged] and logged
        assert [v for _, v in board] == pytest.approx([v for _, v in logged], rel=1e-6)


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(GhframesError, match="--tensorboard needs the tensorboard package"):
        train(small_run(tmp_path, tensorboard=True), TINY, env={}, log=quiet)
