"""Devices and multi-process training through `torchrun`.

`torchrun --nproc_per_node=G --no-python restore-train --config ...` starts one process per GPU
(or per CPU worker); each reads RANK, WORLD_SIZE and LOCAL_RANK from its environment. On CUDA the
processes talk over NCCL, on CPU over gloo. Multi-node is torchrun's `--nnodes` and
`--rdzv-endpoint`; nothing here changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


class DeviceError(RuntimeError):
    """A device that was asked for but cannot be used."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks CUDA when usable; asking for CUDA where it is not usable is an error.

    Raises:
        DeviceError: `cuda` asked for without a usable CUDA device.
    """
    if name not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"unknown device {name!r} (choose auto, cpu or cuda)")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("--device cuda: no usable CUDA device here (torch.cuda.is_available() is False)")
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(f"process {local_rank} has no GPU: only {torch.cuda.device_count()} visible")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def init_distributed(device_name: str) -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise a no-op."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        use_cuda = device_name != "cpu" and torch.cuda.is_available()
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return info


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_mean(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise mean of a tensor over all processes (itself when not distributed)."""
    if not info.enabled:
        return value
    v = value.detach().clone().float()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / info.world_size


@torch.no_grad()
def sync_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts buffers at the start of each forward, but the forward then updates each
    rank's statistics with its own batch; without this, ranks would validate (and decide on early
    stopping) with slightly different models.
    """
    if info.enabled:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
