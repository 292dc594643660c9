"""The recurrence-complete action model: frame-head -> residual LSTM -> action head.

A frame is a 48x160 grid of character ids and (frames schema 2.0) three colour planes: fg and
bg palette values (0 the terminal's default, 1..255 xterm-256) and the attribute bits (1 bold,
2 italic, 4 underline, 8 reverse, 16 strikethrough, 32 blink). The frame-head embeds every cell
(character embedding, with `colour` plus fg, bg and attribute embeddings; a learned 2-D position
embedding; a mark on the cursor cell), merges 2x2 patches stage by stage (48x160 -> 24x80 ->
12x40 -> ...; Swin-style patch merging, a stride-2 2x2 convolution), runs transformer blocks over
the grid with average pooling between stages, and pools the grid into one vector per frame
(attention pooling, together with the grid token under the cursor), to which a fovea adds the
few cells at and before the cursor read at full resolution (what was just typed, which the
8x8-cell tokens blur; `fovea=0` turns it off). The frames are embedded independently (parallel
over time); the residual LSTM then integrates those vectors strictly in series, and a linear
head gives logits over the action vocabulary: the action taken on frame t.

The model is split into `embed` (frames -> vectors), `core` (the recurrence, with resets) and
`head` (vectors -> logits) so that streaming BPTT (streaming.py) can run and recompute each part
by chunks; `forward` chains them for the plain case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ghframes.errors import GhframesError

from .lstm import ResidualLSTM, State

IGNORE = -100  # target of an invalid (masked) step; torch's cross-entropy default

# The colour planes of a batch (the loader's keys, the model's arguments) and the values each
# takes: fg and bg palette values 0..255, attrs the 6-bit attribute field (schemas/frames.json).
COLOUR_PLANES = {"fg": 256, "bg": 256, "attrs": 64}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. `char_vocab` and `action_vocab` come from the data (the trainer sets them)."""

    char_vocab: int = 128  # character ids in frames
    action_vocab: int = 128  # action ids
    rows: int = 48
    cols: int = 160
    merge_dims: tuple[int, ...] = (16, 32, 64)  # width after each 2x2 patch merge (cells -> ...)
    stage_blocks: tuple[int, ...] = (1, 1)  # transformer blocks per stage; 2x2 avg pool between
    heads: int = 2
    mlp_ratio: int = 4
    d_model: int = 128  # LSTM width = frame vector width
    lstm_layers: int = 2
    fovea: int = 16  # cells read directly at the cursor: it and the fovea-1 before it (0: none)
    fovea_dim: int = 16  # embedding width of a fovea cell
    colour: bool = True  # embed fg, bg and attrs of each cell too (False: characters only)

    def __post_init__(self) -> None:
        at_least = dict.fromkeys(("char_vocab", "action_vocab", "rows", "cols", "heads"), 1)
        at_least |= dict.fromkeys(("fovea", "fovea_dim"), 0)
        at_least |= dict.fromkeys(("mlp_ratio", "d_model", "lstm_layers"), 1)
        for name, least in at_least.items():
            if getattr(self, name) < least:
                raise GhframesError(
                    f"model config: {name} must be >= {least}, got {getattr(self, name)}"
                )
        if not self.merge_dims or min(self.merge_dims) < 1:
            raise GhframesError(
                f"model config: merge_dims must be positive widths, got {self.merge_dims}"
            )
        if not self.stage_blocks or min(self.stage_blocks) < 0:
            raise GhframesError(
                f"model config: stage_blocks must be >= 0 each, got {self.stage_blocks}"
            )
        halvings = len(self.merge_dims) + len(self.stage_blocks) - 1
        if self.rows % 2**halvings or self.cols % 2**halvings:
            raise GhframesError(
                f"model config: a {self.rows}x{self.cols} frame cannot be halved {halvings} times "
                f"(merge_dims={self.merge_dims}, stage_blocks={self.stage_blocks})"
            )
        if self.width % self.heads:
            raise GhframesError(
                f"model config: transformer width {self.width} is not divisible by heads={self.heads}"
            )

    @property
    def width(self) -> int:
        """Width of the transformer stages: the last patch merge's output."""
        return self.merge_dims[-1]

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of the token grid the first transformer stage sees."""
        k = 2 ** len(self.merge_dims)
        return self.rows // k, self.cols // k


PRESETS: dict[str, ModelConfig] = {
    # Trains on 2 CPU cores in minutes: three merges to a 6x20 grid, 2 blocks of width 64.
    "tiny": ModelConfig(),
    # ~82M parameters: a 12x40 grid of width 512 (12 blocks, ~38M) and 5 LSTM layers of 1024
    # (~42M), the even frame-head / recurrence split of the paper's model.
    "paper": ModelConfig(
        merge_dims=(192, 512),
        stage_blocks=(6, 6),
        heads=8,
        d_model=1024,
        lstm_layers=5,
    ),
}


def model_config(preset: str, **overrides) -> ModelConfig:
    """The preset called `preset` with `overrides` applied."""
    if preset not in PRESETS:
        raise GhframesError(
            f"unknown model preset {preset!r}; valid presets: {', '.join(sorted(PRESETS))}"
        )
    return dataclasses.replace(PRESETS[preset], **overrides)


class PatchMerge(nn.Module):
    """2x2 patch merging (Swin): (N, H, W, C) -> (N, H/2, W/2, C_out); a stride-2 2x2 conv."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim_in)
        self.proj = nn.Linear(4 * dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        x = x.view(n, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)  # (N, H/2, W/2, 2, 2, C)
        return self.proj(self.norm(x.reshape(n, h // 2, w // 2, 4 * c)))  # (N, H/2, W/2, C_out)


class Block(nn.Module):
    """Pre-norm transformer block; full (non-causal) attention within one frame."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, mlp_ratio * width)
        self.out = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, w = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(n, s, 3, self.heads, w // self.heads).unbind(2)
        att = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        x = x + self.proj(att.transpose(1, 2).reshape(n, s, w))  # (N, S, W)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class AttentionPool(nn.Module):
    """One learned query attends over the grid: (N, S, W) -> (N, W)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.query = nn.Parameter(torch.randn(width) * 0.02)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, s, w = x.shape
        k, v = self.kv(self.norm(x)).view(n, s, 2, self.heads, w // self.heads).unbind(2)
        q = self.query.view(1, self.heads, 1, w // self.heads).expand(n, -1, -1, -1)
        att = F.scaled_dot_product_attention(
            q, k.transpose(1, 2), v.transpose(1, 2)
        )  # (N, nh, 1, hd)
        return self.proj(att.reshape(n, w))


class _PatchSum(torch.autograd.Function):
    """Sum of K table rows per patch: ids int [M, K], table float [rows, D] -> float [M, D].

    K is 4 (a patch's cells) per plane. embedding_bag's own backward sorts all M*K ids (about 4x
    slower on a CPU than this one for a 48x160 frame's 7,680 lookups); the table is small, so K
    scatter-adds build its gradient: index_put_(accumulate) on a CPU (3x faster there than
    index_add_, measured with the same sums bit for bit), index_add_ (atomics) on a GPU.
    """

    @staticmethod
    def forward(ctx, ids: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids)
        ctx.table_rows = table.shape[0]
        return F.embedding_bag(ids, table, mode="sum")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (ids,) = ctx.saved_tensors
        grad_table = grad.new_zeros(ctx.table_rows, grad.shape[1])
        for k in range(ids.shape[1]):
            if grad.is_cuda:
                grad_table.index_add_(0, ids[:, k], grad)
            else:
                grad_table.index_put_((ids[:, k],), grad, accumulate=True)
        return None, grad_table


def colour_tables(copies: int, dim: int) -> nn.ModuleDict:
    """An embedding per colour plane, of `copies` tables of its values: {fg, bg, attrs}."""
    return nn.ModuleDict({p: nn.Embedding(copies * v, dim) for p, v in COLOUR_PLANES.items()})


class CellEmbedding(nn.Module):
    """Cells to the first 2x2 patch grid: frames int [N, R, C], cursor long [N, 2], colour planes
    uint8 [N, R, C] each (with `colour`) -> (N, R/2, C/2, D).

    Mathematically: a per-cell embedding (the character's, plus with `colour` the fg, bg and
    attribute embeddings of the cell) plus a learned 2-D position embedding plus a learned mark on
    the cursor's cell, followed by a linear 2x2 patch merge. Because every part before the merge
    is an embedding and the merge is linear, the composition is computed directly at patch
    resolution, without building the R x C x E cell grid (the largest tensor of the model, and
    most of its time on a CPU):
      - the value of plane p (chars, fg, bg, attrs) at sub-position k of a patch
        (k = 2*dr + dc) looks up table k of that plane's embedding (one embedding-bag sum of
        4 lookups per plane per patch, all planes in one bag),
      - position: row and column tables at patch resolution (a factorised 2-D table at cell
        resolution, merged, is exactly such a sum),
      - cursor: one vector per sub-position, added to the patch that holds the cursor.
    The attributes take one table of all 64 bit combinations, not a sum of 6 per-bit vectors: one
    lookup per cell, and a combination (reverse + bold) need not be the sum of its bits.
    """

    def __init__(self, char_vocab: int, rows: int, cols: int, dim: int, colour: bool):
        super().__init__()
        self.chars = nn.Embedding(4 * char_vocab, dim)  # table k = rows [k*V, (k+1)*V)
        self.row_pos = nn.Parameter(torch.randn(rows // 2, dim) * 0.02)
        self.col_pos = nn.Parameter(torch.randn(cols // 2, dim) * 0.02)
        self.cursor_mark = nn.Parameter(torch.randn(4, dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(dim))
        # Made last: a monochrome model draws from a seed the initial weights of before colour.
        self.colours = colour_tables(4, dim) if colour else None
        # Row of the joint table (chars, fg, bg, attrs stacked, 4 sub-position tables each)
        # where table k of plane p starts: offsets[p, dr, dc], k = 2*dr + dc.
        vocabs = torch.tensor([char_vocab, *(COLOUR_PLANES.values() if colour else ())])
        starts = 4 * (vocabs.cumsum(0) - vocabs)  # (P,)
        offsets = starts.view(-1, 1, 1) + torch.tensor([[0, 1], [2, 3]]) * vocabs.view(-1, 1, 1)
        self.register_buffer("offsets", offsets, persistent=False)  # (P, 2, 2)

    def forward(
        self, frames: torch.Tensor, cursor: torch.Tensor, colours: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        n, r, c = frames.shape
        h, w = r // 2, c // 2
        planes = (frames, *colours)
        # (N*h*w, P*4): each patch's 4 cells of every plane, as rows of the joint table (int32:
        # half the bytes autograd keeps, and faster to build than int64)
        ids = torch.empty((n, h, w, len(planes), 2, 2), dtype=torch.int32, device=frames.device)
        for p, plane in enumerate(planes):
            cells = plane.view(n, h, 2, w, 2).permute(0, 1, 3, 2, 4)  # (N, h, w, 2, 2)
            ids[:, :, :, p].copy_(cells).add_(self.offsets[p])
        table = self.chars.weight
        if self.colours is not None:
            table = torch.cat([table, *(e.weight for e in self.colours.values())])
        x = _PatchSum.apply(ids.view(n * h * w, -1), table).view(n, h, w, -1)  # (N, h, w, D)
        x = x + self.row_pos[:, None] + self.col_pos[None, :] + self.bias
        # The cursor is not drawn on the screen itself: mark its patch, by its sub-position. A
        # cursor outside the grid (col 160 after typing in the last column) marks nothing.
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        on_cursor = (rows == cursor[:, :1] // 2).unsqueeze(2) & (
            cols == cursor[:, 1:] // 2
        ).unsqueeze(1)
        sub = (cursor[:, 0] % 2) * 2 + cursor[:, 1] % 2  # (N,)
        return x + on_cursor.unsqueeze(-1).to(x.dtype) * self.cursor_mark[sub].view(n, 1, 1, -1)


class Fovea(nn.Module):
    """The cells at and just before the cursor, read at full resolution: frames int [N, R, C],
    cursor long [N, 2], colour planes uint8 [N, R, C] each (with `colour`) -> float [N, D].

    The grid path compresses an 8x8 block of cells into one token; what was typed last, and what
    the next key continues, sits in the few cells left of the cursor. Each of those `size` cells
    (the cursor's own last) is embedded with its own table per offset, and the concatenation is
    projected; cells left of column 0 read as id 0 (a blank, default colours). A cell's colour
    planes add one table each, shared by the offsets: the projection already tells the offsets
    apart, and per-offset colour tables would cost `size` times the parameters.
    """

    def __init__(self, char_vocab: int, size: int, dim: int, out: int, colour: bool):
        super().__init__()
        self.size, self.char_vocab = size, char_vocab
        self.chars = nn.Embedding(size * char_vocab, dim)  # table k = rows [k*V, (k+1)*V)
        self.proj = nn.Linear(size * dim, out)
        self.colours = colour_tables(1, dim) if colour else None
        self.register_buffer("steps", torch.arange(-size + 1, 1), persistent=False)

    def forward(
        self, frames: torch.Tensor, cursor: torch.Tensor, colours: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        n, r, c = frames.shape
        row = cursor[:, 0].clamp(0, r - 1)
        cols = cursor[:, 1:] + self.steps  # (N, size)
        inside = (cols >= 0) & (cols < c)
        at = (torch.arange(n, device=frames.device)[:, None], row[:, None], cols.clamp(0, c - 1))
        ids = frames[at].long() * inside + self.steps.new_tensor(range(self.size)) * self.char_vocab
        x = self.chars(ids)  # (N, size, dim)
        if self.colours is not None:
            for table, plane in zip(self.colours.values(), colours, strict=True):
                x = x + table(plane[at].long() * inside)
        return self.proj(x.flatten(1))  # (N, D)


class FrameHead(nn.Module):
    """frames: int [N, ROWS, COLS] character ids, cursor: long [N, 2] (row, col), and with
    `cfg.colour` the colour planes fg, bg, attrs: uint8 [N, ROWS, COLS] each -> float [N, D]."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cells = CellEmbedding(
            cfg.char_vocab, cfg.rows, cfg.cols, cfg.merge_dims[0], cfg.colour
        )
        dims = cfg.merge_dims
        self.merges = nn.ModuleList(PatchMerge(a, b) for a, b in zip(dims, dims[1:], strict=False))
        self.stages = nn.ModuleList(
            nn.Sequential(*(Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(n)))
            for n in cfg.stage_blocks
        )
        self.pool = AttentionPool(cfg.width, cfg.heads)
        self.out = nn.Linear(2 * cfg.width, cfg.d_model)
        self.fovea = (
            Fovea(cfg.char_vocab, cfg.fovea, cfg.fovea_dim, cfg.d_model, cfg.colour)
            if cfg.fovea
            else None
        )
        self.rows, self.cols = cfg.rows, cfg.cols

    def forward(
        self, frames: torch.Tensor, cursor: torch.Tensor, colours: tuple[torch.Tensor, ...] = ()
    ) -> torch.Tensor:
        x = self.cells(frames, cursor, colours)  # (N, R/2, C/2, E)
        for merge in self.merges:
            x = merge(x)  # (N, h/2, w/2, E')
        for i, stage in enumerate(self.stages):
            if i:  # 2x2 average pool between stages
                x = F.avg_pool2d(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)  # (N, h/2, w/2, W)
            n, h, w, width = x.shape
            x = stage(x.reshape(n, h * w, width)).view(n, h, w, width)  # (N, h, w, W)
        # Two poolings to one vector: attention over the whole grid, and the grid token that
        # holds the cursor (where the next key acts; a cursor past the last column counts as in it).
        r = (cursor[:, 0] * h // self.rows).clamp(0, h - 1)
        c = (cursor[:, 1] * w // self.cols).clamp(0, w - 1)
        at_cursor = x[torch.arange(n, device=x.device), r, c]  # (N, W)
        y = self.out(torch.cat([self.pool(x.flatten(1, 2)), at_cursor], -1))  # (N, D)
        return y if self.fovea is None else y + self.fovea(frames, cursor, colours)


def colour_planes(batch: Mapping[str, torch.Tensor], steps: slice = slice(None)) -> dict:
    """The colour planes `batch` holds (of steps `steps`), as keyword arguments of
    `ActionModel.embed`, `unroll` and `forward`: {"fg": ..., "bg": ..., "attrs": ...}, uint8
    [B, T', R, C] each; {} for a batch of characters only."""
    return {p: batch[p][:, steps] for p in COLOUR_PLANES if p in batch}


class ActionModel(nn.Module):
    """Frame-head + residual LSTM + action head.

    forward(frames int [B, T, R, C], cursor long [B, T, 2], actions long [B, T] | None,
            reset bool [B, T] | None, mask bool [B, T] | None, state | None,
            *, fg, bg, attrs uint8 [B, T, R, C] | None)
        -> (logits float [B, T, A], loss: mean next-action cross-entropy over valid steps | None)

    A model with `cfg.colour` needs fg, bg and attrs (`colour_planes(batch)` gives them as
    keyword arguments); a monochrome one ignores them when given.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.frame_head = FrameHead(cfg)
        self.lstm = ResidualLSTM(cfg.d_model, cfg.lstm_layers)
        self.action_head = nn.Linear(cfg.d_model, cfg.action_vocab)

    def embed(
        self,
        frames: torch.Tensor,
        cursor: torch.Tensor,
        *,
        fg: torch.Tensor | None = None,
        bg: torch.Tensor | None = None,
        attrs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """frames int [B, T, R, C], cursor long [B, T, 2], colour planes uint8 [B, T, R, C]
        -> float [B, T, D]; frames independent."""
        b, t = frames.shape[:2]
        planes = {"fg": fg, "bg": bg, "attrs": attrs} if self.cfg.colour else {}
        missing = [p for p, v in planes.items() if v is None]
        if missing:
            raise GhframesError(
                f"the model sees colour (colour=true) but its input has no {', '.join(missing)}: "
                "pass fg, bg and attrs, or use a model with colour=false"
            )
        colours = tuple(v.flatten(0, 1) for v in planes.values())
        x = self.frame_head(frames.flatten(0, 1), cursor.flatten(0, 1), colours)  # (B*T, D)
        return x.view(b, t, -1)

    def initial_state(self, batch_size: int) -> State:
        """The learned initial state: (h, c), each float [lstm_layers, B, D]."""
        return self.lstm.initial_state(batch_size)

    def core(
        self, x: torch.Tensor, state: State | None = None, reset: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """x float [B, T, D] -> (float [B, T, D], state after step T-1).

        Where reset[b, t] is set, row b's state is replaced by the learned initial state before
        step t (a new session starts there). The LSTM runs in float32 even under autocast: the
        state is carried over thousands of steps and bf16 rounding would accumulate along them.
        """
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(self.lstm.h0.dtype)
            b, t = x.shape[:2]
            init = self.initial_state(b)
            state = init if state is None else state
            # nn.LSTM cannot reset mid-sequence: run it between the steps where any row resets.
            starts = [] if reset is None else reset.any(0).nonzero().flatten().tolist()
            bounds = sorted({0, *starts, t})
            outputs = []
            for start, end in zip(bounds, bounds[1:], strict=False):
                if reset is not None and start in starts:
                    r = reset[:, start].view(1, b, 1)
                    state = (torch.where(r, init[0], state[0]), torch.where(r, init[1], state[1]))
                y, state = self.lstm(x[:, start:end], state)  # (B, end-start, D)
                outputs.append(y)
            return torch.cat(outputs, 1), state  # (B, T, D)

    def head(self, y: torch.Tensor) -> torch.Tensor:
        """float [B, T, D] -> logits float [B, T, A]."""
        return self.action_head(y)

    def unroll(
        self,
        frames: torch.Tensor,
        cursor: torch.Tensor,
        reset: torch.Tensor | None = None,
        state: State | None = None,
        **colours: torch.Tensor,
    ) -> tuple[torch.Tensor, State]:
        """(logits float [B, T, A], state after the last step); `colours`: fg, bg, attrs."""
        y, state = self.core(self.embed(frames, cursor, **colours), state, reset)
        return self.head(y), state

    def forward(
        self,
        frames: torch.Tensor,
        cursor: torch.Tensor,
        actions: torch.Tensor | None = None,
        reset: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        state: State | None = None,
        **colours: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, _ = self.unroll(frames, cursor, reset, state, **colours)
        if actions is None:
            return logits, None
        step_loss = step_losses(logits, actions, mask)
        return logits, step_loss.sum() / num_valid(actions, mask)


def step_losses(
    logits: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Cross-entropy of every step, float [B, T] (at least float32); 0 where mask is False."""
    targets = actions if mask is None else actions.masked_fill(~mask, IGNORE)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 logits: fp32 loss
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")


def num_valid(actions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Steps that count in the loss (at least 1, so an all-padding batch gives loss 0)."""
    count = torch.tensor(actions.numel(), device=actions.device) if mask is None else mask.sum()
    return count.clamp(min=1)


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(model: ActionModel) -> str:
    """One line: parameter count in total and by part, and what the model reads of a frame."""
    parts = {"frame-head": model.frame_head, "lstm": model.lstm, "action head": model.action_head}
    counts = ", ".join(f"{k} {num_params(v) / 1e6:.2f}M" for k, v in parts.items())
    seen = "characters and colour" if model.cfg.colour else "characters only"
    return f"{num_params(model) / 1e6:.2f}M parameters ({counts}); frames: {seen}"


__all__ = [
    "COLOUR_PLANES", "PRESETS", "ActionModel", "ModelConfig", "State", "colour_planes",
    "describe", "model_config", "num_params", "num_valid", "step_losses",
]  # fmt: skip
