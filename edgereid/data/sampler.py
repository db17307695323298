"""PKSampler: batches of P identities x K images each (for batch-hard triplet loss);
CrossModalSampler: P identities x (K visible + K infrared), the halves aligned by identity."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler

from edgereid.data.records import ImageRecord
from edgereid.errors import DatasetError


def shard_batches(batches: list, num_replicas: int, rank: int) -> list:
    """Rank `rank`'s share of an epoch's batches for torch.distributed: every
    `num_replicas`-th batch, the tail cut so that all ranks get the same count (as
    DistributedSampler does for indices: ranks must take the same number of steps)."""
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise DatasetError(f"rank {rank} of {num_replicas} replicas is out of range")
    per_rank = len(batches) // num_replicas
    return batches[rank:per_rank * num_replicas:num_replicas]


def _chunks(rng, idx: np.ndarray, k: int) -> list[np.ndarray]:
    """One identity's images shuffled and cut into chunks of k (topped up with replacement
    when it has fewer than k; a leftover of less than k dropped)."""
    idx = rng.permutation(idx) if len(idx) >= k else rng.choice(idx, k, replace=True)
    return [idx[i:i + k] for i in range(0, len(idx) - k + 1, k)]


class PKSampler(Sampler):
    """Yields dataset indices; every consecutive `p * k` of them are one batch.

    Each epoch, every identity's images are shuffled and cut into chunks of K (an
    identity with fewer than K images is topped up by sampling with replacement; a
    leftover of less than K is dropped); batches then take one chunk from each of P
    identities drawn at random among those with chunks left. The order depends only
    on (seed, epoch): call `set_epoch` each epoch. Use with
    `DataLoader(..., batch_size=p * k, sampler=PKSampler(...))`. `num_replicas` / `rank`:
    this rank's share of the batches (`shard_batches`).
    """

    def __init__(self, records: list[ImageRecord], p: int, k: int, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0):
        if p < 1 or k < 1:
            raise DatasetError(f"PKSampler: p and k must be >= 1, got p={p}, k={k}")
        shard_batches([], num_replicas, rank)   # checks the rank
        by_pid = defaultdict(list)
        for i, r in enumerate(records):
            by_pid[r.pid].append(i)
        if len(by_pid) < p:
            raise DatasetError(f"PKSampler: p={p} identities per batch but the split has only {len(by_pid)}")
        self.index_by_pid = {pid: np.asarray(idx) for pid, idx in sorted(by_pid.items())}
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_replicas, self.rank = num_replicas, rank
        self._cache = None

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks = {}
        for pid, idx in self.index_by_pid.items():
            chunks[pid] = _chunks(rng, idx, self.k)
        batches = []
        while True:
            available = [pid for pid, c in chunks.items() if c]
            if len(available) < self.p:
                break
            chosen = rng.choice(available, self.p, replace=False)
            batches.append(np.concatenate([chunks[pid].pop() for pid in chosen]))
        batches = shard_batches(batches, self.num_replicas, self.rank)
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield from (int(i) for i in batch)

    def __len__(self):
        return len(self._batches()) * self.p * self.k


class CrossModalSampler(Sampler):
    """CM-NAS's identity-aligned batches: P identities x (K visible + K infrared).

    Every consecutive `2 * p * k` indices are one batch: first its visible half (K
    images of each of the P identities, identity by identity), then its infrared half
    in the same identity order, so sample i of one half is the same person as sample i
    of the other (what the SP loss compares and what split BNs route by modality).
    Identities without both modalities in `records` are left out; an identity's images
    of one modality are shuffled and cut into chunks of K (topped up with replacement
    when it has fewer than K), and an identity joins a batch while it has a visible
    chunk left; its infrared chunks are dealt again, reshuffled, when they run out. An
    epoch thus shows every visible image once, as CM-NAS's sampler does (its epoch is
    the larger modality's image count; infrared is the smaller one in SYSU-MM01).
    The order depends only on (seed, epoch).

    `num_replicas` / `rank`: this rank's share of the batches (`shard_batches`).
    """

    def __init__(self, records: list[ImageRecord], p: int, k: int, seed: int = 0, num_replicas: int = 1,
                 rank: int = 0):
        if p < 1 or k < 1:
            raise DatasetError(f"CrossModalSampler: p and k must be >= 1, got p={p}, k={k}")
        shard_batches([], num_replicas, rank)   # checks the rank
        by_pid: dict[int, dict[str, list[int]]] = defaultdict(lambda: {"visible": [], "infrared": []})
        for i, r in enumerate(records):
            if r.modality not in ("visible", "infrared"):
                raise DatasetError(f"CrossModalSampler: record {r.path} has modality {r.modality!r}; expected "
                                   "'visible' or 'infrared'")
            by_pid[r.pid][r.modality].append(i)
        both = {pid: {m: np.asarray(v) for m, v in d.items()} for pid, d in sorted(by_pid.items())
                if d["visible"] and d["infrared"]}
        if len(both) < p:
            raise DatasetError(f"CrossModalSampler: p={p} identities per batch but only {len(both)} identities "
                               "have both visible and infrared images")
        self.index_by_pid = both
        self.p, self.k, self.seed, self.epoch = p, k, seed, 0
        self.num_replicas, self.rank = num_replicas, rank
        self._cache = None

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        chunks = {pid: {m: _chunks(rng, idx, self.k) for m, idx in d.items()} for pid, d in self.index_by_pid.items()}
        batches = []
        while True:
            available = [pid for pid, c in chunks.items() if c["visible"]]
            if len(available) < self.p:
                break
            chosen = rng.choice(available, self.p, replace=False)
            for pid in chosen:
                if not chunks[pid]["infrared"]:
                    chunks[pid]["infrared"] = _chunks(rng, self.index_by_pid[pid]["infrared"], self.k)
            visible = [chunks[pid]["visible"].pop() for pid in chosen]
            infrared = [chunks[pid]["infrared"].pop() for pid in chosen]
            batches.append(np.concatenate(visible + infrared))
        batches = shard_batches(batches, self.num_replicas, self.rank)
        self._cache = (self.epoch, batches)
        return batches

    def __iter__(self):
        for batch in self._batches():
            yield from (int(i) for i in batch)

    def __len__(self):
        return len(self._batches()) * 2 * self.p * self.k
