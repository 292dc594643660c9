"""A model acting in the simulator: `python -m ghframes.training.sample` end to end, with a tiny
checkpoint trained for one step on the sample sessions."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch

from ghframes.errors import GhframesError
from ghframes.render.environment import Environment
from ghframes.render.terminal import Terminal
from ghframes.store.frames import open_dataset
from ghframes.training import load
from ghframes.training.chars import char_ids
from ghframes.training.config import TrainConfig
from ghframes.training.model import PRESETS
from ghframes.training.sample import main, rollout
from ghframes.training.train import train

KEY_LINE = re.compile(r"^ +(\d+) +(\d+)  (\".*\") +([0-9.]+)$")


@pytest.fixture(scope="module")
def checkpoint(sample_sessions, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("sample-run")
    cfg = TrainConfig(
        data=sample_sessions, out=str(out), batch_size=2, seq_len=16, chunk_len=8, steps=1,
        warmup_steps=1, log_every=1, eval_every=0, eval_batches=1, checkpoint_every=0, threads=1,
        progress=False, plot=False,
    )  # fmt: skip
    train(cfg, PRESETS["tiny"], env={}, log=lambda _: None)
    return str(out / "checkpoint.pt")


@pytest.fixture(scope="module")
def session(sample_sessions):
    """The second session, and a frame of it just after the editor opened."""
    info = open_dataset(sample_sessions).sessions()[1]
    env = Environment(sample_sessions, info.id)
    line, frame = "", None
    for t, action in enumerate(env.actions):
        if action == "<Enter>" and line.startswith("edit "):
            frame = t + 1
            break
        line = "" if action == "<Enter>" else line + action
    return info, frame


def test_the_printed_keys_are_those_pressed_and_the_cast_replays_to_the_final_screen(
    sample_sessions, checkpoint, session, tmp_path, monkeypatch, capsys
):
    info, start = session
    pressed, frames = [], []
    step = Environment.step

    def spy(self, action):
        frame = step(self, action)
        pressed.append(action)
        frames.append(frame)
        return frame

    monkeypatch.setattr(Environment, "step", spy)
    cast, page = tmp_path / "r.cast", tmp_path / "r.html"
    argv = ["--checkpoint", checkpoint, "--data", sample_sessions, "--session", info.id,
            "--frame", str(start), "--steps", "12", "--greedy", "--cast", str(cast),
            "--html", str(page)]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [KEY_LINE.match(line) for line in lines]
    printed = [json.loads(m[3]) for m in rows if m]
    assert printed == pressed and len(pressed) == 12
    assert [int(m[2]) for m in rows if m] == list(range(start, start + 12))
    final = frames[-1]
    screen = [row.rstrip() for row in final.text()]
    while not screen[-1]:
        screen.pop()
    at = lines.index(
        f"screen after key 12 (cursor at row {final.cursor[0]}, col {final.cursor[1]}):"
    )
    assert lines[at + 1 : at + 1 + len(screen)] == screen

    header, *events = [json.loads(line) for line in cast.read_text().splitlines()]
    assert (header["width"], header["height"]) == (160, 48)
    outputs = [e for e in events if e[1] == "o"]
    assert len(outputs) == 13  # frame N and the 12 frames the keys caused
    terminal = Terminal()
    for _, _, data in outputs:
        terminal.feed(data)
    assert np.array_equal(terminal.capture(), final.chars)
    assert np.array_equal(terminal.planes, np.stack([final.fg, final.bg, final.attrs]))
    assert terminal.cursor == final.cursor
    html = page.read_text()
    assert html.startswith("<!doctype html>") and '"actions":' in html


def test_sampling_is_seeded_and_reads_the_recorded_frames_as_in_training(
    sample_sessions, checkpoint, session
):
    info, start = session
    loaded = load(checkpoint)
    a = rollout(loaded, sample_sessions, info.id, start, 6, temperature=1.0, seed=3)
    b = rollout(loaded, sample_sessions, info.id, start, 6, temperature=1.0, seed=3)
    assert a.actions == b.actions and len(a.actions) == 6
    # The key on frame `start` is chosen from the model run over frames 0..start at once, from
    # the learned initial state, as a session's first window is in training.
    recorded = open_dataset(sample_sessions).session(info.id)
    s = slice(0, start + 1)
    logits, _ = loaded.model.unroll(
        torch.from_numpy(char_ids(recorded.frames[s]))[None],
        torch.from_numpy(recorded.cursor[s].astype(np.int64))[None],
        torch.tensor([[True] + [False] * start]),
        fg=torch.from_numpy(recorded.fg[s])[None],
        bg=torch.from_numpy(recorded.bg[s])[None],
        attrs=torch.from_numpy(recorded.attrs[s])[None],
    )
    greedy = rollout(loaded, sample_sessions, info.id, start, 1, temperature=None)
    probs = torch.softmax(logits[0, -1].detach(), -1)
    names = loaded.action_names
    assert greedy.actions == [names[int(probs.argmax())]]
    assert greedy.probs[0] == pytest.approx(float(probs.max()), rel=1e-4)


@pytest.mark.parametrize(
    "case, message",
    [
        ("checkpoint", "--checkpoint {tmp}/none.pt: no such file"),
        ("session", "{data}: no session 'nope'"),
        ("frame", "session {sid}: --frame {T} is out of range (0..{last})"),
        ("steps", "--steps must be at least 1, got 0"),
        ("temperature", "--temperature must be a finite number > 0, got -1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    case, message, sample_sessions, checkpoint, session, tmp_path, capsys
):
    info, _ = session
    args = {"--checkpoint": checkpoint, "--data": sample_sessions, "--session": info.id}
    args |= {"--frame": "0", "--steps": "3"}
    args |= {
        "checkpoint": {"--checkpoint": f"{tmp_path}/none.pt"},
        "session": {"--session": "nope"},
        "frame": {"--frame": str(info.num_frames)},
        "steps": {"--steps": "0"},
        "temperature": {"--temperature": "-1"},
    }[case]
    assert main([part for pair in args.items() for part in pair]) == 2
    captured = capsys.readouterr()
    expected = message.format(
        tmp=tmp_path, data=sample_sessions, sid=info.id, T=info.num_frames, last=info.num_frames - 1
    )
    assert captured.err == f"sample: error: {expected}\n" and not captured.out


def test_a_model_that_cannot_read_rendered_frames_is_refused(sample_sessions, checkpoint, session):
    """A checkpoint trained on `--data fake` reads ASCII ids only (char_vocab 128)."""
    info, start = session
    loaded = load(checkpoint)
    fake = loaded._replace(model_config=dataclasses.replace(loaded.model_config, char_vocab=128))
    with pytest.raises(GhframesError) as caught:
        rollout(fake, sample_sessions, info.id, start, 3)
    assert str(caught.value) == (
        "the checkpoint's model reads 128 character ids, rendered frames take 256 "
        "(schemas/chars.json): use a model trained on rendered frames (not --data fake)"
    )
