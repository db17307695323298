"""Data parallelism for the one training loop, under `torchrun --nproc_per_node N`.

torchrun starts N processes with RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set;
`init_from_env` joins them into a process group (gloo on CPU, nccl when CUDA is
there). Each rank trains on its share of every epoch's batches (the samplers'
`shard_batches`), DistributedDataParallel averages the gradients, so the ranks'
weights stay equal; rank 0 alone writes checkpoints and logs, and a resume reads the
same checkpoint on every rank.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def init_from_env() -> tuple[int, int]:
    """(rank, world size): joins torchrun's process group when WORLD_SIZE > 1, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (so all ranks stop at the same step)."""
    if world_size() <= 1:
        return flag
    t = torch.tensor([int(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


class Replicated(nn.Module):
    """`model` under DistributedDataParallel, whose state_dict is the plain model's (so
    checkpoints of 1 and N processes are the same and resume into either)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        # A split BN leaves its other modality's parameters unused on a one-modality batch.
        split = any(getattr(m, "split", False) for m in model.modules())
        self.ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=split)

    @property
    def module(self) -> nn.Module:
        return self.ddp.module

    def forward(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.module.load_state_dict(state_dict, strict=strict, assign=assign)
