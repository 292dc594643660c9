"""The action model: shapes, presets, causality, resets, the fused cell embedding, colour,
optimizer groups."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from ghframes.errors import GhframesError
from ghframes.training.metrics import Accumulator, action_kind, positions
from ghframes.training.model import (
    COLOUR_PLANES,
    PRESETS,
    ActionModel,
    Fovea,
    ModelConfig,
    colour_planes,
    model_config,
    num_params,
)
from ghframes.training.optim import Optimizers, lr_multiplier, split_parameters

SMALL = ModelConfig(
    char_vocab=20, action_vocab=11, rows=8, cols=16, merge_dims=(8, 16), stage_blocks=(1, 1), heads=2,
    d_model=16, lstm_layers=2,
)  # fmt: skip


def random_batch(cfg: ModelConfig, b: int, t: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "frames": torch.randint(0, cfg.char_vocab, (b, t, cfg.rows, cfg.cols), generator=g),
        "cursor": torch.stack(
            [
                torch.randint(0, cfg.rows, (b, t), generator=g),
                torch.randint(0, cfg.cols + 1, (b, t), generator=g),
            ],
            -1,
        ),
        "actions": torch.randint(0, cfg.action_vocab, (b, t), generator=g),
        "reset": torch.zeros(b, t, dtype=torch.bool),
        "mask": torch.ones(b, t, dtype=torch.bool),
        **{
            p: torch.randint(0, v, (b, t, cfg.rows, cfg.cols), generator=g, dtype=torch.uint8)
            for p, v in COLOUR_PLANES.items()
        },
    }


def run(model: ActionModel, batch: dict, **kwargs):
    """model(...) on a batch: frames, cursor and its colour planes."""
    return model(batch["frames"], batch["cursor"], **kwargs, **colour_planes(batch))


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_forward_shapes_and_loss():
    torch.manual_seed(0)
    model = ActionModel(SMALL)
    batch = random_batch(SMALL, 3, 5)
    logits, loss = run(model, batch, actions=batch["actions"], mask=batch["mask"])
    assert logits.shape == (3, 5, SMALL.action_vocab)
    expected = F.cross_entropy(logits.flatten(0, 1), batch["actions"].flatten())
    assert torch.allclose(loss, expected)
    logits, loss = run(model, batch)
    assert loss is None and logits.shape == (3, 5, SMALL.action_vocab)


def test_masked_steps_do_not_count():
    torch.manual_seed(0)
    model = ActionModel(SMALL)
    batch = random_batch(SMALL, 2, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    logits, loss = run(model, batch, actions=batch["actions"], mask=mask)
    expected = F.cross_entropy(logits[mask], batch["actions"][mask])
    assert torch.allclose(loss, expected)


def test_presets_parameter_counts():
    paper = ActionModel(PRESETS["paper"])
    assert 80e6 <= num_params(paper) <= 84e6  # "about 82M"
    assert PRESETS["paper"].grid == (12, 40)  # 48x160 -> 24x80 -> 12x40
    assert PRESETS["tiny"].colour and PRESETS["paper"].colour  # both see colour by default
    # colour: fg, bg and attrs tables (4 sub-positions each) at the cells, one each in the fovea
    colour_tables = 4 * 576 * 16 + 576 * 16
    monochrome = num_params(ActionModel(model_config("tiny", action_vocab=11, colour=False)))
    assert monochrome == 482_363  # the tiny model before colour existed
    assert num_params(ActionModel(model_config("tiny", action_vocab=11))) == 482_363 + colour_tables


def test_a_monochrome_model_is_the_model_before_colour():
    """colour=False: the same parameters, initial weights and outputs as before colour existed
    (figures of the tiny preset at seed 0, computed by the model of then), colour planes ignored."""
    cfg = model_config("tiny", action_vocab=11, colour=False)
    torch.manual_seed(0)
    model = ActionModel(cfg).eval()
    assert not any("colours" in name for name in model.state_dict())
    batch = random_batch(cfg, 2, 3)
    with torch.no_grad():
        logits, _ = model(batch["frames"], batch["cursor"])
        assert torch.equal(run(model, batch)[0], logits)  # colour planes make no difference
    assert logits.double().sum().item() == pytest.approx(-4.3992687105201185, rel=1e-6, abs=1e-6)
    expected = [0.16506442427635193, -0.6064617037773132, -0.02463957667350769, 0.8180709481239319]
    assert logits[0, 0, :4].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    expected = [0.20590096712112427, -0.08910724520683289, 0.06960559636354446]
    assert logits[1, 2, -3:].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_a_colour_model_without_colour_planes_says_so():
    model = ActionModel(SMALL)
    batch = random_batch(SMALL, 1, 2)
    with pytest.raises(
        GhframesError,
        match=r"^the model sees colour \(colour=true\) but its input has no bg, attrs: pass fg, bg "
        r"and attrs, or use a model with colour=false$",
    ):
        model(batch["frames"], batch["cursor"], fg=batch["fg"])


def test_model_config_errors_name_the_value():
    with pytest.raises(
        GhframesError, match=r"^unknown model preset 'huge'; valid presets: paper, tiny$"
    ):
        model_config("huge")
    with pytest.raises(GhframesError, match=r"^model config: d_model must be >= 1, got 0$"):
        dataclasses.replace(SMALL, d_model=0)
    with pytest.raises(GhframesError, match=r"cannot be halved 3 times"):
        dataclasses.replace(SMALL, rows=12)
    with pytest.raises(
        GhframesError, match=r"^model config: transformer width 16 is not divisible by heads=3$"
    ):
        dataclasses.replace(SMALL, heads=3)


@pytest.mark.parametrize("plane", ["frames", *COLOUR_PLANES])
def test_causal_in_time(plane):
    """The logits at step t do not depend on any frame (characters or colours) after t."""
    torch.manual_seed(0)
    model = ActionModel(SMALL).eval()
    batch = random_batch(SMALL, 2, 6)
    changed = {k: v.clone() for k, v in batch.items()}
    values = SMALL.char_vocab if plane == "frames" else COLOUR_PLANES[plane]
    changed[plane][:, 4:] = ((changed[plane][:, 4:].long() + 1) % values).to(batch[plane].dtype)
    a, _ = run(model, batch)
    b, _ = run(model, changed)
    assert torch.equal(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_reset_restarts_from_learned_initial_state():
    """A reset at step t makes row b's outputs from t on equal to a fresh run from t."""
    torch.manual_seed(0)
    model = ActionModel(SMALL).double()
    with torch.no_grad():
        model.lstm.h0.normal_()  # a non-zero learned state, so a reset to zeros would be caught
        model.lstm.c0.normal_()
    x = torch.randn(2, 7, SMALL.d_model, dtype=torch.double)
    reset = torch.zeros(2, 7, dtype=torch.bool)
    reset[0, 3] = True
    carried = (
        torch.randn(2, 2, SMALL.d_model, dtype=torch.double),
        torch.randn(2, 2, SMALL.d_model, dtype=torch.double),
    )
    y, _ = model.core(x, carried, reset)
    fresh, _ = model.core(x[:1, 3:], None)
    assert torch.allclose(y[:1, 3:], fresh, atol=1e-12)
    unreset, _ = model.core(x[1:], (carried[0][:, 1:], carried[1][:, 1:]))
    assert torch.allclose(y[1:], unreset, atol=1e-12)  # row 1 never reset


def test_cursor_is_seen():
    torch.manual_seed(0)
    model = ActionModel(SMALL)
    batch = random_batch(SMALL, 1, 1)
    moved = batch["cursor"].clone()
    moved[..., 1] = (moved[..., 1] + 1) % SMALL.cols
    a = model.embed(batch["frames"], batch["cursor"], **colour_planes(batch))
    b = model.embed(batch["frames"], moved, **colour_planes(batch))
    assert not torch.allclose(a, b)
    outside = torch.tensor([[[0, SMALL.cols]]])  # cursor past the last column: no mark, no error
    model.embed(batch["frames"], outside, **colour_planes(batch))


def test_fovea_reads_the_cells_at_and_before_the_cursor():
    """The fovea sees exactly the cursor's cell and the `fovea - 1` cells left of it on its row,
    characters and colours; cells left of column 0 read as blank with default colours, and a
    cursor past the last column is no error."""
    torch.manual_seed(0)
    fovea = Fovea(char_vocab=20, size=4, dim=3, out=5, colour=True)
    vocabs = [20, *COLOUR_PLANES.values()]
    planes = [torch.randint(1, v, (1, 8, 16)) for v in vocabs]  # frames, fg, bg, attrs
    cursor = torch.tensor([[2, 6]])
    base = fovea(planes[0], cursor, tuple(planes[1:]))
    for p, v in enumerate(vocabs):
        for (r, c), seen in {
            (2, 6): True,
            (2, 3): True,
            (2, 2): False,
            (2, 7): False,
            (3, 6): False,
        }.items():
            changed = [x.clone() for x in planes]
            changed[p][0, r, c] = changed[p][0, r, c] % (v - 1) + 1
            out = fovea(changed[0], cursor, tuple(changed[1:]))
            assert torch.allclose(out, base) != seen, (p, r, c)
    at_left = fovea(planes[0], torch.tensor([[2, 1]]), tuple(planes[1:]))
    shifted = [torch.cat([torch.zeros(1, 8, 2, dtype=torch.long), x], 2)[:, :, :16] for x in planes]
    off_screen = fovea(shifted[0], torch.tensor([[2, 3]]), tuple(shifted[1:]))
    assert torch.allclose(at_left, off_screen)  # off-screen = blank, default colours
    fovea(planes[0], torch.tensor([[7, 16]]), tuple(planes[1:]))  # past the last column
    assert ActionModel(dataclasses.replace(SMALL, fovea=0)).frame_head.fovea is None


@pytest.mark.parametrize("colour", [True, False], ids=["colour", "monochrome"])
def test_cell_embedding_is_per_cell_embedding_then_linear_merge(colour):
    """The fused first stage computes: cell embedding (character, with colour + fg + bg +
    attributes) + 2-D position + cursor mark, then a linear 2x2 patch merge (the documented
    equivalence), for tables derived from those parts."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMALL, colour=colour)
    v, e, d = cfg.char_vocab, 5, cfg.merge_dims[0]
    emb, row_pos, col_pos = torch.randn(v, e), torch.randn(cfg.rows, e), torch.randn(cfg.cols, e)
    mark, merge_w, merge_b = torch.randn(e), torch.randn(d, 4 * e), torch.randn(d)
    colour_emb = {p: torch.randn(values, e) for p, values in COLOUR_PLANES.items()}
    batch = random_batch(cfg, 2, 3)
    frames, cursor = batch["frames"].flatten(0, 1), batch["cursor"].flatten(0, 1)
    planes = {p: batch[p].flatten(0, 1) for p in COLOUR_PLANES} if colour else {}
    # Explicit: (N, R, C, e) cells, patches concatenated in (dr, dc) order, then the linear merge.
    cells = emb[frames] + row_pos[:, None] + col_pos[None, :]
    for p, plane in planes.items():
        cells = cells + colour_emb[p][plane.long()]
    on = (torch.arange(cfg.rows) == cursor[:, :1]).unsqueeze(2) & (
        torch.arange(cfg.cols) == cursor[:, 1:]
    ).unsqueeze(1)
    cells = cells + on.unsqueeze(-1) * mark
    n, h, w = cells.shape[0], cfg.rows // 2, cfg.cols // 2
    patches = cells.view(n, h, 2, w, 2, e).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, 4 * e)
    explicit = patches @ merge_w.T + merge_b
    # Fused tables from the same parts: W_k is the block of the merge acting on sub-position k.
    model = ActionModel(cfg)
    cell = model.frame_head.cells
    blocks = merge_w.view(d, 4, e)  # (D, k, e)
    with torch.no_grad():
        cell.chars.weight.copy_(torch.cat([emb @ blocks[:, k].T for k in range(4)]))
        cell.row_pos.copy_(
            sum(row_pos[dr::2] @ blocks[:, 2 * dr + dc].T for dr in (0, 1) for dc in (0, 1))
        )
        cell.col_pos.copy_(
            sum(col_pos[dc::2] @ blocks[:, 2 * dr + dc].T for dr in (0, 1) for dc in (0, 1))
        )
        cell.cursor_mark.copy_(torch.stack([blocks[:, k] @ mark for k in range(4)]))
        cell.bias.copy_(merge_b)
        for p in planes:
            table = torch.cat([colour_emb[p] @ blocks[:, k].T for k in range(4)])
            cell.colours[p].weight.copy_(table)
    assert torch.allclose(cell(frames, cursor, tuple(planes.values())), explicit, atol=1e-4)


def test_cell_embedding_gradient_matches_autograd_reference():
    """The fused lookup's own backward gives each table (characters and colour planes) the
    gradient autograd gives a plain per-cell lookup and sum."""
    torch.manual_seed(0)
    cell = ActionModel(SMALL).frame_head.cells
    batch = random_batch(SMALL, 2, 2)
    frames, cursor = batch["frames"].flatten(0, 1), batch["cursor"].flatten(0, 1)
    planes = {"chars": frames, **{p: batch[p].flatten(0, 1) for p in COLOUR_PLANES}}
    weight = torch.randn(SMALL.rows // 2, SMALL.cols // 2, SMALL.merge_dims[0])
    (cell(frames, cursor, tuple(planes.values())[1:]) * weight).sum().backward()
    tables = {"chars": cell.chars, **cell.colours}
    refs = {p: t.weight.detach().clone().requires_grad_() for p, t in tables.items()}
    x = 0
    for p, plane in planes.items():
        values = SMALL.char_vocab if p == "chars" else COLOUR_PLANES[p]
        ids = (
            plane.long().view(4, 4, 2, 8, 2)
            + torch.tensor([[0, 1], [2, 3]]).view(1, 1, 2, 1, 2) * values
        )
        ids = ids.permute(0, 1, 3, 2, 4).reshape(-1, 4)
        x = x + F.embedding(ids, refs[p]).sum(1).view(4, 4, 8, -1)
    (x * weight).sum().backward()
    for p, table in tables.items():
        assert torch.allclose(table.weight.grad, refs[p].grad, atol=1e-5), p


def test_every_colour_plane_reaches_the_grid():
    """Without the fovea, one cell's fg, bg or attrs changes the frame vector: the grid path
    itself sees colour, not only the cells at the cursor."""
    torch.manual_seed(0)
    model = ActionModel(dataclasses.replace(SMALL, fovea=0)).eval()
    batch = random_batch(SMALL, 1, 1)
    base = model.embed(batch["frames"], batch["cursor"], **colour_planes(batch))
    for plane, values in COLOUR_PLANES.items():
        changed = dict(batch)
        changed[plane] = batch[plane].clone()
        changed[plane][0, 0, 5, 11] = (int(batch[plane][0, 0, 5, 11]) + 1) % values
        x = model.embed(batch["frames"], batch["cursor"], **colour_planes(changed))
        assert not torch.allclose(x, base), plane


# The colour task: the key pressed is the colour of the cell under the cursor (red or green
# text, a blue background, reverse video), on a screen of random characters and syntax colours.
MARKS = [("fg", 1), ("fg", 2), ("bg", 4), ("attrs", 8)]


def colour_task(cfg: ModelConfig, b: int, g: torch.Generator) -> dict:
    shape = (b, 1, cfg.rows, cfg.cols)
    batch = {
        "frames": torch.randint(0, cfg.char_vocab, shape, generator=g),
        "fg": torch.randint(0, 2, shape, generator=g, dtype=torch.uint8) * 3,  # yellow or default
        "bg": torch.zeros(shape, dtype=torch.uint8),
        "attrs": torch.zeros(shape, dtype=torch.uint8),
        "actions": torch.randint(0, len(MARKS), (b, 1), generator=g),
    }
    r, c = (
        torch.randint(0, cfg.rows, (b,), generator=g),
        torch.randint(0, cfg.cols, (b,), generator=g),
    )
    for i, action in enumerate(batch["actions"][:, 0].tolist()):
        plane, value = MARKS[action]
        batch[plane][i, 0, r[i], c[i]] = value
    batch["cursor"] = torch.stack([r, c], -1)[:, None]  # (B, 1, 2)
    return batch


def test_a_colour_model_learns_what_a_monochrome_one_cannot():
    """The characters say nothing of the key (chance: ln 4 = 1.39); the colours say all of it.
    A few hundred steps of the trainer's optimizers: the colour model's held-out loss falls far
    below chance, the monochrome model's stays there."""
    held_out = {}
    for colour in (True, False):
        cfg = dataclasses.replace(SMALL, action_vocab=len(MARKS), colour=colour)
        torch.manual_seed(0)
        model = ActionModel(cfg)
        opt = Optimizers(model, lr_adamw=3e-3)
        g = torch.Generator().manual_seed(1)
        for _ in range(150):
            batch = colour_task(cfg, 32, g)
            _, loss = run(model, batch, actions=batch["actions"])
            loss.backward()
            opt.step()
            opt.zero_grad()
        batch = colour_task(cfg, 256, torch.Generator().manual_seed(2))
        with torch.no_grad():
            held_out[colour] = run(model, batch, actions=batch["actions"])[1].item()
    chance = math.log(len(MARKS))
    assert held_out[True] < 0.3 < chance - 0.1 < held_out[False], held_out


def test_optimizer_groups():
    model = ActionModel(SMALL)
    groups = split_parameters(model)
    names = {g: {n for n, _ in params} for g, params in groups.items()}
    everything = [n for params in groups.values() for n, _ in params]
    assert sorted(everything) == sorted(n for n, _ in model.named_parameters())  # each exactly once
    assert {"lstm.lstms.0.weight_ih_l0", "lstm.lstms.1.weight_hh_l0"} <= names["muon"]
    assert {
        "frame_head.stages.0.0.qkv.weight",
        "frame_head.merges.0.proj.weight",
        "frame_head.out.weight",
    } <= names["muon"]
    assert {
        "frame_head.cells.chars.weight",
        "frame_head.cells.colours.fg.weight",
        "frame_head.fovea.colours.attrs.weight",
        "action_head.weight",
    } <= names["adamw_decay"]
    assert {"lstm.h0", "lstm.c0", "action_head.bias", "frame_head.cells.row_pos"} <= names[
        "adamw_no_decay"
    ]
    assert all(p.ndim == 2 for _, p in groups["muon"])
    opt = Optimizers(model)
    assert isinstance(opt.muon, torch.optim.Muon) and opt.muon.defaults["lr"] == 3e-3
    assert opt.adamw.defaults["lr"] == 3e-4 and opt.adamw.defaults["betas"] == (0.9, 0.95)
    assert opt.adamw.param_groups[0]["weight_decay"] == 0.01


def test_lr_schedule():
    assert lr_multiplier(0, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_multiplier(9, 100, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_multiplier(10, 100, 10, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_multiplier(55, 100, 10, "cosine", 0.1) == pytest.approx(0.55)
    assert lr_multiplier(100, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_multiplier(50, 100, 10, "constant", 0.1) == 1.0


def test_positions_count_steps_since_reset():
    reset = torch.tensor([[0, 0, 1, 0], [1, 0, 0, 0]], dtype=torch.bool)
    assert positions(reset, torch.tensor([9, -1])).tolist() == [[10, 11, 0, 1], [0, 1, 2, 3]]
    assert positions(reset, torch.tensor([-1, -1])).tolist() == [[0, 1, 0, 1], [0, 1, 2, 3]]


def test_action_kinds_and_accumulator():
    names = ["a", " ", "<Enter>", "<Up>", "<BS>", "<C-s>", "<U+200B>", "<C-v>", "<Tab>"]
    assert [action_kind(n) for n in names] == [
        "char", "space", "enter", "navigate", "delete", "command", "verbatim", "verbatim", "space",
    ]  # fmt: skip
    acc = Accumulator(names, seq_len=4, device=torch.device("cpu"))
    step_loss = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    acc.add(step_loss, torch.tensor([[True, False, True, True]]), torch.tensor([[0, 0, 2, 3]]),
            torch.tensor([[True, True, True, False]]), torch.tensor([[0, 1, 2, 3]]))  # fmt: skip
    record = acc.summary()
    assert (
        record["loss"] == 2.0 and record["accuracy"] == round(2 / 3, 5) and record["timesteps"] == 3
    )
    assert record["accuracy_by_kind"] == {"char": 0.5, "enter": 1.0}
    assert record["loss_early"] == 1.0  # position 0 < seq_len / 4
    assert record["loss_late"] is None  # the only step at position >= 3 is masked
    assert acc.summary()["loss"] is None  # summary() starts a new interval
