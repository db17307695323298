"""PKSampler: P identities x K images per batch, reproducible per (seed, epoch)."""
from collections import Counter

import pytest

from edgereid.data import ImageRecord, PKSampler
from edgereid.errors import DatasetError


def records():
    # identity i has i + 1 images (1..12), so some need topping up to K
    return [ImageRecord(f"{pid}_{k}.jpg", pid, 1 + k % 3) for pid in range(12) for k in range(pid + 1)]


def batches(sampler):
    idx = list(sampler)
    size = sampler.p * sampler.k
    assert len(idx) == len(sampler) and len(idx) % size == 0
    return [idx[i:i + size] for i in range(0, len(idx), size)]


def test_every_batch_is_p_ids_times_k_images():
    recs = records()
    sampler = PKSampler(recs, p=4, k=3, seed=0)
    out = batches(sampler)
    assert len(out) >= 5
    for batch in out:
        counts = Counter(recs[i].pid for i in batch)
        assert len(counts) == 4 and set(counts.values()) == {3}
        for i in range(0, 12, 3):  # the K images of one identity are consecutive
            assert len({recs[j].pid for j in batch[i:i + 3]}) == 1


def test_deterministic_per_epoch():
    a, b = PKSampler(records(), 4, 3, seed=7), PKSampler(records(), 4, 3, seed=7)
    assert list(a) == list(b)
    a.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 != list(b)
    b.set_epoch(1)
    assert list(b) == epoch1
    assert list(PKSampler(records(), 4, 3, seed=8)) != list(PKSampler(records(), 4, 3, seed=7))


def test_too_few_identities():
    with pytest.raises(DatasetError, match="p=20 identities"):
        PKSampler(records(), p=20, k=2)
    with pytest.raises(DatasetError, match="k=0"):
        PKSampler(records(), p=2, k=0)
