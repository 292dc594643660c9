"""`python -m ghframes.training.evaluate`: a checkpoint's loss, accuracy by class, top-5 and loss by
position on a split, consistent with the trainer's held-out evaluation; bad input is one line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import TINY, quiet, small_run

import ghframes.training
import ghframes.training.train as train_module
from ghframes.training.evaluate import main
from ghframes.training.fake_batches import FakeBatches
from ghframes.training.metrics import CLASSES, action_class, at_editor, bucket_name
from ghframes.training.model import ActionModel, colour_planes
from ghframes.training.train import train

TOP = "top5_accuracy"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for two steps on the synthetic sessions, held-out evaluation of two
    stream batches at its last step: (checkpoint path, TrainResult)."""
    out = tmp_path_factory.mktemp("evaluate") / "run"
    result = train(small_run(out, eval_batches=2, plot=False), TINY, env={}, log=quiet)
    return out / "checkpoint.pt", result


def evaluate_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json", "-"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    record["table"] = captured.err
    return record


def test_the_record_is_the_trainers_held_out_evaluation_and_adds_up(trained, capsys):
    path, result = trained
    record = evaluate_json(capsys, "--checkpoint", str(path), "--data", "fake")
    held = result.evals[-1]  # the trainer's HeldOut at the last step: the same model and batches
    assert held["step"] == record["step"] == 2
    for key in ("loss", "accuracy", "timesteps", "loss_by_position", "accuracy_by_kind"):
        assert record[key] == held[key], key
    assert record["timesteps"] == 2 * 2 * 16  # two batches of 2 x 16, every step valid
    assert (record["split"], record["split_by"], record["batches"]) == ("eval", "session", 2)
    by_class = record["by_class"]
    assert list(by_class) == list(CLASSES)
    assert sum(c["timesteps"] for c in by_class.values()) == record["timesteps"]
    assert sum(record["timesteps_by_position"].values()) == record["timesteps"]
    assert record[TOP] >= record["accuracy"]
    for name, c in by_class.items():
        if c["timesteps"]:
            assert c[TOP] >= c["accuracy"], name
    # Per-class sums give back the totals (each ratio is rounded to 5 digits).
    total = record["timesteps"]
    for key in ("loss", "accuracy", TOP):
        weighted = sum(c[key] * c["timesteps"] for c in by_class.values() if c["timesteps"])
        assert weighted / total == pytest.approx(record[key], abs=1e-4), key
    # The table: one aligned row per class, the same numbers.
    rows = [line for line in record["table"].splitlines() if line.split()[:1] in
            [[label] for label in ("printable", "<Enter>", "<BS>", "navigation", "save/quit", "shell", "other")]]  # fmt: skip
    assert len(rows) == len(CLASSES) and len({len(r) for r in rows}) == 1
    assert f"loss {record['loss']:.3f}" in record["table"]


def test_top5_and_classes_match_the_model_computed_directly(trained, capsys):
    """The same two held-out batches through the model in one piece (`unroll`, the state
    carried from batch to batch): the top-5 hits and the class counts are the record's."""
    path, _ = trained
    record = evaluate_json(capsys, "--checkpoint", str(path), "--data", "fake")
    loaded = ghframes.training.load(path)
    source = FakeBatches(2, 16, "stream", split="eval")
    state, hits, counts = None, 0, dict.fromkeys(CLASSES, 0)
    with torch.no_grad():
        for batch, _ in zip(source, range(2), strict=False):
            inputs = (batch["frames"], batch["cursor"], batch["reset"], state)
            logits, state = loaded.model.unroll(*inputs, **colour_planes(batch))
            hits += int((logits.topk(5, -1).indices == batch["actions"][..., None]).any(-1).sum())
            editor = at_editor(batch["frames"])
            assert editor.all()  # the synthetic sessions are all in the editor
            for a in batch["actions"].flatten().tolist():
                counts[action_class(FakeBatches.action_names[a])] += 1
    assert record[TOP] == pytest.approx(hits / record["timesteps"], abs=1e-5)
    assert {c: v["timesteps"] for c, v in record["by_class"].items()} == counts
    assert counts["printable"] and counts["enter"] and not counts["shell"]


def test_overrides_and_the_json_file(trained, capsys, tmp_path):
    path, _ = trained
    out = tmp_path / "eval.json"
    argv = ["--checkpoint", str(path), "--data", "fake", "--split", "train", "--batches", "3",
            "--batch-size", "1", "--seq-len", "40", "--mode", "window", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    record = json.loads(out.read_text())
    assert (record["split"], record["mode"], record["batch_size"], record["seq_len"]) == (
        "train",
        "window",
        1,
        40,
    )
    assert record["timesteps"] == 3 * 40
    # Windows start from the initial state: positions 0..39, buckets 0-15 and 16-63.
    assert record["timesteps_by_position"] == {bucket_name(0): 3 * 16, bucket_name(1): 3 * 24}
    assert table.startswith(f"{path} (step 2) on fake, split train (by session): 3 batch(es)")
    assert "train split: loss" in table


def test_the_module_runs_as_a_program(trained):
    path, _ = trained
    done = subprocess.run(
        [sys.executable, "-m", "ghframes.training.evaluate", "--checkpoint", str(path),
         "--data", "fake", "--batches", "1", "--json", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["timesteps"] == 2 * 16
    assert "printable" in done.stderr  # the table, beside JSON on stdout


def test_shell_and_editor_frames_are_told_apart():
    """On a terminal as the renderer drives it: the shell prompt, the editor opened over it
    (its title bar, `  ghedit` and blanks to cell 12), the shell again after <C-q>; a screen
    whose first row only starts like the title is the shell's."""
    from ghframes.render.editor import Editor
    from ghframes.render.shell import prompt_for
    from ghframes.render.terminal import Terminal
    from ghframes.training.chars import char_ids

    terminal, frames = Terminal(), []

    def show(data: str) -> None:
        terminal.feed(data)
        frames.append(torch.from_numpy(char_ids(terminal.capture().copy())))

    prompt = prompt_for("owner/repo")
    show(prompt + "nano a.py")
    out: list[str] = []
    editor = Editor("print(1)\n", "a.py", out)
    editor.open()
    show("\r\n" + "".join(out))
    out.clear()
    editor.press("<C-q>")
    editor.close()
    show("".join(out) + prompt)
    show("\x1b[H\x1b[2J  ghedits  \r\n" + prompt)  # a program printed something like it
    assert at_editor(torch.stack(frames)[None]).tolist() == [[False, True, False, False]]


@pytest.fixture
def bad(trained, capsys):
    """main(argv) must exit 2 with one line on stderr; returns that line."""

    def run(*argv: str) -> str:
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("evaluate: error: "), err
        return err.strip().removeprefix("evaluate: error: ")

    return run


def test_bad_input_is_one_line_naming_it(trained, bad, tmp_path):
    path, _ = trained
    nope = tmp_path / "nope.pt"
    assert bad("--checkpoint", str(nope), "--data", "fake") == (
        f"{nope}: cannot read checkpoint (No such file or directory)"
    )
    text = tmp_path / "notes.pt"
    text.write_text("hello world\n")
    assert bad("--checkpoint", str(text), "--data", "fake").startswith(
        f"{text}: not a ghframes training checkpoint"
    )
    assert bad("--checkpoint", str(tmp_path), "--data", "fake").startswith(
        f"{tmp_path}: is a directory"
    )
    empty = tmp_path / "data"
    empty.mkdir()
    assert bad("--checkpoint", str(path), "--data", str(empty)) == (
        f"{empty}: no rendered frames (run `ghframes render` first)"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--split", "test") == (
        "--split test: unknown split; valid: train, eval"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--mode", "all") == (
        "--mode all: unknown mode; valid: stream, window"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--device", "gpu") == (
        "--device gpu: unknown device; valid: cpu, cuda, cuda:N"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--batches", "many") == (
        "--batches many: not an integer"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--seq-len", "0") == (
        "--seq-len 0: must be >= 1"
    )
    assert bad("--checkpoint", str(path), "--data", "fake", "--batches", "0").startswith(
        "--batches 0: the synthetic sessions (--data fake) never end"
    )
    assert bad("--data", "fake").startswith("--checkpoint is required")
    assert bad("--checkpoint", str(path)).startswith("--data is required")
    assert bad("--checkpoint", str(path), "--data", "fake", "--json", f"{nope}/x.json") == (
        f"--json {nope}/x.json: {nope} is not a directory"
    )


def test_data_the_model_cannot_read_is_the_trainers_refusal(trained, bad, monkeypatch):
    """A colour model on batches without colour, another action vocabulary: the trainer's line."""
    path, _ = trained

    def characters_only(cfg, split, rank, world_size, colour=True):
        return FakeBatches(cfg.batch_size, cfg.seq_len, cfg.mode, split=split, colour=False)

    with monkeypatch.context() as m:
        m.setattr(train_module, "make_loader", characters_only)
        assert bad("--checkpoint", str(path), "--data", "fake") == (
            "fake: the batches have no colour planes (fg, bg, attrs), but the model sees colour; "
            "train on characters only with --no-model-colour (GHFRAMES_MODEL_COLOUR=false, or "
            "colour = false under [model])"
        )
    names = list(FakeBatches.action_names)
    at, n = names.index("<Tab>"), len(names)
    names[at] = "<Tabulator>"
    monkeypatch.setattr(FakeBatches, "action_names", names)
    assert bad("--checkpoint", str(path), "--data", "fake") == (
        f"{path}: the action vocabulary of fake ({n} actions) does not match the checkpoint's "
        f"({n} actions): first difference at id {at}: '<Tabulator>' in the data, '<Tab>' in "
        "the checkpoint"
    )


def test_shell_keys_on_rendered_sessions_are_those_typed_at_the_prompt(
    loader_data, tmp_path, capsys
):
    """On sessions rendered by the real pipeline, the steps counted as "shell" are exactly those
    the sessions' own records place outside the editor (schemas/frames.json: a change played in
    the editor takes frames editor_first .. editor_first + editor_actions, its <C-q> last)."""
    from ghframes import open_dataset
    from ghframes.training.loader import FrameStream

    out = tmp_path / "run"
    cfg = small_run(out, data=loader_data, plot=False)
    train(cfg, TINY, env={}, log=quiet)
    argv = ["--checkpoint", str(out / "checkpoint.pt"), "--data", loader_data, "--split", "train",
            "--batches", "0", "--batch-size", "2", "--seq-len", "64"]  # fmt: skip
    record = evaluate_json(capsys, *argv)
    dataset = open_dataset(loader_data)
    editor_frames = {}
    for info in dataset.sessions():
        frames = set()
        for change in dataset.session(info.id).changes:
            if "editor_first" in change:
                first = change["editor_first"]
                frames.update(range(first, first + change["editor_actions"] + 1))
        editor_frames[info.id] = frames
    stream = FrameStream(loader_data, 2, 64, "stream", split="train", channels=("chars",))
    shell = 0
    for batch in stream:
        editor = at_editor(batch["frames"])
        for b, t in batch["mask"].nonzero().tolist():
            sid = stream.session_ids[int(batch["session"][b, t])]
            expected = int(batch["t"][b, t]) in editor_frames[sid]
            assert bool(editor[b, t]) == expected, (sid, int(batch["t"][b, t]))
            shell += not expected
    by_class = record["by_class"]
    assert by_class["shell"]["timesteps"] == shell > 0
    assert record["timesteps"] == sum(c["timesteps"] for c in by_class.values())
    assert by_class["save_quit"]["timesteps"] > 0 and by_class["printable"]["timesteps"] > 0


class ListSource:
    """Held-out batches from a list, resumable like the loader."""

    def __init__(self, batches: list[dict]):
        self.batches, self.at = batches, 0

    def state_dict(self) -> dict:
        return {"at": self.at}

    def load_state_dict(self, state: dict) -> None:
        self.at = state["at"]

    def __iter__(self):
        while self.at < len(self.batches):
            self.at += 1
            yield self.batches[self.at - 1]


def test_evaluation_skips_empty_lanes_without_changing_the_result():
    """Lanes with no valid step are not computed; the loss over the valid steps, with each
    lane's state carried from batch to batch, is what the full model computes."""
    from ghframes.training.distributed import Processes
    from ghframes.training.evaluate import evaluate
    from ghframes.training.fake_batches import random_batch
    from ghframes.training.metrics import Accumulator

    torch.manual_seed(0)
    model = ActionModel(
        dataclasses.replace(TINY, char_vocab=128, action_vocab=len(FakeBatches.action_names))
    )
    b, t = 3, 8
    batches = [random_batch(model.cfg, b, t, torch.device("cpu"), seed=k) for k in range(2)]
    for k, batch in enumerate(batches):
        batch["mask"][1] = False  # a lane with no held-out session
        if k:
            batch["mask"][2, 3:] = False  # a lane whose session ends
    cfg = small_run(Path("unused"), batch_size=b, seq_len=t, chunk_len=4, eval_batches=2)
    acc = Accumulator(FakeBatches.action_names, t, torch.device("cpu"))
    procs = Processes(0, 1, torch.device("cpu"))
    with torch.no_grad():
        got = evaluate(model, ListSource(batches), {"at": 0}, cfg, acc, procs, None)
        state, losses, count = None, 0.0, 0
        for batch in batches:
            inputs = (batch["frames"], batch["cursor"], batch["reset"], state)
            logits, state = model.unroll(*inputs, **colour_planes(batch))
            mask = batch["mask"]
            losses += torch.nn.functional.cross_entropy(
                logits[mask], batch["actions"][mask], reduction="sum"
            )
            count += int(mask.sum())
    assert got["timesteps"] == count == 8 + 3 + 8 + 8
    assert got["loss"] == pytest.approx(float(losses) / count, rel=1e-5)
