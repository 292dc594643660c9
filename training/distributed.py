"""The processes of a run: rank, world size, device and threads, and the collectives between them.

One process, or one of `torchrun`'s (RANK, WORLD_SIZE, LOCAL_RANK in the environment). Every
process trains on its own part of the data; gradients are averaged over the processes each step
(`average_gradients`), metrics are summed (`sum_over_processes`), and what a checkpoint keeps of
each process is gathered to rank 0 (`gather`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ghframes.errors import GhframesError

from .config import TrainConfig


@dataclass(frozen=True)
class Processes:
    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_processes(cfg: TrainConfig, env: Mapping[str, str]) -> Processes:
    """One process, or this one of torchrun's (RANK, WORLD_SIZE, LOCAL_RANK in `env`)."""
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", "0"))
    if cfg.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GhframesError(f"device {cfg.device!r}: no CUDA GPU is available to this process")
        device = torch.device("cuda", local if world > 1 else torch.device(cfg.device).index or 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world
        )
    return Processes(rank, world, device)


@contextlib.contextmanager
def processes(cfg: TrainConfig, env: Mapping[str, str]) -> Iterator[Processes]:
    """`setup_processes` and `cfg.threads` for the body; the thread count and the process group
    are put back on exit. A process group the caller set up itself is left to the caller."""
    owns_group = not dist.is_initialized()
    procs = setup_processes(cfg, env)
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        yield procs
    finally:
        torch.set_num_threads(threads_before)
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on `device` (through pinned memory to a GPU); other values as they are."""
    pin = device.type == "cuda"
    return {
        k: (v.pin_memory().to(device, non_blocking=True) if pin else v.to(device))
        if torch.is_tensor(v)
        else v
        for k, v in batch.items()
    }


def broadcast_parameters(model: nn.Module) -> None:
    """Rank 0's parameters on every process (each built them from the same seed already; this
    makes it certain)."""
    for p in model.parameters():
        dist.broadcast(p.data, 0)


def average_gradients(model: nn.Module, world_size: int) -> None:
    """Mean of every gradient over the processes, in one all_reduce of a flat buffer.

    This is what DistributedDataParallel does, done by hand: DDP's hooks expect one forward and
    one backward per step, while streaming BPTT runs one forward pass and then a recompute and a
    backward pass per chunk. A parameter no process computed a gradient for (the learned initial
    state when no row reset) keeps grad None, so that AdamW leaves it alone as it would in one
    process; one that only some processes reached counts as zero on the others.
    """
    params = list(model.parameters())
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    reached = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
    flat = torch.cat([g.flatten() for g in grads] + [reached])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for p, g, anyone in zip(params, grads, flat[-len(params) :].tolist(), strict=True):
        p.grad = flat[offset : offset + g.numel()].view_as(p).clone() if anyone else None
        offset += g.numel()


def sum_over_processes(procs: Processes) -> Callable[[torch.Tensor], None] | None:
    """A function that sums a tensor over the processes in place; None in a single process."""
    return (lambda t: dist.all_reduce(t)) if procs.world_size > 1 else None


def gather(procs: Processes, obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if procs.world_size == 1:
        return [obj]
    items = [None] * procs.world_size
    dist.all_gather_object(items, obj)
    return items
