"""REPL-trace state tracking: traces against Python's own exec, the Bayes filter against brute
force, DeltaNet's chunked form against its recurrence, and the sweep end to end."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ghframes.training.synthetic.backbones import make_backbone
from ghframes.training.synthetic.backbones.deltanet import (
    delta_rule_chunked,
    delta_rule_recurrent,
)
from ghframes.training.synthetic.belief import optimal_predictions
from ghframes.training.synthetic.repl import (
    COIN,
    VOCAB,
    decode,
    encode,
    group_elements,
    group_moves,
    repl_trace,
    run_trace,
)
from ghframes.training.synthetic.statetracking import main, mean_over_seeds
from ghframes.training.synthetic.tasks import IGNORE, make_task

# ------------------------------------------------------------------------------------------
# Traces
# ------------------------------------------------------------------------------------------


def test_a_trace_reads_as_a_python_session():
    trace = repl_trace("sym", 3, 4, 1.0, seed=3)
    assert trace[0][0].startswith("a, b, c = ") and trace[0][1] is None
    # Every step is followed by a full reveal at density 1.0.
    assert [s.startswith("print(") for s, _ in trace[1:]] == [False, True] * 4
    assert all(s == "print(a, b, c)" for s, out in trace if out is not None)
    values = [int(v) for v in trace[0][0].split(" = ")[1].split(", ")]
    assert sorted(values) == [1, 2, 3]


@pytest.mark.parametrize(
    ("group", "n_vars", "size"), [("sym", 3, 6), ("sym", 5, 120), ("alt", 4, 12), ("cyclic", 5, 5)]
)
def test_group_moves_generate_the_named_group(group, n_vars, size):
    # Closure of the step statements under composition: the group's order.
    seen, frontier = {tuple(range(n_vars))}, [tuple(range(n_vars))]
    moves = group_moves(group, n_vars)
    while frontier:
        perm = frontier.pop()
        for src in moves:
            new = tuple(perm[s] for s in src)
            if new not in seen:
                seen.add(new)
                frontier.append(new)
    assert len(seen) == size
    assert set(group_elements(group, n_vars)) == seen


def test_knowing_the_group_is_worth_most_on_the_cyclic_control():
    def chances(name, **options):
        task = make_task(name, max_depth=4, **options)
        return task.chance(), task.group_chance()

    # S_n: every order of the values is reachable, so the group adds nothing.
    assert chances("repl_s5") == pytest.approx((0.4567, 0.4567), abs=1e-4)
    # Z5: the first printed value fixes the rotation: (1/5 + 1 + 1 + 1 + 1) / 5.
    assert chances("repl_z5")[1] == pytest.approx(0.84)
    # A4: two values fix an even permutation: (1/4 + 1/3 + 1 + 1) / 4.
    assert chances("repl_a4")[1] == pytest.approx((1 / 4 + 1 / 3 + 2) / 4)
    # Two of five printed: the subsets average, still S5's 1/5 then 1/4.
    assert chances("repl_s5", print_count=2)[1] == pytest.approx((1 / 5 + 1 / 4) / 2)


@pytest.mark.parametrize("hidden_prob", [0.0, 0.4])
@pytest.mark.parametrize(("group", "n_vars"), [("sym", 3), ("sym", 5), ("alt", 4), ("cyclic", 5)])
def test_every_printed_answer_matches_pythons_exec(group, n_vars, hidden_prob):
    for seed in range(40):
        length = 1 + seed % 13
        trace = repl_trace(
            group, n_vars, length, 0.3, seed, hidden_prob, print_count=None if seed % 2 else 2
        )
        assert run_trace(trace, seed) == [out for _, out in trace]
        steps = [s for s, _ in trace[1:] if not s.startswith("print(")]
        assert len(steps) == length
        assert trace[-1][0].startswith("print(")  # always a reveal at the end


def test_the_sandbox_has_no_builtins():
    with pytest.raises(ImportError, match="__import__ not found"):
        run_trace([("import os", None)], 0)
    with pytest.raises(NameError, match="open"):
        run_trace([("open('x')", None)], 0)


def test_reveal_density_spans_every_step_to_only_the_end():
    def reveals(prob):
        return sum(out is not None for _, out in repl_trace("sym", 5, 30, prob, 1))

    assert reveals(1.0) == 30
    assert reveals(0.0) == 1
    assert 1 < reveals(0.3) < 30


def test_trace_options_are_validated_with_the_value():
    with pytest.raises(ValueError, match="unknown group 'dihedral'; valid names: sym, alt, cyclic"):
        repl_trace("dihedral", 3, 4, 1.0, 0)
    with pytest.raises(ValueError, match=r"print_count must lie in \[1, 3\], got 4"):
        repl_trace("sym", 3, 4, 1.0, 0, print_count=4)
    with pytest.raises(ValueError, match=r"repl_s3: depths must lie in \[1, 4\], got 1..5"):
        make_task("repl_s3", max_depth=4).sample(np.random.default_rng(0), np.array([1, 5]))


def test_tokens_target_only_the_printed_values():
    trace = [("a, b, c = 2, 3, 1", None), ("a, b = b, a", None), ("print(a, c)", "3 1")]
    tokens, targets = encode(trace)
    text = decode(tokens)
    assert text == ">>> a , b , c = 2 , 3 , 1\n>>> a , b = b , a\n>>> print ( a , c )\n3 1\n"
    words = [VOCAB[t] for t in tokens]
    where = np.flatnonzero(targets != IGNORE)
    # The target sits one position before the value it predicts: the model reads up to t.
    assert [words[i + 1] for i in where] == ["3", "1"]
    assert targets[where].tolist() == [2, 0]  # classes are value - 1


def test_task_batches_are_padded_deterministic_and_mark_the_last_reveal():
    task = make_task("repl_s5", max_depth=6, reveal_prob=0.5)
    a = task.sample(np.random.default_rng(4), np.arange(1, 7))
    b = task.sample(np.random.default_rng(4), np.arange(1, 7))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["tokens"].shape == (6, task.seq_len)
    assert (a["final"].sum(axis=1) == 5).all()  # the last reveal prints all five variables
    assert (a["targets"][a["final"]] != IGNORE).all()
    longest = make_task("repl_s5", max_depth=6, reveal_prob=1.0, hidden_prob=1.0)
    full = longest.sample(np.random.default_rng(0), np.full(20, 6))
    assert (full["tokens"] != 0).sum(axis=1).max() == longest.seq_len  # seq_len is tight


# ------------------------------------------------------------------------------------------
# The Bayes-optimal predictor
# ------------------------------------------------------------------------------------------


def brute_force(trace: list[tuple[str, str | None]], n_vars: int) -> np.ndarray:
    """P(value | earlier answers) by enumerating every outcome of every hidden step: each
    outcome is run with exec (random() replaying it), weighted, and kept while it agrees with
    every value printed so far."""
    hidden = sum(s.startswith("if random()") for s, _ in trace)
    printed = [v for _, out in trace if out is not None for v in out.split(" ")]
    runs = []
    for outcome in itertools.product([True, False], repeat=hidden):
        draws = iter([0.0 if taken else 0.99 for taken in outcome])
        values: list[str] = []
        namespace = {
            "__builtins__": {},
            "random": draws.__next__,
            "print": lambda *args, out=values: out.extend(str(a) for a in args),
        }
        for statement, _ in trace:
            exec(compile(statement + "\n", "<repl>", "single"), namespace)
        weight = np.prod([COIN if taken else 1 - COIN for taken in outcome])
        runs.append((weight, values))
    rows = []
    for j in range(len(printed)):
        alive = [(w, v) for w, v in runs if v[:j] == printed[:j]]
        total = sum(w for w, _ in alive)
        rows.append(
            [sum(w for w, v in alive if v[j] == str(x)) / total for x in range(1, n_vars + 1)]
        )
    return np.array(rows)


@pytest.mark.parametrize(("group", "n_vars"), [("sym", 3), ("sym", 4), ("alt", 4), ("cyclic", 3)])
def test_bayes_filter_matches_brute_force_enumeration(group, n_vars):
    checked = 0
    for seed in range(25):
        trace = repl_trace(
            group, n_vars, 1 + seed % 9, 0.4, seed, hidden_prob=0.6, print_count=1 + seed % n_vars
        )
        if sum(s.startswith("if") for s, _ in trace) > 9:
            continue
        np.testing.assert_allclose(
            optimal_predictions(trace, n_vars), brute_force(trace, n_vars), atol=1e-12
        )
        checked += 1
    assert checked >= 20


def test_bayes_filter_is_certain_without_hidden_steps_and_uncertain_with_them():
    trace = repl_trace("sym", 5, 12, 0.5, 2)
    probs = optimal_predictions(trace, 5)
    printed = [int(v) for _, out in trace if out is not None for v in out.split(" ")]
    assert np.array_equal(probs.argmax(axis=1) + 1, printed) and (probs.max(axis=1) == 1).all()
    trace = [
        ("a, b = 1, 2", None),
        (f"if random() < {COIN}: a, b = b, a", None),
        ("print(a, b)", "2 1"),
    ]
    np.testing.assert_allclose(optimal_predictions(trace, 2), [[0.5, 0.5], [1.0, 0.0]])


def test_bayes_filter_refuses_a_contradiction():
    trace = [("a, b = 1, 2", None), ("print(a)", "2")]
    with pytest.raises(ValueError, match="printed '2', which has probability 0"):
        optimal_predictions(trace, 2)


# ------------------------------------------------------------------------------------------
# DeltaNet
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 16, 64])
@pytest.mark.parametrize("beta_max", [1.0, 2.0])
def test_chunked_delta_rule_equals_the_recurrence_across_calls(chunk_size, beta_max):
    gen = torch.Generator().manual_seed(chunk_size)
    batch, heads, seq_len, dk, dv = 2, 3, 37, 4, 5
    q, k = (
        torch.randn(batch, heads, seq_len, dk, generator=gen, dtype=torch.float64) for _ in range(2)
    )
    k = F.normalize(k, dim=-1)
    v = torch.randn(batch, heads, seq_len, dv, generator=gen, dtype=torch.float64)
    beta = beta_max * torch.rand(batch, heads, seq_len, generator=gen, dtype=torch.float64)
    s0 = torch.randn(batch, heads, dv, dk, generator=gen, dtype=torch.float64)
    want_o, want_s = delta_rule_recurrent(q, k, v, beta, s0)
    # Two calls (split at 15) carrying the state must equal one call of the recurrence.
    parts, state = [], s0
    for span in (slice(0, 15), slice(15, seq_len)):
        o, state = delta_rule_chunked(
            q[:, :, span], k[:, :, span], v[:, :, span], beta[:, :, span], state, chunk_size
        )
        parts.append(o)
    torch.testing.assert_close(torch.cat(parts, dim=2), want_o, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(state, want_s, rtol=1e-10, atol=1e-10)


def test_negative_eigenvalues_reach_a_reflection():
    # beta = 2 with a unit key: I - 2 k k^T is a reflection (eigenvalue -1 along k).
    k = F.normalize(torch.randn(1, 1, 1, 4, dtype=torch.float64), dim=-1)
    s0 = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    _, s1 = delta_rule_recurrent(
        k,
        k,
        torch.zeros(1, 1, 1, 3, dtype=torch.float64),
        torch.full((1, 1, 1), 2.0, dtype=torch.float64),
        s0,
    )
    torch.testing.assert_close(s1 @ k[0, 0, 0], -(s0 @ k[0, 0, 0]))
    model = make_backbone("deltanet_neg", 8, 1)
    assert (
        model.layers[0].beta_scale == 2.0
        and make_backbone("deltanet", 8, 1).layers[0].beta_scale == 1.0
    )


@pytest.mark.parametrize("name", ["deltanet", "deltanet_neg"])
def test_deltanet_layers_chunked_recurrent_and_streamed_agree(name):
    torch.manual_seed(0)
    model = make_backbone(name, 16, 2, chunk_size=4).double().eval()
    x = torch.randn(3, 21, 16, dtype=torch.float64)
    with torch.no_grad():
        whole, _ = model(x)
        stepwise, _ = model(x, recurrent=True)
        first, state = model(x[:, :9])
        second, _ = model(x[:, 9:], state)
    torch.testing.assert_close(stepwise, whole)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


# ------------------------------------------------------------------------------------------
# The sweep end to end
# ------------------------------------------------------------------------------------------


def test_statetracking_command_writes_table_json_and_plot(tmp_path):
    argv = [
        "--models",
        "lstm:1,deltanet_neg:1",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--eval-lengths",
        "2,9",
    ]
    argv += [
        "--train-max-len",
        "3",
        "--eval-samples",
        "8",
        "--param-budget",
        "3000",
        "--workers",
        "1",
        "--seeds",
        "3,4",
    ]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["task"], r["backbone"], r["seed"]) for r in results["runs"]] == [
        (label, model, seed)
        for label in ("S3 dense", "S3 sparse", "S3 hidden")
        for model in ("lstm", "deltanet_neg")
        for seed in (3, 4)
    ]
    # A seed draws its own evaluation traces: the two optima differ.
    hidden = [r["scores"]["9"] for r in results["runs"][-2:]]
    assert all(0 < h["optimum_all"] < 1 and h["optimum_loss"] > 0 for h in hidden)
    assert hidden[0]["optimum_loss"] != hidden[1]["optimum_loss"]
    assert "optimum_all" not in results["runs"][0]["scores"]["9"]
    table = (tmp_path / "table.md").read_text()
    assert "| 2 | 9* |" in table and "| *Bayes optimum* |" in table
    assert "mean of 2 seeds (min–max)" in table
    assert table.count("| lstm x1 | ") == 3 + 1  # one row per setting, and one against the optimum
    assert (tmp_path / "accuracy_vs_length.png").read_bytes()[:4] == b"\x89PNG"


def test_rows_of_several_seeds_become_their_mean_and_range():
    def run(backbone, seed, accuracy, loss):
        scores = {"4": {"final": accuracy, "all": accuracy, "loss": loss}}
        return {
            "task": "S5 sparse",
            "backbone": backbone,
            "n_layers": 2,
            "seed": seed,
            "accuracy": {"4": accuracy},
            "scores": scores,
        }

    rows = mean_over_seeds(
        [run("lstm", 0, 0.5, 1.0), run("deltanet", 0, 0.9, 0.2), run("lstm", 1, 0.7, 0.6)]
    )
    assert [(r["backbone"], r["seeds"]) for r in rows] == [("lstm", [0, 1]), ("deltanet", [0])]
    assert rows[0]["accuracy"]["4"] == pytest.approx(0.6)
    assert rows[0]["scores"]["4"]["loss"] == pytest.approx(0.8)
    assert rows[0]["accuracy_range"] == {"4": [0.5, 0.7]}
    assert "accuracy_range" not in rows[1] and "seed" not in rows[0]


def test_statetracking_command_rejects_repeated_seeds(capsys):
    assert main(["--out", "x", "--seeds", "1,1"]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err


def test_statetracking_command_rejects_unknown_backbones(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x", "--models", "gru:1"])
    assert "unknown backbone 'gru'" in capsys.readouterr().err


def test_seeded_traces_are_reproducible_and_vary_with_the_seed():
    assert repl_trace("sym", 5, 9, 0.5, 11, 0.3) == repl_trace("sym", 5, 9, 0.5, 11, 0.3)
    assert repl_trace("sym", 5, 9, 0.5, 11) != repl_trace("sym", 5, 9, 0.5, 12)
    # The hidden outcomes are Python's own random(), as a real REPL would draw them after seed(11).
    coins = random.Random(11)
    trace = repl_trace("sym", 2, 6, 1.0, 11, hidden_prob=1.0)
    state = [int(x) for x in trace[0][0].split(" = ")[1].split(", ")]
    for _, out in trace[1:]:
        if out is None:
            state = state[::-1] if coins.random() < COIN else state
        else:
            assert out == " ".join(map(str, state))


def test_rotary_transformer_is_causal_and_has_no_length_limit():
    torch.manual_seed(0)
    model = make_backbone("transformer", 12, 1, max_len=4, rotary=True).eval()
    assert model.pos is None
    x = torch.randn(2, 10, 12)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(2, 5, 12)
    with torch.no_grad():
        y, y2 = model(x)[0], model(x2)[0]
    torch.testing.assert_close(y[:, :5], y2[:, :5], rtol=0, atol=1e-5)


def test_a_sweep_resumes_keeping_its_runs_and_refuses_another_sweeps_folder(tmp_path, capsys):
    argv = ["--models", "lstm:1", "--steps", "2", "--batch-size", "4", "--eval-lengths", "2"]
    argv += ["--train-max-len", "2", "--eval-samples", "4", "--param-budget", "2000"]
    argv += ["--workers", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    path = tmp_path / "results.json"
    first = json.loads(path.read_text())
    # Interrupted after its first run: only that run stays in the file.
    write = {**first, "runs": first["runs"][:1], "wall_seconds": 1000.0}
    path.write_text(json.dumps(write))
    capsys.readouterr()
    assert main([*argv, "--threads", "1"]) == 0  # a runtime field may change
    assert "kept 1 of 3 runs" in capsys.readouterr().out
    again = json.loads(path.read_text())
    assert again["runs"] == first["runs"]  # the same seeds: the same results
    assert again["wall_seconds"] >= 1000.0  # the earlier invocation's wall time and this one's
    assert main([*argv, "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "is from another sweep (it differs in steps)" in err and "results.json" in err
    assert json.loads(path.read_text())["runs"] == first["runs"]  # nothing lost
    path.write_text("{not json")
    assert main(argv) == 2
    assert "not a statetracking results.json" in capsys.readouterr().err
