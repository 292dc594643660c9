"""Held-out evaluation: loss and accuracy of the model on the same held-out batches every time."""

from __future__ import annotations

import torch

from .config import TrainConfig
from .distributed import Processes, sum_over_processes, to_device
from .lstm import State
from .metrics import Accumulator, positions
from .model import ActionModel
from .streaming import streaming_forward


def evaluate(
    model: ActionModel,
    source,
    start_state: dict,
    cfg: TrainConfig,
    acc: Accumulator,
    procs: Processes,
    amp: torch.dtype | None,
) -> dict:
    """Loss and accuracy on `cfg.eval_batches` batches of `source` from `start_state` on.

    Rows without a valid step are not computed: a held-out split of a few sessions leaves most
    of a stream batch's lanes empty. In stream mode each lane's state is kept for the next batch.
    The record is summed over the processes.
    """
    model.eval()
    source.load_state_dict(start_state)
    stream = cfg.mode == "stream"
    state: State | None = None
    prev = torch.full((cfg.batch_size,), -1, device=procs.device)
    batches = iter(source)
    for _ in range(cfg.eval_batches):
        try:
            batch = to_device(next(batches), procs.device)
        except StopIteration:
            break
        rows = batch["mask"].any(1).nonzero().flatten()
        if not len(rows):
            continue
        if stream and state is None:
            state = tuple(s.detach().clone() for s in model.initial_state(cfg.batch_size))
        batch = {key: value[rows] for key, value in batch.items()}
        start = (state[0][:, rows], state[1][:, rows]) if stream else None
        out = streaming_forward(model, batch, start, cfg.chunk_len, amp)
        pos = positions(batch["reset"], prev[rows] if stream else torch.full_like(rows, -1))
        acc.add(out.step_loss, out.correct, batch["actions"], batch["mask"], pos)
        if stream:
            state[0][:, rows], state[1][:, rows] = out.state
            prev[rows] = pos[:, -1]
    model.train()
    return acc.summary(sum_over_processes(procs))


class HeldOut:
    """The held-out split of a run: every evaluation starts from the loader position it had when
    the run began, so each one sees the same batches; `records` keeps them all, with their step."""

    def __init__(
        self,
        source,
        action_names: list[str],
        cfg: TrainConfig,
        procs: Processes,
        amp: torch.dtype | None,
    ):
        self.source, self.start = source, source.state_dict()
        self.acc = Accumulator(action_names, cfg.seq_len, procs.device)
        self.cfg, self.procs, self.amp = cfg, procs, amp
        self.records: list[dict] = []

    def evaluate(self, model: ActionModel, step: int) -> dict:
        """The record of one evaluation of `model` (also kept in `records`)."""
        held = evaluate(model, self.source, self.start, self.cfg, self.acc, self.procs, self.amp)
        self.records.append({"step": step, **held})
        return held
