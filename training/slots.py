"""Batches in shared memory for DataLoader workers: slots filled in place, sent as a descriptor.

A worker's `SharedSlots` hands out batch buffers in memfd shared memory; `SharedBatch` pickles
as the slot's file descriptor, and the main process maps it (`_attach_batch`) instead of
receiving a copy.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing.reduction
import os
import weakref

import numpy as np
import torch

SHARED_SLOTS = 6  # batch buffers per DataLoader worker: prefetched, held, being filled
MMAP_PAGE_BYTES = 4096  # a slot's first page holds its in-use flag; the arrays start after it


class SharedSlots:
    """A DataLoader worker's batch buffers in shared memory (memfd), each reused once released.

    Sent as ordinary tensors, each batch would be copied by torch into fresh shared memory
    (15 MB of page faults and copying at B = 8, T = 256: more than decoding it). Instead the
    worker fills a slot in place and sends its file descriptor; the main process maps it and
    its tensors view the mapping. Byte 0 of a slot is 1 while its batch is in use: the main
    process writes 0 when the last tensor, array or view of the batch is freed (a finalizer on
    the mapping, which every one of them keeps alive), and the worker reuses only slots at 0.
    When all SHARED_SLOTS are in use (a consumer keeping batches), batches are new memory."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], str]]) -> None:
        self.layout = []  # (key, shape, dtype, byte offset)
        at = MMAP_PAGE_BYTES
        for key, (shape, dtype) in shapes.items():
            self.layout.append((key, shape, dtype, at))
            at += -(-math.prod(shape) * np.dtype(dtype).itemsize // 64) * 64
        self.size = at
        self.slots: list[tuple[int, mmap.mmap, dict[str, np.ndarray]]] = []

    def acquire(self) -> tuple[int, dict[str, np.ndarray]] | None:
        """(file descriptor, arrays) of a free slot, marked in use; None if none is free."""
        for fd, mem, arrays in self.slots:
            if mem[0] == 0:
                mem[0] = 1
                return fd, arrays
        if len(self.slots) >= SHARED_SLOTS:
            return None
        fd = os.memfd_create("ghframes-batch", os.MFD_CLOEXEC)
        os.ftruncate(fd, self.size)
        mem = mmap.mmap(fd, self.size)
        arrays = _views(mem, self.layout)
        mem[0] = 1
        self.slots.append((fd, mem, arrays))
        return fd, arrays


def _views(mem, layout) -> dict[str, np.ndarray]:
    return {
        key: np.frombuffer(mem, dtype, math.prod(shape), at).reshape(shape)
        for key, shape, dtype, at in layout
    }


class SharedBatch(dict):
    """A batch filled in a worker's shared slot: it pickles as the slot's file descriptor."""

    def __init__(self, tensors: dict, fd: int, slots: SharedSlots) -> None:
        super().__init__(tensors)
        self.fd, self.slots, self.sent = fd, slots, False

    def __copy__(self):  # DataLoader's default_convert copies the batch before sending it
        return SharedBatch(dict(self), self.fd, self.slots)

    def __reduce__(self):
        if self.sent:  # a second copy would release the slot while the first is in use
            return dict, ({k: v.clone() for k, v in self.items()},)
        self.sent = True
        df = multiprocessing.reduction.DupFd(self.fd)
        return _attach_batch, (df, self.slots.size, self.slots.layout)


class _Mapping(mmap.mmap):
    """An mmap that can carry a finalizer (weak references)."""


def _attach_batch(df, size: int, layout) -> dict[str, torch.Tensor]:
    """In the main process: the tensors of a worker's shared slot (see SharedSlots)."""
    fd = df.detach()
    try:
        flag = mmap.mmap(fd, MMAP_PAGE_BYTES)
        mem = _Mapping(fd, size)
    finally:
        os.close(fd)
    weakref.finalize(mem, _release, flag)
    return {key: torch.from_numpy(v) for key, v in _views(mem, layout).items()}


def _release(flag: mmap.mmap) -> None:
    flag[0] = 0
    flag.close()
