"""PKSampler: batches of P identities x K images each (for batch-hard triplet loss)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler

from edgereid.data.records import ImageRecord
from edgereid.errors import DatasetError


class PKSampler(Sampler):
    """Yields dataset indices; every consecutive `p * k` of them are one batch.

    Each epoch, every identity's images are shuffled and cut into chunks of K (an
    identity with fewer than K images is topped up by sampling with replacement; a
    leftover of less than K is dropped); batches then take one chunk from each of P
    identities drawn at random among those with chunks left. The order depends only
    on (seed, epoch): call `set_epoch` each epoch. Use with
    `DataLoader(..., batch_size=p * k, sampler=PKSampler(...))`.
    """

    def __init__(self, records: list[ImageRecord], p: int, k: int, seed: int = 0):
        if p < 1 or k < 1:
            raise DatasetError(f"PKSampler: p and k must be >= 1, got p={p}, k={k}")
        by_pid = defaultdict(list)
        for i, r in enumerate(records):
            by_pid[r.pid].append(i)
        if len(by_pid) < p:
            raise DatasetError(f"PKSampler: p={p} identities per batch but the split has only {len(by_pid)}")
        self.index_by_pid = {pid: np.asarray(idx) for pid, idx in sorted(by_pid.items())}
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self._cache = None

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks = {}
        for pid, idx in self.index_by_pid.items():
            idx = rng.permutation(idx) if len(idx) >= self.k else rng.choice(idx, self.k, replace=True)
            chunks[pid] = [idx[i:i + self.k] for i in range(0, len(idx) - self.k + 1, self.k)]
        batches = []
        while True:
            available = [pid for pid, c in chunks.items() if c]
            if len(available) < self.p:
                break
            chosen = rng.choice(available, self.p, replace=False)
            batches.append(np.concatenate([chunks[pid].pop() for pid in chosen]))
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield from (int(i) for i in batch)

    def __len__(self):
        return len(self._batches()) * self.p * self.k
