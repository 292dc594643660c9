"""Typed-text actions (`--actions tokens`): the tokenizer (deterministic, greedy longest match,
lossless), the loader's token batches (keys mode unchanged), two training steps and a resume,
evaluation and a rollout with a token model, and bad input as one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import batches, same
from ghframes.errors import GhframesError
from ghframes.training import load
from ghframes.training.chars import ACTION_NAMES
from ghframes.training.checkpoint import read_checkpoint
from ghframes.training.config import TrainConfig
from ghframes.training.evaluate import main as evaluate_main
from ghframes.training.loader import FrameStream
from ghframes.training.model import PRESETS
from ghframes.training.sample import rollout
from ghframes.training.tokens import (
    MAX_RUN,
    Tokenizer,
    base_tokens,
    session_keys,
    train_tokenizer,
    typed_characters,
)
from ghframes.training.train import main, train

TINY = PRESETS["tiny"]
ID = {name: i for i, name in enumerate(ACTION_NAMES)}


def ids(*names: str) -> np.ndarray:
    return np.array([ID[n] for n in names], np.int64)


def typed(text: str) -> np.ndarray:
    return ids(*text)


def run_cfg(data: str, out, **overrides) -> TrainConfig:
    settings = dict(
        data=data, out=str(out), batch_size=2, seq_len=16, chunk_len=8, steps=2, warmup_steps=1,
        log_every=1, eval_every=0, eval_batches=1, checkpoint_every=0, threads=1, progress=False,
        plot=False, actions="tokens",
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def quiet(_: str) -> None: ...


def greedy_reference(tokenizer: Tokenizer, keys: list[int]) -> list[int]:
    """Greedy longest match by brute force: at each key, the longest token in the set."""
    table = {t: i for i, t in enumerate(tokenizer.tokens)}
    longest = max(len(t) for t in tokenizer.tokens)
    out, i = [], 0
    while i < len(keys):
        n = next(
            n for n in range(min(longest, len(keys) - i), 0, -1) if tuple(keys[i : i + n]) in table
        )
        out.append(table[tuple(keys[i : i + n])])
        i += n
    return out


# -- the tokenizer ------------------------------------------------------------------------------


def test_greedy_longest_match_covers_every_key_once_and_decodes_back():
    streams = [typed("return self.x\n".replace("\n", " ")) for _ in range(3)]
    tok = train_tokenizer(streams, ACTION_NAMES, 10_000, "d")
    words = [tuple(t) for t in tok.tokens[len(base_tokens(ACTION_NAMES)) :]]
    assert [tok.action_names[k] for k in words[0]] == list("return")  # 3 x 5 keys saved: first
    keys = np.concatenate([typed("returns  self"), ids(*["<Down>"] * 40), typed("re")])
    starts = tok.encode(keys)
    at = np.flatnonzero(starts >= 0)
    pieces = [tok.names(int(starts[i])) for i in at]
    assert ["".join(p) for p in pieces[:4]] == ["return", "s", "  ", "self"]
    assert pieces[4] == ["<Down>"] * MAX_RUN and pieces[5] == ["<Down>"] * (40 - MAX_RUN)
    assert tok.decode(starts[at]) == keys.tolist()  # every key exactly once, in order
    lengths = np.diff([*at, len(keys)])
    assert [len(tok.tokens[int(starts[i])]) for i in at] == lengths.tolist()
    assert starts[at].tolist() == greedy_reference(tok, keys.tolist())


def test_the_tokenizer_of_real_sessions_is_deterministic_and_lossless(loader_data):
    base = len(base_tokens(ACTION_NAMES))
    stream = FrameStream(loader_data, 2, 16, actions="tokens", token_vocab=base + 5)
    again = FrameStream(loader_data, 2, 16, actions="tokens", token_vocab=base + 5)
    tok = stream.tokenizer
    assert tok.to_dict() == again.tokenizer.to_dict()
    assert len(tok) == base + 5  # capped by token_vocab
    assert tok.tokens[: len(ACTION_NAMES)] == tuple((k,) for k in range(len(ACTION_NAMES)))
    assert Tokenizer.from_dict(tok.to_dict(), "here") == tok
    whole = FrameStream(loader_data, 2, 16, actions="tokens")  # default 20k: fewer, small data
    assert base + 5 < len(whole.tokenizer) < 20_000
    assert whole.tokenizer.tokens[: base + 5] == tok.tokens  # the same ranking, cut later
    for i in stream.split_indices:
        keys = session_keys(stream, i)
        starts = tok.encode(keys)
        assert starts[0] >= 0 and tok.decode(starts[starts >= 0]) == keys.tolist()
        assert starts[starts >= 0].tolist() == greedy_reference(tok, keys.tolist())


# -- the loader ---------------------------------------------------------------------------------


def test_a_token_batch_has_token_ids_at_token_starts_and_mask_false_inside(loader_data):
    keys_mode = FrameStream(loader_data, 3, 64, seed=1)
    default = FrameStream(loader_data, 3, 64, seed=1, actions="keys")
    tokens_mode = FrameStream(loader_data, 3, 64, seed=1, actions="tokens")
    tok = tokens_mode.tokenizer
    assert default.tokenizer is None and keys_mode.state_dict() == default.state_dict()
    inside, keys_of = 0, {}
    for a, d, b in zip(keys_mode, default, tokens_mode, strict=True):
        assert set(a) == set(d) and set(b) == set(a) | {"keys"}
        for key in a:  # keys mode is what it was; tokens change only actions and mask
            assert torch.equal(a[key], d[key]), key
            if key not in ("actions", "mask"):
                assert torch.equal(a[key], b[key]), key
        assert torch.equal(b["keys"], a["actions"])
        assert not (b["mask"] & ~a["mask"]).any()  # a token starts only on real steps
        inside += int((a["mask"] & ~b["mask"]).sum())
        assert (b["actions"][~b["mask"]] == 0).all()
        for row, t in zip(*torch.nonzero(b["mask"], as_tuple=True), strict=True):
            i = int(a["session"][row, t])
            keys = keys_of.setdefault(i, session_keys(tokens_mode, i))
            token = tok.tokens[int(b["actions"][row, t])]
            frame = int(a["t"][row, t])
            assert tuple(keys[frame : frame + len(token)].tolist()) == token
        for row, t in zip(*torch.nonzero(a["mask"], as_tuple=True), strict=True):
            i = int(a["session"][row, t])  # keys mode: the shards' own action ids, as before
            keys = keys_of.setdefault(i, session_keys(tokens_mode, i))
            assert int(a["actions"][row, t]) == keys[int(a["t"][row, t])]
    assert inside > 0  # some tokens span several frames
    assert tokens_mode.state_dict()["actions"] == "tokens"
    assert "actions" not in keys_mode.state_dict()  # a keys position is what it was


def test_dataloader_workers_give_the_same_token_batches(loader_data):
    one = batches(FrameStream(loader_data, 2, 128, "window", seed=3, actions="tokens"))
    workers = torch.utils.data.DataLoader(
        FrameStream(loader_data, 2, 128, "window", seed=3, actions="tokens"),
        batch_size=None,
        num_workers=2,
    )
    same(one, batches(workers))


def test_the_held_out_split_is_tokenized_by_the_train_split_tokenizer(loader_data):
    train_split = FrameStream(loader_data, 2, 16, actions="tokens")
    held = FrameStream(loader_data, 2, 16, split="eval", actions="tokens")
    given = FrameStream(
        loader_data, 2, 16, split="eval", actions="tokens", tokenizer=held.tokenizer
    )
    assert held.tokenizer == train_split.tokenizer == given.tokenizer
    assert held.tokenizer.data == train_split.data_key != held.data_key


# -- training, resume, evaluation, sampling -----------------------------------------------------


def test_two_steps_in_tokens_mode_then_a_resume_continues_exactly(loader_data, tmp_path):
    straight = train(run_cfg(loader_data, tmp_path / "a", steps=4), TINY, env={}, log=quiet)
    train(run_cfg(loader_data, tmp_path / "b", steps=4, stop_at=2), TINY, env={}, log=quiet)
    ckpt = read_checkpoint(tmp_path / "b" / "checkpoint.pt")  # weights_only: plain data
    tok = Tokenizer.from_dict(ckpt["tokenizer"], "checkpoint")
    assert ckpt["step"] == 2 and ckpt["model_config"]["action_vocab"] == len(tok)
    assert ckpt["model"]["action_head.weight"].shape[0] == len(tok)
    resumed = train(
        run_cfg(loader_data, tmp_path / "b", steps=4, resume="auto"), TINY, env={}, log=quiet
    )
    assert resumed.step == 4
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    record = straight.evals[-1]
    assert record["typed_chars"] > 0 and record["loss_per_typed_char"] > 0


def test_both_kinds_are_evaluated_per_typed_character_on_the_same_steps(
    loader_data, tmp_path, capsys
):
    records = {}
    for actions in ("keys", "tokens"):
        out = tmp_path / actions
        train(run_cfg(loader_data, out, steps=1, actions=actions), TINY, env={}, log=quiet)
        argv = ["--checkpoint", str(out / "checkpoint.pt"), "--data", loader_data]
        assert evaluate_main([*argv, "--batches", "0", "--json", "-"]) == 0
        records[actions] = json.loads(capsys.readouterr().out)
    keys, tokens = records["keys"], records["tokens"]
    assert keys["actions"] == "keys" and tokens["actions"] == "tokens"
    assert keys["typed_chars"] == tokens["typed_chars"] > 0  # the same held-out keys
    assert tokens["timesteps"] < keys["timesteps"]  # fewer targets: the token starts
    for r in (keys, tokens):
        assert r["loss_per_typed_char"] == pytest.approx(r["loss_sum"] / r["typed_chars"], 1e-4)
        assert r["loss_sum"] == pytest.approx(r["loss"] * r["timesteps"], 1e-3)


def test_typed_characters_are_the_printable_keys():
    typed_ = typed_characters(ACTION_NAMES)
    assert typed_[ID["a"]] and typed_[ID[" "]] and typed_[ID["<other>"]]
    assert not typed_[ID["<Enter>"]] and not typed_[ID["<Tab>"]] and not typed_[ID["<Down>"]]


def test_a_rollout_presses_every_key_of_the_chosen_token(sample_sessions, tmp_path):
    from ghframes.render.environment import Environment
    from ghframes.store.frames import open_dataset

    train(run_cfg(sample_sessions, tmp_path, steps=1), TINY, env={}, log=quiet)
    loaded = load(tmp_path / "checkpoint.pt")
    saved = read_checkpoint(tmp_path / "checkpoint.pt")["tokenizer"]
    tok = Tokenizer.from_dict(saved, "checkpoint")
    three_down = tok.tokens.index((ID["<Down>"],) * 3)
    with torch.no_grad():
        loaded.model.action_head.bias[three_down] = 1e4  # the model always picks it
    info = open_dataset(sample_sessions).sessions()[1]
    env = Environment(sample_sessions, info.id)
    line, start = "", None
    for t, action in enumerate(env.actions):  # the frame just after the editor opened
        if action == "<Enter>" and line.startswith("edit "):
            start = t + 1
            break
        line = "" if action == "<Enter>" else line + action
    out = rollout(loaded, sample_sessions, info.id, start, 7, None, env=env, tokenizer=saved)
    assert out.actions == ["<Down>"] * 7  # 3 + 3 + the first of the third token
    assert [np.isnan(p) for p in out.probs] == [False, True, True, False, True, True, False]


# -- bad input ----------------------------------------------------------------------------------


def refuse(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_is_one_line(loader_data, tmp_path, capsys):
    assert refuse(capsys, "--data", "fake", "--actions", "words") == (
        "train: error: train config: unknown actions 'words'; valid: keys, tokens"
    )
    assert refuse(capsys, "--data", "fake", "--actions", "tokens", "--out", str(tmp_path)) == (
        "train: error: --actions tokens needs rendered frames to train its tokenizer on; the "
        "synthetic sessions (--data fake) have keys only"
    )
    with pytest.raises(
        GhframesError, match=r"^loader: unknown actions 'chars'; valid: keys, tokens$"
    ):
        FrameStream(loader_data, 2, 16, actions="chars")
    small = ["--data", loader_data, "--out", str(tmp_path), "--token-vocab", "10"]
    assert refuse(capsys, *small, "--actions", "tokens", "--threads", "1") == (
        f"train: error: token_vocab 10 is smaller than the {len(base_tokens(ACTION_NAMES))} "
        f"tokens every tokenizer has (each key, arrow and space runs of 2..31); use at least "
        f"{len(base_tokens(ACTION_NAMES))}"
    )
    train(run_cfg(loader_data, tmp_path, steps=2, stop_at=1), TINY, env={}, log=quiet)
    path = tmp_path / "checkpoint.pt"
    common = ["--data", loader_data, "--out", str(tmp_path), "--resume", "auto", "--steps", "2",
              "--batch-size", "2", "--seq-len", "16", "--threads", "1", "--no-progress"]  # fmt: skip
    assert refuse(capsys, *common) == (
        f"train: error: {path}: checkpoint predicts tokens (--actions tokens), this run keys: "
        "resume with --actions tokens"
    )
    ckpt = read_checkpoint(path)
    data = FrameStream(loader_data, 2, 16).data_key
    ckpt["tokenizer"]["data"] = "0123456789abcdef"  # as if trained on the sessions of other data
    torch.save(ckpt, path)
    assert refuse(capsys, *common, "--actions", "tokens") == (
        f"train: error: {path}: the checkpoint's tokenizer was trained on other data "
        f"(0123456789abcdef), not on the train split of {loader_data} ({data}): resume on the "
        "data it was trained on, or start afresh"
    )
    ckpt["tokenizer"]["tokens"][0] = [1]
    torch.save(ckpt, path)
    assert refuse(capsys, *common, "--actions", "tokens") == (
        f"train: error: {path}: tokenizer: damaged tokenizer (not a ghframes.training.tokens/1)"
    )
