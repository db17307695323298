"""Where the training loop's batches come from.

A batch source tells the loop how many steps an epoch has, draws an epoch's *plan*
(whatever fixes which batches the epoch holds, stored in mid-epoch checkpoints) and
yields the batches `(images, targets, ...)` of a plan from a given step on:

- `PKBatches`: P x K batches drawn by the data stage's PKSampler (or, two-modality,
  P x (K visible + K infrared) by its CrossModalSampler, targets `(pids, modality)`),
  each augmented under RNGs seeded from (seed, epoch, step): an epoch resumed from a
  checkpoint continues with exactly the batches an uninterrupted run would have seen;
- `LoaderBatches`: any iterable of batches (a DataLoader, a list), re-iterated each
  epoch (its sampler's `set_epoch` called when it has one); no plan, a resume skips
  the batches already done.
"""
from __future__ import annotations

import contextlib
import itertools
import random

import numpy as np
import torch

from edgereid.data import CrossModalSampler, PKSampler
from edgereid.engine.checkpoint import capture_rng_state, restore_rng_state
from edgereid.errors import EdgereidError


@contextlib.contextmanager
def seeded_rngs(seed: int):
    """Run a block under torch / numpy / python RNGs seeded with `seed`; restore them after."""
    saved = capture_rng_state()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        restore_rng_state(saved)


def mix_seed(*parts: int) -> int:
    """A fixed (run-to-run stable, unlike hash()) seed from several integers."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def epoch_batches(records, p: int, k: int, seed: int, epoch: int, cross_modal: bool = False,
                  num_replicas: int = 1, rank: int = 0) -> list[list[int]]:
    """The index batches of one epoch: P x K by the data stage's PKSampler, or P x (K visible +
    K infrared) by its CrossModalSampler (`cross_modal`); rank `rank`'s share of them when
    `num_replicas` processes train together."""
    if cross_modal:
        sampler = CrossModalSampler(records, p, k, seed=seed, num_replicas=num_replicas, rank=rank)
        n = 2 * p * k
    else:
        sampler = PKSampler(records, p, k, seed=seed, num_replicas=num_replicas, rank=rank)
        n = p * k
    sampler.set_epoch(epoch)  # the order depends on (seed, epoch) only
    items = list(sampler)
    batches = [[int(i) for i in items[s:s + n]] for s in range(0, len(items) - n + 1, n)]
    if not batches:
        what = "P x (K visible + K infrared)" if cross_modal else "P x K"
        raise EdgereidError(f"training set gives no {what} batch (P={p}, K={k}, {len(records)} images, "
                            f"{len({r.pid for r in records})} ids): lower --p/--k or use more data")
    return batches


class _SeededBatch(torch.utils.data.Dataset):
    """Item `step` = the stacked images and pids of batch `step` (with `modality`, the pids and
    each sample's modality, 0 visible / 1 infrared), augmented under fixed seeds."""

    def __init__(self, images, batches, seed: int, epoch: int, modality: list[int] | None = None):
        self.images, self.batches, self.seed, self.epoch = images, batches, seed, epoch
        self.modality = modality

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, step):
        with seeded_rngs(mix_seed(self.seed, self.epoch, step, 7)):
            items = [self.images[i] for i in self.batches[step]]
        images, pids = torch.stack([it[0] for it in items]), torch.tensor([int(it[1]) for it in items])
        if self.modality is None:
            return images, pids
        return images, (pids, torch.tensor([self.modality[i] for i in self.batches[step]]))


class PKBatches:
    """Seeded P x K batches of `images` (a dataset of (tensor, pid, ...) over `records`).

    Augmentations run under seeds from (seed, epoch, step), so they depend neither on
    what ran before nor on worker processes (`num_workers` > 0 loads in a DataLoader).
    `cross_modal`: P x (K visible + K infrared) batches whose targets are (pids, modality);
    `num_replicas` / `rank` give each torch.distributed rank its share of them.
    """

    def __init__(self, images, records, p: int, k: int, seed: int = 0, num_workers: int = 0, *,
                 cross_modal: bool = False, num_replicas: int = 1, rank: int = 0):
        self.images, self.records = images, records
        self.p, self.k, self.seed, self.num_workers = p, k, seed, num_workers
        self.cross_modal, self.num_replicas, self.rank = cross_modal, num_replicas, rank
        self.modality = [int(r.modality == "infrared") for r in records] if cross_modal else None

    def plan(self, epoch: int) -> list[list[int]]:
        return epoch_batches(self.records, self.p, self.k, self.seed, epoch, self.cross_modal, self.num_replicas,
                             self.rank)

    def steps_per_epoch(self) -> int:
        return len(self.plan(0))

    def load(self, epoch: int, plan, start: int):
        loader = _SeededBatch(self.images, plan, self.seed, epoch, self.modality)
        steps = range(start, len(plan))
        if self.num_workers <= 0:
            return (loader[s] for s in steps)
        return iter(torch.utils.data.DataLoader(loader, batch_size=None, sampler=list(steps),
                                                num_workers=self.num_workers))


class LoaderBatches:
    """Any iterable of `(images, targets, ...)` batches, at most `max_steps_per_epoch` a
    pass; batches of fewer than `min_batch_size` images are left out (a batch-hard
    triplet needs two)."""

    def __init__(self, loader, max_steps_per_epoch: int | None = None, min_batch_size: int = 1):
        self.loader, self.max_steps, self.min_batch_size = loader, max_steps_per_epoch, min_batch_size

    def plan(self, epoch: int):
        return None

    def steps_per_epoch(self) -> int:
        try:
            n = len(self.loader)
        except TypeError:
            n = self.max_steps or 1
        return min(n, self.max_steps) if self.max_steps is not None else n

    def load(self, epoch: int, plan, start: int):
        for obj in (getattr(self.loader, "sampler", None), getattr(self.loader, "batch_sampler", None), self.loader):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
                break
        kept = (b for b in self.loader if batch_size(b) >= self.min_batch_size)
        return itertools.islice(kept, start, self.max_steps)


def batch_size(batch) -> int:
    """Images in a batch `(images, ...)` (or a bare tensor)."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(x.shape[0])


def as_batches(data):
    """A batch source (anything with plan / steps_per_epoch / load) as is, else LoaderBatches."""
    if all(hasattr(data, name) for name in ("plan", "steps_per_epoch", "load")):
        return data
    return LoaderBatches(data)
