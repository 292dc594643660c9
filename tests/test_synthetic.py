"""Serial-depth benchmarks: generators against reference interpreters, backbones' causality and training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from ghframes.training.synthetic.__main__ import main
from ghframes.training.synthetic.backbones import BACKBONES, make_backbone, mamba
from ghframes.training.synthetic.backbones.mamba import SelectiveScan, parallel_scan
from ghframes.training.synthetic.experiment import (
    WIDTH_STEP,
    SequenceModel,
    SweepConfig,
    build_model,
    build_task,
    fit_width,
    num_params,
)
from ghframes.training.synthetic.tasks import FRJT, IGNORE, Maze, make_task, run_frjt, run_maze

# ------------------------------------------------------------------------------------------
# FRJT
# ------------------------------------------------------------------------------------------


def test_frjt_reference_interpreter_on_a_hand_written_program():
    NOP, HALT = 0, 4
    # pc0 SET 1: r=1 odd, skip pc1 | pc2 NOP: r still 1, skip pc3 | pc4 SET 2: r=2 even
    # pc5 NOP: r=2, next | pc6 HALT. The decoy HALT at pc1 and the SET 3 at pc7 never run.
    program = [1, HALT, NOP, 3, 2, NOP, HALT, 3]
    assert run_frjt(program) == (2, 4, [0, 2, 4, 5])
    task = FRJT(max_depth=4)
    assert task.trace(np.array([program + [task.query]]))[0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 2]
    assert task.describe(np.array(program + [task.query])) == "=1 H . =3 =2 . H =3 ?"


def test_frjt_streaming_trace_matches_reference_on_random_programs():
    # Arbitrary programs, not only generated ones: HALTs anywhere, or none so that pc runs off the end.
    task = FRJT(max_depth=10)
    rng = np.random.default_rng(0)
    for _ in range(300):
        program = rng.integers(0, task.num_values + 1, size=rng.integers(1, 30)).tolist()
        reg, _, executed = run_frjt(program)
        trace = task.trace(np.array([program]))[0]
        assert trace[-1] == reg
        for t in range(len(program)):
            # Position t is labelled with the register after the executed instructions at <= t:
            # the last SET among them, or 0.
            sets = [program[p] for p in executed if p <= t and program[p] != 0]
            assert trace[t] == (sets[-1] if sets else 0)


def test_frjt_generated_answers_and_depths_match_reference():
    task = FRJT(max_depth=24)
    rng = np.random.default_rng(1)
    depths = rng.integers(1, 25, size=400)
    batch = task.sample(rng, depths)
    assert batch["tokens"].shape == (400, task.seq_len)
    for tokens, targets, depth in zip(
        batch["tokens"], batch["targets"], batch["depth"], strict=True
    ):
        assert tokens[-1] == task.query
        reg, executed_depth, _ = run_frjt(tokens[:-1].tolist(), task.num_values)
        assert executed_depth == depth
        assert targets[-1] == reg


@pytest.mark.parametrize("max_depth", [8, 16, 40])
def test_frjt_depth_is_exact_and_independent_of_length(max_depth):
    task = FRJT(max_depth=max_depth)
    rng = np.random.default_rng(max_depth)
    for depth in (1, 2, 5, 8):
        batch = task.sample(rng, np.full(50, depth))
        assert batch["tokens"].shape[1] == 2 * max_depth + 2  # fixed by max_depth alone
        assert {run_frjt(t[:-1].tolist())[1] for t in batch["tokens"]} == {depth}
    # Deepest programs still fit: the chain ends on the HALT it was given, never off the end.
    deepest = task.sample(rng, np.full(50, max_depth))["tokens"]
    assert all(run_frjt(t[:-1].tolist())[1] == max_depth for t in deepest)
    # Filler carries decoy HALTs, so "find the first HALT" is not the answer.
    assert (deepest[:, :max_depth] == task.halt).any()


# ------------------------------------------------------------------------------------------
# Maze
# ------------------------------------------------------------------------------------------


def decode_maze(task: Maze, tokens: np.ndarray) -> tuple[list[str], str]:
    """Grid rows of '.#S' and the move string, read straight from the token ids."""
    # Token of cell i is 3 * i + content: subtracting 3 * i also checks that cells come in order.
    cells = "".join(".#S"[int(t) - 3 * i] for i, t in enumerate(tokens[: task.cells]))
    grid = [cells[r * task.width : (r + 1) * task.width] for r in range(task.height)]
    names = {v: k for k, v in task.move_tokens.items()}
    moves = "".join(names[int(t)] for t in tokens[task.cells : -1] if int(t) in names)
    return grid, moves


def test_maze_reference_interpreter_on_a_hand_written_maze():
    grid = ["S.#", ".##", "..."]
    # R: (0,1); R: wall, stays; D: wall, stays; L: (0,0); U: off the grid, stays; D D R R: (2,2)
    assert run_maze(grid, "RRDLUDDRR") == ((2, 2), 9)


@pytest.mark.parametrize("size", [3, 5])
def test_maze_generated_answers_and_probes_match_reference(size):
    task = Maze(max_depth=20, height=size, width=size)
    rng = np.random.default_rng(size)
    batch = task.sample(rng, rng.integers(1, 21, size=200))
    bumps = 0
    for tokens, targets, depth in zip(
        batch["tokens"], batch["targets"], batch["depth"], strict=True
    ):
        grid, moves = decode_maze(task, tokens)
        assert len(moves) == depth
        assert (targets[: task.cells] == IGNORE).all()
        (row, col), _ = run_maze(grid, moves)
        assert targets[-1] == row * size + col
        for k in range(1, depth + 1):  # the probe after move k
            (row, col), _ = run_maze(grid, moves[:k])
            assert targets[task.cells + k - 1] == row * size + col
        bumps += sum(
            run_maze(grid, moves[:k])[0] == run_maze(grid, moves[: k + 1])[0] for k in range(depth)
        )
    assert bumps > 0  # walls do block some moves, so the task is not a plain sum of moves


def test_maze_depth_is_exact_independent_of_length_and_position_is_never_shown():
    for max_depth in (10, 30):
        task = Maze(max_depth=max_depth)
        batch = task.sample(np.random.default_rng(0), np.full(40, 7))
        assert batch["tokens"].shape[1] == task.cells + max_depth + 1
        after_grid = batch["tokens"][:, task.cells :]
        assert (after_grid >= 3 * task.cells).all()  # only moves, NOOP and QUERY after the grid
        assert ((after_grid[:, :-1] != task.noop).sum(axis=1) == 7).all()


@pytest.mark.parametrize("name", ["frjt", "maze"])
def test_generators_are_deterministic_under_a_seed(name):
    task = make_task(name, max_depth=12)
    depths = np.arange(1, 13)
    a = task.sample(np.random.default_rng(7), depths)
    b = task.sample(np.random.default_rng(7), depths)
    c = task.sample(np.random.default_rng(8), depths)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["tokens"], c["tokens"])


def test_generators_reject_depths_outside_their_capacity():
    with pytest.raises(ValueError, match=r"frjt: depths must lie in \[1, 4\], got 1..5"):
        FRJT(max_depth=4).sample(np.random.default_rng(0), np.array([1, 5]))
    with pytest.raises(
        ValueError,
        match="unknown task 'sudoku'; valid names: frjt, maze, repl_a4, repl_s3, repl_s5, repl_z5",
    ):
        make_task("sudoku")


# ------------------------------------------------------------------------------------------
# Backbones
# ------------------------------------------------------------------------------------------

SMALL = {  # n_layers per backbone
    "transformer": 2,
    "mamba": 2,
    "lstm": 1,
    "residual_lstm": 2,
    "deltanet": 2,
    "deltanet_neg": 2,
}


def test_registry_lists_valid_names_on_error():
    assert set(SMALL) == set(BACKBONES)
    with pytest.raises(
        ValueError,
        match="unknown backbone 'rwkv'; valid names: deltanet, deltanet_neg, lstm, mamba, residual_lstm, transformer",
    ):
        make_backbone("rwkv", 16, 1)


@pytest.mark.parametrize("seq_len", [1, 2, 3, 7, 16, 33, 66, 100])
def test_parallel_scan_matches_the_sequential_recurrence(seq_len):
    gen = torch.Generator().manual_seed(seq_len)
    a = torch.rand(3, seq_len, 4, 2, generator=gen)
    b = torch.randn(3, seq_len, 4, 2, generator=gen)
    h, expected = torch.zeros(3, 4, 2), []
    for t in range(seq_len):
        h = a[:, t] * h + b[:, t]
        expected.append(h)
    torch.testing.assert_close(parallel_scan(a, b), torch.stack(expected, dim=1))


class CountOps(TorchFunctionMode):
    """Counts the torch operations called while it is active (forward code only: autograd's
    backward runs outside the mode)."""

    def __init__(self):
        super().__init__()
        self.calls: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        self.calls[name] = self.calls.get(name, 0) + 1
        return func(*args, **(kwargs or {}))


def test_mamba_scan_is_parallel_not_a_loop_over_time(monkeypatch):
    # The scan's sequential steps grow with log2(T): one strided multiply-add per level.
    for seq_len in (1000, 4096):
        with CountOps() as ops:
            parallel_scan(torch.rand(2, seq_len, 3), torch.randn(2, seq_len, 3))
        levels = ops.calls.get("addcmul_", 0) + ops.calls.get("mul_", 0)
        assert levels <= 3 * np.ceil(np.log2(seq_len)), (seq_len, ops.calls)
    # A whole block: 16x the sequence adds a handful of scan levels, not a step per position.
    torch.manual_seed(0)
    model = make_backbone("mamba", 16, 1)
    counts = {}
    for seq_len in (64, 1024):
        with torch.no_grad(), CountOps() as ops:
            model(torch.randn(1, seq_len, 16))
        counts[seq_len] = sum(ops.calls.values())
    assert counts[1024] - counts[64] < 100, counts
    # The hand-written backward is the same scan run backwards in time, over all T at once.
    scan, scans = mamba._scan_in_place, []

    def counting_scan(a, b):
        scans.append(b.shape[1])
        return scan(a, b)

    monkeypatch.setattr(mamba, "_scan_in_place", counting_scan)
    u, dt, b_in, c_out = (torch.randn(1, 300, 2) for _ in range(4))
    args = [u, dt.abs(), -torch.rand(2, 2), b_in, c_out]
    SelectiveScan.apply(*[x.requires_grad_() for x in args]).sum().backward()
    assert scans == [300, 300]


@pytest.mark.parametrize("seq_len", [1, 2, 5, 12])
def test_selective_scan_gradients_match_the_sequential_recurrence(seq_len):
    # Its backward pass is hand-derived (a reversed-time scan): check values and all five
    # gradients against autograd through a plain loop, in float64.
    gen = torch.Generator().manual_seed(seq_len)
    batch, d_inner, d_state = 2, 3, 2
    args = [
        torch.randn(batch, seq_len, d_inner, generator=gen),  # u
        torch.rand(batch, seq_len, d_inner, generator=gen),  # dt > 0
        -torch.rand(d_inner, d_state, generator=gen) - 0.1,  # A < 0
        torch.randn(batch, seq_len, d_state, generator=gen),  # B
        torch.randn(batch, seq_len, d_state, generator=gen),  # C
    ]
    args = [x.double().requires_grad_() for x in args]

    def reference(u, dt, A, b_in, c_out):
        h, ys = torch.zeros(batch, d_inner, d_state, dtype=torch.float64), []
        for t in range(seq_len):
            h = (
                torch.exp(dt[:, t, :, None] * A) * h
                + (dt[:, t] * u[:, t])[..., None] * b_in[:, t, None, :]
            )
            ys.append((h * c_out[:, t, None, :]).sum(-1))
        return torch.stack(ys, dim=1)

    y, expected = SelectiveScan.apply(*args), reference(*args)
    torch.testing.assert_close(y, expected)
    weights = torch.randn_like(y)
    grads = torch.autograd.grad((y * weights).sum(), args)
    expected_grads = torch.autograd.grad((expected * weights).sum(), args)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_is_causal(name):
    torch.manual_seed(0)
    model = make_backbone(name, 16, SMALL[name]).eval()
    x = torch.randn(2, 12, 16)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 6, 16)
    with torch.no_grad():
        y, y2 = model(x)[0], model(x2)[0]
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, :6], y2[:, :6], rtol=0, atol=1e-5)
    assert (y[:, 6:] - y2[:, 6:]).abs().max() > 1e-3  # the later outputs do see the change


@pytest.mark.parametrize("name", ["lstm", "residual_lstm", "deltanet", "deltanet_neg"])
def test_recurrent_state_carries_across_calls(name):
    # A streaming trainer feeds windows one after another; the result must equal one long call.
    torch.manual_seed(0)
    model = make_backbone(name, 16, 2).eval()
    x = torch.randn(3, 10, 16)
    with torch.no_grad():
        whole, _ = model(x)
        first, state = model(x[:, :4])
        second, _ = model(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, rtol=0, atol=1e-5)


def test_residual_lstm_learns_its_initial_state():
    model = make_backbone("residual_lstm", 8, 3)
    h, c = model.initial_state(5)
    assert h.shape == c.shape == (3, 5, 8)
    y, _ = model(torch.randn(5, 4, 8))
    y.sum().backward()
    assert model.h0.grad is not None and model.h0.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_trains_with_falling_loss(name):
    torch.manual_seed(0)
    task = FRJT(max_depth=4)
    batch = task.sample(np.random.default_rng(0), np.arange(32) % 4 + 1)
    tokens, targets = torch.from_numpy(batch["tokens"]), torch.from_numpy(batch["targets"])
    model = SequenceModel(name, SMALL[name], 32, task.vocab_size, task.num_classes, task.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        _, loss = model(tokens, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_fit_width_picks_the_closest_parameter_count():
    def build(width):
        return SequenceModel("lstm", 1, width, 6, 4, 10)

    width = fit_width(build, 30_000)
    gap = abs(num_params(build(width)) - 30_000)
    assert width % WIDTH_STEP == 0
    assert gap <= abs(num_params(build(width - WIDTH_STEP)) - 30_000)
    assert gap <= abs(num_params(build(width + WIDTH_STEP)) - 30_000)


@pytest.mark.parametrize(("budget", "tolerance"), [(20_000, 0.2), (100_000, 0.08)])
def test_every_default_model_is_built_near_the_budget(budget, tolerance):
    """Comparable sizes: every model of the sweep lands near the parameter budget. At 20k the
    8-layer Transformer is the farthest off: 16k at width 12, 27k at width 16."""
    cfg = SweepConfig(param_budgets=(budget,))
    for task_name in cfg.tasks:
        task = build_task(task_name, cfg)
        for backbone, n_layers in cfg.models:
            params = num_params(build_model(backbone, n_layers, task, cfg))
            assert abs(params - budget) <= tolerance * budget, (
                task_name,
                backbone,
                n_layers,
                params,
            )


# ------------------------------------------------------------------------------------------
# The sweep end to end
# ------------------------------------------------------------------------------------------


def test_sweep_command_writes_table_json_and_plot(tmp_path):
    argv = [
        "--models",
        "lstm:1,transformer:1",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--eval-depths",
        "1,3",
    ]
    argv += ["--train-max-depth", "2", "--param-budgets", "3000,6000", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    assert [(r["task"], r["param_budget"], r["backbone"]) for r in results["runs"]] == [
        (task, budget, backbone)
        for task in ("frjt", "maze")
        for budget in (3000, 6000)
        for backbone in ("lstm", "transformer")
    ]
    for small, large in zip(results["runs"][0::4], results["runs"][2::4], strict=True):
        assert small["params"] < large["params"]  # the size sweep builds bigger models
    assert all(set(r["accuracy"]) == {"1", "3"} for r in results["runs"])
    table = (tmp_path / "two" / "table.md").read_text()
    assert "| lstm x1 @3k |" in table and "| lstm x1 @6k |" in table
    assert "| 1 | 3* |" in table
    assert (tmp_path / "two" / "accuracy_vs_depth.png").read_bytes()[:4] == b"\x89PNG"
    # Same seed in one process: the same numbers, whatever the process layout.
    assert main([*argv, "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    again = json.loads((tmp_path / "one" / "results.json").read_text())
    strip = ("train_seconds",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in again["runs"]] == [
        {k: v for k, v in r.items() if k not in strip} for r in results["runs"]
    ]


def test_sweep_command_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--out", "x", "--models", "gru:1"])
    assert exc.value.code == 2
    assert (
        "unknown backbone 'gru'; valid names: deltanet, deltanet_neg, lstm, mamba, residual_lstm, transformer"
        in capsys.readouterr().err
    )


def test_sweep_command_points_repl_tasks_to_statetracking(capsys):
    assert main(["--out", "x", "--tasks", "repl_s5"]) == 2
    err = capsys.readouterr().err
    assert "repl_s5 is a REPL-trace task" in err and "synthetic.statetracking" in err
