"""Training metrics: accumulation by action kind and by position, JSONL and TensorBoard records,
memory peaks, the loss plot.

Position of a step = steps since the model's state last started from the initial state (a reset,
or the start of a window when the state is not carried): how much context the LSTM has had. The
paper analyses loss against it; we report it in log-spaced buckets and as "early" (the first
quarter of a training sequence's length) against "late" (at least three quarters of it).

An evaluation (evaluate.py; `Accumulator(..., top_k=5)`) also counts top-k accuracy and the
next-action classes of CLASSES: a key pressed while the screen shows the shell is "shell",
whatever the key (the shell: no editor title bar on row 0, `at_editor`); a key pressed in the
editor is classed by what it does (`action_class`). Every step falls in exactly one class.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from ghframes.errors import GhframesError

KINDS = ("char", "space", "enter", "navigate", "delete", "command", "verbatim", "other")
NAVIGATE = {
    "<Left>", "<Right>", "<Up>", "<Down>", "<Home>", "<End>", "<PgUp>", "<PgDn>", "<C-g>",
    "<C-Left>", "<C-Right>", "<C-f>",
}  # fmt: skip
DELETE = {"<BS>", "<Del>", "<C-k>", "<C-BS>"}
COMMAND = {"<C-s>", "<C-q>", "<C-c>", "<C-d>"}
POSITION_EDGES = (0, 16, 64, 256, 1024, 4096)  # bucket i holds positions [edge i, edge i+1)

# Next-action classes of an evaluation, and how its table names them.
CLASSES = ("printable", "enter", "backspace", "navigation", "save_quit", "shell", "other")
CLASS_LABELS = {
    "printable": "printable", "enter": "<Enter>", "backspace": "<BS>",
    "navigation": "navigation", "save_quit": "save/quit", "shell": "shell", "other": "other",
}  # fmt: skip
SAVE_QUIT = {"<C-s>", "<C-q>"}
OTHER_PRINTABLE = "<other>"  # a printable character outside the vocabulary (schemas/chars.json)


def action_kind(name: str) -> str:
    """Kind of an action (schemas/actions.json): what the key does, for accuracy by kind."""
    if len(name) == 1:
        return "space" if name == " " else "char"
    if name in ("<Enter>", "<Tab>"):
        return "enter" if name == "<Enter>" else "space"
    if name in NAVIGATE:
        return "navigate"
    if name in DELETE:
        return "delete"
    if name in COMMAND:
        return "command"
    if name == "<C-v>" or name.startswith(("<U+", "<C-", "<Esc>")):
        return "verbatim"  # control characters typed after <C-v>, code points by number
    return "other"


def kind_ids(action_names: list[str]) -> torch.Tensor:
    """long [A]: index into KINDS of every action id."""
    return torch.tensor([KINDS.index(action_kind(n)) for n in action_names], dtype=torch.long)


def action_class(name: str) -> str:
    """Class (CLASSES) of action `name` pressed in the editor: a printable character (one
    character, or <other>: one outside the vocabulary), <Enter>, <BS>, navigation (the cursor
    keys, go-to-line and search), save/quit (<C-s>, <C-q>), or other (<Tab>, <Del>, <C-k>,
    <C-BS>, verbatim input, <U+XXXX>, prompt cancels). "shell" is never a key's class alone."""
    if len(name) == 1 or name == OTHER_PRINTABLE:
        return "printable"
    if name == "<Enter>":
        return "enter"
    if name == "<BS>":
        return "backspace"
    if name in NAVIGATE:
        return "navigation"
    if name in SAVE_QUIT:
        return "save_quit"
    return "other"


def class_ids(action_names: list[str]) -> torch.Tensor:
    """long [A]: index into CLASSES of every action id pressed in the editor."""
    return torch.tensor([CLASSES.index(action_class(n)) for n in action_names], dtype=torch.long)


@functools.cache
def _title_ids() -> tuple[int, ...]:
    """Character ids of the first TITLE_SIDE cells of the editor's title bar: its name, then
    blanks (the file's name is centred clear of them). ASCII, so the same in every id scheme."""
    from ghframes.render.editor_view import TITLE_LEFT, TITLE_SIDE

    from .chars import char_id

    return tuple(char_id(ord(c)) for c in TITLE_LEFT.ljust(TITLE_SIDE))


def at_editor(frames: torch.Tensor) -> torch.Tensor:
    """bool [B, T]: frame t shows the editor, not the shell. frames: character ids [B, T, R, C].

    The editor (render/editor_view.py) draws its title bar on row 0 whatever the file, with or
    without colour: `  ghedit` and blanks up to cell TITLE_SIDE. The shell's row 0 is a prompt
    or command output, which starts so only if a program printed exactly that."""
    title = torch.tensor(_title_ids(), dtype=frames.dtype, device=frames.device)
    return (frames[:, :, 0, : len(title)] == title).all(-1)


def positions(reset: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """long [B, T] steps since the state last started fresh.

    reset bool [B, T]; previous long [B]: position of each row's step just before this batch
    (-1 when the state starts fresh at this batch).
    """
    t = torch.arange(reset.shape[1], device=reset.device).expand_as(reset)
    last_reset = torch.where(reset, t, torch.full_like(t, -1)).cummax(1).values  # (B, T)
    return torch.where(last_reset >= 0, t - last_reset, previous.unsqueeze(1) + 1 + t)


def bucket_name(i: int) -> str:
    lo = POSITION_EDGES[i]
    return f"{lo}+" if i + 1 == len(POSITION_EDGES) else f"{lo}-{POSITION_EDGES[i + 1] - 1}"


class Accumulator:
    """Sums over steps and batches, reduced across processes, summarised as one record.

    Every quantity is a sum in one float64 vector, so one all_reduce merges all processes.
    With `top_k` > 0 (an evaluation) it also sums top-k hits, the classes of CLASSES and accuracy
    by position; `add` then needs `in_top_k` and `editor`. The trainer's path leaves it 0.
    """

    def __init__(self, action_names: list[str], seq_len: int, device: torch.device, top_k: int = 0):
        self.kinds = kind_ids(action_names).to(device)
        self.classes = class_ids(action_names).to(device)
        self.seq_len, self.top_k = seq_len, top_k
        n_kinds, n_buckets = len(KINDS), len(POSITION_EDGES)
        # layout: loss, correct, count | per kind: correct, count | per bucket: loss, count |
        #         early loss, early count, late loss, late count
        self.size = 3 + 2 * n_kinds + 2 * n_buckets + 4
        self.base = self.size
        if top_k:  # then: top-k hits | per class: loss, correct, top-k, count | per bucket: correct
            self.size += 1 + 4 * len(CLASSES) + n_buckets
        self.sums = torch.zeros(self.size, dtype=torch.float64, device=device)
        self.edges = torch.tensor(POSITION_EDGES[1:], device=device)

    def add(self, step_loss, correct, actions, mask, pos, in_top_k=None, editor=None) -> None:
        """step_loss float [B, T], correct bool [B, T], actions long [B, T], mask bool, pos long;
        with top_k: in_top_k bool [B, T], editor bool [B, T] (frame t shows the editor)."""
        m = mask.double()
        loss = step_loss.double() * m
        hit = correct.double() * m
        nk, nb = len(KINDS), len(POSITION_EDGES)
        kind = self.kinds[actions.clamp(0, len(self.kinds) - 1)]  # (B, T)
        bucket = torch.bucketize(pos, self.edges, right=True)  # (B, T)
        early = (pos < self.seq_len / 4).double() * m
        late = (pos >= 3 * self.seq_len / 4).double() * m
        parts = [
            torch.stack([loss.sum(), hit.sum(), m.sum()]),
            torch.zeros(nk, dtype=torch.float64, device=m.device).index_add_(
                0, kind.flatten(), hit.flatten()
            ),
            torch.zeros(nk, dtype=torch.float64, device=m.device).index_add_(
                0, kind.flatten(), m.flatten()
            ),
            torch.zeros(nb, dtype=torch.float64, device=m.device).index_add_(
                0, bucket.flatten(), loss.flatten()
            ),
            torch.zeros(nb, dtype=torch.float64, device=m.device).index_add_(
                0, bucket.flatten(), m.flatten()
            ),
            torch.stack([(loss * early).sum(), early.sum(), (loss * late).sum(), late.sum()]),
        ]
        if self.top_k:
            shell = torch.full_like(actions, CLASSES.index("shell"))
            cls = torch.where(editor, self.classes[actions.clamp(0, len(self.classes) - 1)], shell)
            top = in_top_k.double() * m
            per_class = (loss, hit, top, m)
            parts.append(top.sum().view(1))
            parts += [self._by(cls, values, len(CLASSES)) for values in per_class]
            parts.append(self._by(bucket, hit, nb))
        self.sums += torch.cat(parts)

    @staticmethod
    def _by(index: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
        """float64 [n]: sums of `values` by `index` (both [B, T])."""
        out = torch.zeros(n, dtype=torch.float64, device=values.device)
        return out.index_add_(0, index.flatten(), values.flatten())

    def summary(self, reduce=None) -> dict:
        """The record so far, then zero the sums. `reduce(tensor)` sums over processes in place."""
        if reduce is not None:
            reduce(self.sums)
        s = self.sums.tolist()
        self.sums.zero_()
        nk, nb = len(KINDS), len(POSITION_EDGES)
        loss, hit, count = s[0:3]
        kind_hit, kind_count = s[3 : 3 + nk], s[3 + nk : 3 + 2 * nk]
        o = 3 + 2 * nk
        b_loss, b_count = s[o : o + nb], s[o + nb : o + 2 * nb]
        e_loss, e_count, l_loss, l_count = s[o + 2 * nb : self.base]
        ratio = lambda a, b: round(a / b, 5) if b else None  # noqa: E731
        record = {
            "loss": ratio(loss, count),
            "accuracy": ratio(hit, count),
            "accuracy_by_kind": {
                k: ratio(h, c) for k, h, c in zip(KINDS, kind_hit, kind_count, strict=True) if c
            },
            "loss_by_position": {
                bucket_name(i): ratio(a, c)
                for i, (a, c) in enumerate(zip(b_loss, b_count, strict=True))
                if c
            },
            "loss_early": ratio(e_loss, e_count),
            "loss_late": ratio(l_loss, l_count),
            "timesteps": int(count),
        }
        if not self.top_k:
            return record
        top_key = f"top{self.top_k}_accuracy"
        nc, o = len(CLASSES), self.base
        top, o = s[o], o + 1
        c_loss, c_hit, c_top, c_count = (s[o + i * nc : o + (i + 1) * nc] for i in range(4))
        b_hit = s[o + 4 * nc :]
        record[top_key] = ratio(top, count)
        record["by_class"] = {
            c: {
                "timesteps": int(n),
                "loss": ratio(a, n),
                "accuracy": ratio(h, n),
                top_key: ratio(t, n),
            }
            for c, a, h, t, n in zip(CLASSES, c_loss, c_hit, c_top, c_count, strict=True)
        }
        record["accuracy_by_position"] = {
            bucket_name(i): ratio(h, c)
            for i, (h, c) in enumerate(zip(b_hit, b_count, strict=True))
            if c
        }
        record["timesteps_by_position"] = {
            bucket_name(i): int(c) for i, c in enumerate(b_count) if c
        }
        return record


class MetricsLog:
    """Append-only JSONL of records; on resume, records past the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            kept = [
                line
                for line in path.read_text().splitlines()
                if line and json.loads(line)["step"] <= resume_step
            ]
            path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class Recorder:
    """Where a run's records go: OUT/metrics.jsonl and, with `tensorboard`, OUT/tb/.

    Only rank 0 writes: on the other processes (`enabled` False) every method does nothing.
    """

    BOARD_KEYS = ("loss", "accuracy", "loss_early", "loss_late")

    def __init__(self, out: Path, resume_step: int | None, tensorboard: bool, enabled: bool):
        self.out = out
        self.log = MetricsLog(out / "metrics.jsonl", resume_step) if enabled else None
        self.board = _tensorboard(out) if tensorboard and enabled else None

    def write(self, split: str, step: int, values: dict) -> None:
        """One record of `split` ("train" or "eval") at `step`."""
        values = {"split": split, "step": step, **values}
        if self.log:
            self.log.write(values)
        if self.board:
            for key in self.BOARD_KEYS:
                if values.get(key) is not None:
                    self.board.add_scalar(f"{split}/{key}", values[key], step)

    def close(self, plot: bool) -> None:
        """Draw OUT/loss.png from the records when `plot`; close the TensorBoard writer."""
        if self.log and plot:
            plot_losses(self.log.path, self.out / "loss.png")
        if self.board:
            self.board.close()


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GhframesError(
            "--tensorboard needs the tensorboard package (pip install tensorboard)"
        ) from None
    return SummaryWriter(str(out / "tb"))


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def plot_losses(metrics_path: Path, png_path: Path) -> None:
    """Training and held-out loss against step, and loss by position at the last evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [r for r in records if r["split"] == "train" and r["loss"] is not None]
    held = [r for r in records if r["split"] == "eval" and r["loss"] is not None]
    fig, (ax, ax_pos) = plt.subplots(1, 2, figsize=(11, 4))
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
    ax.plot([r["step"] for r in held], [r["loss"] for r in held], "o-", label="held-out")
    ax.set_xlabel("step")
    ax.set_ylabel("next-action cross-entropy (nats)")
    ax.set_title("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if held and held[-1]["loss_by_position"]:
        last = held[-1]["loss_by_position"]
        ax_pos.bar(range(len(last)), list(last.values()), tick_label=list(last.keys()))
        ax_pos.set_title(f"held-out loss by position, step {held[-1]['step']}")
        ax_pos.set_xlabel("steps since the state started")
    else:
        ax_pos.axis("off")
    fig.tight_layout()
    tmp = png_path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)


def memory_peaks(meter, device: torch.device) -> dict:
    """Peak bytes since the last call: autograd's saved tensors (`meter`, a SavedTensorMeter),
    process RSS, GPU allocations. Starts the next interval's peaks from here."""
    memory = {"autograd_peak_bytes": meter.peak, "rss_peak_bytes": rss_peak_bytes()}
    meter.peak = meter.bytes
    if device.type == "cuda":
        memory["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    return memory


def rss_peak_bytes() -> int:
    """Peak resident memory of this process."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
