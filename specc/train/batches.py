"""Batches from tensors in memory: the order is a function of (seed, epoch) only.

The global batch is `batch_size` samples whatever the number of processes: global batch b of
an epoch is positions [b * batch_size, (b + 1) * batch_size) of that epoch's permutation, and
rank r of W takes the r-th contiguous slice of it (DistributedSampler semantics, without
padding). So 1 process and W processes see the same global batches, and resuming at batch b of
epoch e needs nothing but (seed, e, b). For training, a last batch too small to give every rank
two samples (BatchNorm needs two) is dropped; for validation (never shuffled), a last batch
smaller than the number of ranks is merged into the one before, so every rank runs the same
number of batches (FSDP needs that).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

SEED_STRIDE = 1_000_003  # epoch e uses generator seed `seed * SEED_STRIDE + e`


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1


class Batch(NamedTuple):
    inputs: tuple  # tensors in the model's input order
    targets: tuple  # tensors in the plan's target order
    size: int  # samples on this rank
    global_size: int  # samples of the whole global batch (all ranks)


class Batches:
    """One split's batches for one rank. `epoch(e, start)` yields Batch objects from batch `start`."""

    def __init__(self, tensors: dict, input_names, target_names, batch_size: int, *, shuffle: bool, seed: int,
                 shard: Shard = Shard(), device=None, workers: int = 0, tail: str = "drop"):
        self.names = tuple(input_names) + tuple(target_names)
        self.n_inputs = len(tuple(input_names))
        self.batch_size, self.shuffle, self.seed, self.shard = batch_size, shuffle, seed, shard
        self.n = len(tensors[self.names[0]])
        device = torch.device(device or "cpu")
        on_device = device.type == "cpu" or _nbytes(tensors, self.names) <= 1 << 30  # small data lives on the GPU
        self.tensors = tuple(tensors[k].to(device if on_device else "cpu") for k in self.names)
        self.index_device = self.tensors[0].device
        self.workers = workers if self.index_device.type == "cpu" else 0  # workers help only with data in RAM
        self.device = device
        self.move = self.index_device != device
        self.pin = device.type == "cuda" and not on_device
        self.sizes = batch_sizes(self.n, batch_size, shard.world, tail)
        self.local_sizes = [hi - lo for lo, hi in (_slice(size, shard) for size in self.sizes)]

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def samples(self) -> int:
        return sum(self.sizes)

    def loss_scales(self, accumulate: int) -> list[float]:
        """Per batch, the factor on this rank's mean loss that makes an accumulation group's summed
        gradients, averaged over the ranks, the mean gradient over the group's global samples: world *
        local samples / the group's samples (1 / accumulate when all micro-batches and slices are equal)."""
        scales = []
        for first in range(0, len(self.sizes), accumulate):
            group = sum(self.sizes[first:first + accumulate])
            scales += [self.shard.world * local / group for local in self.local_sizes[first:first + accumulate]]
        return scales

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        gen = torch.Generator().manual_seed(self.seed * SEED_STRIDE + epoch)
        return torch.randperm(self.n, generator=gen)

    def local_indices(self, epoch: int, start: int = 0) -> list[tuple[torch.Tensor, int]]:
        """(this rank's sample indices, global batch size) for batches start.. of `epoch`."""
        order = self.order(epoch).to(self.index_device)
        out, pos = [], sum(self.sizes[:start])
        for size in self.sizes[start:]:
            lo, hi = _slice(size, self.shard)
            out.append((order[pos + lo:pos + hi], size))
            pos += size
        return out

    def epoch(self, epoch: int, start: int = 0):
        plan = self.local_indices(epoch, start)
        if self.workers > 0:
            yield from self._loader(plan)
            return
        for idx, size in plan:
            yield self._batch([t[idx] for t in self.tensors], size)

    def _batch(self, tensors: list, global_size: int) -> Batch:
        if self.move:
            tensors = [t.to(self.device, non_blocking=True) for t in tensors]
        return Batch(tuple(tensors[:self.n_inputs]), tuple(tensors[self.n_inputs:]), len(tensors[0]), global_size)

    def _loader(self, plan):
        """Batches assembled by worker processes (DataLoader), in exactly the same order."""
        from torch.utils.data import DataLoader

        # DataLoader draws its workers' base seed from the global RNG unless given a generator: that draw
        # would shift dropout's stream, so a run resumed mid-epoch would differ from an uninterrupted one
        loader = DataLoader(_Rows(self.tensors), sampler=[idx.cpu() for idx, _ in plan], batch_size=None,
                            num_workers=self.workers, pin_memory=self.pin, generator=torch.Generator())
        for tensors, (_, size) in zip(loader, plan):
            yield self._batch(list(tensors), size)


class _Rows:
    """A map-style dataset whose items are whole batches: dataset[index_tensor] -> tensors."""

    def __init__(self, tensors: tuple):
        self.tensors = tensors

    def __getitem__(self, idx):
        return tuple(t[idx] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


def _slice(size: int, shard: Shard) -> tuple[int, int]:
    return size * shard.rank // shard.world, size * (shard.rank + 1) // shard.world


def batch_sizes(n: int, batch_size: int, world: int, tail: str) -> list[int]:
    """The global batches' sizes for `n` samples: full ones, then the rest as `tail` says ("drop": kept
    if it gives each of the `world` processes 2 samples; "merge": into the last batch if smaller than world)."""
    sizes = [batch_size] * (n // batch_size)
    rest = n - batch_size * len(sizes)
    if tail == "drop" and rest >= 2 * world:  # even when it is the only batch: 1 sample on a rank stops BatchNorm
        sizes.append(rest)
    elif tail == "merge" and rest:
        if rest < world and sizes:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return sizes


def _nbytes(tensors: dict, names) -> int:
    return sum(tensors[k].element_size() * tensors[k].nelement() for k in names)
