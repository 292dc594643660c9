"""synthetic/repl_frames.py: REPL traces played as frames, batches whose mask is the answer keys,
the state-blind baseline, and a run end to end on a tiny model."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch

from ghframes.render.repl import play
from ghframes.training.chars import ACTION_NAMES
from ghframes.training.synthetic import repl_frames
from ghframes.training.synthetic.repl import repl_trace

TINY = dataclasses.replace(
    repl_frames.PRESETS["quick"],
    densities=(1.0,),
    train_lengths=(1, 2),
    eval_lengths=(1, 3),
    eval_traces=3,
    chance_traces=20,
    steps=2,
    batch_size=2,
    chunk_len=16,
    warmup_steps=1,
    model={"merge_dims": (4, 8), "stage_blocks": (1,), "d_model": 16, "fovea": 4, "colour": False},
    workers=1,
)


def test_a_batch_holds_the_played_frames_and_masks_the_answer_keys():
    items = repl_frames.sample(TINY, repl_trace, 0.0, [1, 3], seed=5)
    batch = repl_frames.make_batch(items)
    lengths = [len(item["actions"]) for item in items]
    b, t = 2, max(lengths)
    assert batch["frames"].shape == (b, t, 48, 160) and batch["frames"].dtype == torch.uint8
    assert batch["cursor"].shape == (b, t, 2) and batch["cursor"].dtype == torch.int64
    for name in ("fg", "bg", "attrs"):
        assert batch[name].shape == (b, t, 48, 160)
    assert batch["reset"][:, 0].all() and not batch["reset"][:, 1:].any()
    for row, length in enumerate(lengths):
        transcript = repl_trace("sym", 3, [1, 3][row], 0.0, 5 * 1_000_003 + row)
        played = play(transcript)
        assert played.num_frames == length
        assert np.array_equal(batch["frames"][row, :length].numpy(), played.frames)  # ASCII ids
        typed = [ACTION_NAMES[a] for a in batch["actions"][row][batch["mask"][row]].tolist()]
        assert "".join(typed) == transcript[-1][1].replace(" ", "")  # only the final reveal
        assert not batch["mask"][row, length:].any()
        assert set(batch["reveal"][row][batch["mask"][row]].tolist()) == {len(transcript) - 1}


def test_the_state_blind_predictors_of_uniform_permutations():
    """Fitted on the 6 orders of 1, 2, 3, scored on them: the first value is a guess (1 in 3),
    the second 1 in 2, the third the one left; a whole answer is 1 in 6."""
    orders = [list(p) for p in itertools.permutations([1, 2, 3])]
    blind = repl_frames.StateBlind.fit(orders)
    assert blind.next_key[()] == 1 and blind.next_key[(1,)] == 2 and blind.answer == (1, 2, 3)
    reveals = [(keys, [True, True, k > 0], True) for k, keys in enumerate(orders)]
    scores = repl_frames.score(reveals, (blind, blind))
    assert scores["key"] == pytest.approx(17 / 18, abs=1e-4)
    assert scores["final_answer"] == pytest.approx(5 / 6, abs=1e-4)
    assert scores["chance_key"] == pytest.approx((1 / 3 + 1 / 2 + 1) / 3, abs=1e-4)
    assert scores["chance_final_answer"] == pytest.approx(1 / 6, abs=1e-4)
    assert scores["reveals"] == 6


def test_answer_keys_are_the_values_typed():
    transcript = [("a, b = 2, 1", None), ("a, b = b, a", None), ("print(a, b)", "1 2")]
    ids = repl_frames.answer_keys(transcript)
    assert [[ACTION_NAMES[i] for i in keys] for keys in ids] == [["1", "2"]]


def test_a_tiny_run_writes_its_report(tmp_path):
    results = repl_frames.run(TINY, tmp_path)
    assert [r["density"] for r in results["runs"]] == [1.0]
    run = results["runs"][0]
    assert list(run["by_length"]) == ["1", "3"]
    for scores in run["by_length"].values():
        assert 0 <= scores["final_key"] <= 1 and scores["reveals"] >= 3
        assert 0 <= scores["screen_final_key"] <= 1
    assert json.loads((tmp_path / "results.json").read_text())["runs"] == results["runs"]
    table = (tmp_path / "table.md").read_text()
    assert "| swaps | 1 | 3* |" in table and "whole final answer" in table
    assert "| final-reveal keys, screen only |" in table
    assert (tmp_path / "accuracy_vs_length.png").stat().st_size > 0


def test_bad_configs_name_the_value():
    with pytest.raises(ValueError) as err:
        dataclasses.replace(TINY, train_lengths=(3, 2))
    assert str(err.value) == "repl_frames: train_lengths must be 1 <= lo <= hi, got (3, 2)"
    with pytest.raises(ValueError) as err:
        dataclasses.replace(TINY, n_vars=9)
    assert str(err.value) == "repl_frames: sym: n_vars must lie in [2, 8], got 9"


def test_the_command_line_overrides_name_their_bad_values(capsys):
    with pytest.raises(SystemExit):
        repl_frames.main(["--out", "x", "--densities", "1,half"])
    assert "--densities: '1,half': expected comma-separated numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        repl_frames.main(["--out", "x", "--densities", "1.5"])
    assert "densities must be in [0, 1], got (1.5,)" in capsys.readouterr().err


def test_the_command_line_overrides_the_preset(tmp_path, monkeypatch, capsys):
    seen = []

    def fake_run(cfg, out):
        seen.append(cfg)
        (out / "table.md").write_text("table\n")
        return {"runs": [{}]}

    monkeypatch.setattr(repl_frames, "run", fake_run)
    argv = ["--preset", "cpu", "--out", str(tmp_path), "--n-vars", "3", "--densities", "0.5,0"]
    assert repl_frames.main([*argv, "--steps", "7", "--clear", "--seed", "2"]) == 0
    want = dataclasses.replace(
        repl_frames.PRESETS["cpu"], n_vars=3, densities=(0.5, 0.0), steps=7, clear=True, seed=2
    )
    assert seen == [want] and capsys.readouterr().out == "table\n"


def test_a_cleared_batch_is_the_cleared_play():
    cfg = dataclasses.replace(TINY, clear=True)
    (item,) = repl_frames.sample(cfg, repl_trace, 1.0, [2], seed=3)
    played = play(repl_trace("sym", 3, 2, 1.0, 3 * 1_000_003), clear=True)
    assert np.array_equal(item["frames"], played.frames)
    assert ACTION_NAMES.index("<C-l>") in item["actions"].tolist()
    assert np.array_equal(item["mask"], played.answer)
