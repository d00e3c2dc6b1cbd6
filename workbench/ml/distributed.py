"""Multi-process training under ``torchrun``: process group, ranks, reductions.

``train()`` calls ``setup()``: when ``torchrun`` (or any launcher) set ``WORLD_SIZE`` > 1
it joins the process group (NCCL on CUDA, gloo on CPU) and every rank trains a shard
of the data through DistributedDataParallel; otherwise it is a no-op context of one
process. Only rank 0 writes checkpoints and reports progress. Decisions that end a
loop (time budget, cancel) are reduced across ranks so no rank waits forever in a
collective the others have left.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from workbench.errors import WorkbenchError
from workbench.ml.device import resolve_device


@dataclass
class DistContext:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # True when setup() created the process group (and must destroy it)

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and reports progress."""
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any rank (a collective: all must call)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def max_code(self, code: int) -> int:
        """The largest of every rank's ``code`` (a collective)."""
        if not self.enabled:
            return code
        t = torch.tensor([code], dtype=torch.int64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def sum_array(self, array: np.ndarray) -> np.ndarray:
        """Element-wise sum of an int64/float64 array over ranks (confusion matrices, counts)."""
        if not self.enabled:
            return array
        t = torch.from_numpy(np.ascontiguousarray(array)).to(self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().numpy()

    def mean_float(self, value: float) -> float:
        """Mean of a float over ranks (a collective)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world_size

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP broadcasts buffers at the start of each forward, so after the last training
        step each rank holds statistics of its own batch; validating (and saving) the
        rank-0 model everywhere needs them equal.
        """
        if not self.enabled:
            return
        with torch.no_grad():
            for buf in module.buffers():
                dist.broadcast(buf, src=0)

    def broadcast(self, obj: object) -> object:
        """Rank 0's ``obj`` (picklable plain data) on every rank (a collective)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: object) -> list:
        """Every rank's ``obj`` (picklable plain data), in rank order, on every rank (a collective)."""
        if not self.enabled:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group if this context created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def _comm_device(self) -> torch.device:
        # NCCL only moves CUDA tensors; gloo only CPU ones.
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def env_world_size() -> int:
    """WORLD_SIZE as set by torchrun (1 when absent or malformed)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def setup(device: str | None = "auto", timeout_s: float = 1800.0) -> DistContext:
    """Join the process group when launched by torchrun; else a single-process context.

    A process group someone else already initialised (a test, a launcher) is used as it
    is and left for its owner to destroy.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistContext(rank, world, local, _rank_device(device, local, world), owns_group=False)
    world = env_world_size()
    if world == 1:
        return DistContext(device=resolve_device(device))
    if not dist.is_available():
        raise WorkbenchError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    try:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise WorkbenchError("WORLD_SIZE > 1 but RANK is missing: launch with torchrun "
                             "(torchrun --nproc-per-node N -m workbench train ...)") from None
    dev = _rank_device(device, local, world)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    try:
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s),
                                **({"device_id": dev} if dev.type == "cuda" else {}))
    except Exception as exc:  # noqa: BLE001 - rendezvous failures come in many types
        raise WorkbenchError(f"could not join the distributed process group ({backend}, rank "
                             f"{rank} of {world}): {exc}") from None
    return DistContext(rank, world, local, dev, owns_group=True)


def _rank_device(device: str | None, local_rank: int, world: int) -> torch.device:
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None and world > 1:
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise WorkbenchError(f"local rank {local_rank} has no GPU: this node has {count}; "
                                 f"use --nproc-per-node {count} or fewer")
        dev = torch.device("cuda", local_rank)
    return dev
