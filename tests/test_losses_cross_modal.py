"""CM-NAS's two-modality losses on hand-computed tensors, and the identity-aligned sampler."""
import math

import pytest
import torch

from edgereid.data import CrossModalSampler
from edgereid.data.records import ImageRecord
from edgereid.errors import DatasetError, EdgereidError
from edgereid.losses import CrossModalLoss, cmmd, four_way_triplet, similarity_preserving
from edgereid.models.heads import ReidOutput

V, T = 0, 1


def test_cmmd_hand_case():
    # One identity: visible (2,0), (0,1); infrared (1,0). After L2 normalisation,
    # k(v,v) = [[1,0],[0,1]] (mean 1/2), k(t,t) = 1, k(v,t) = [1, 0] (mean 1/2):
    # MMD^2 = 1/2 + 1 - 2 * 1/2 = 1/2.
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert cmmd(z, torch.tensor([7, 7, 7]), torch.tensor([V, V, T])).item() == pytest.approx(0.5)


def test_cmmd_averages_over_identities_with_both_modalities():
    # id 1 is identical across modalities (MMD 0); id 2 has no infrared sample (left out).
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0], [0.0, 1.0], [5.0, 5.0]])
    pids = torch.tensor([7, 7, 7, 1, 1, 2])
    mod = torch.tensor([V, V, T, V, T, V])
    assert cmmd(z, pids, mod).item() == pytest.approx(0.25)


def test_similarity_preserving_hand_case():
    # Visible Gram = I; infrared Gram = all ones, rows normalised to 1/sqrt(2):
    # MSE = (2 (1 - 1/sqrt 2)^2 + 2 (1/sqrt 2)^2) / 4.
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    got = similarity_preserving(f, torch.tensor([3, 4, 3, 4]), torch.tensor([V, V, T, T]))
    assert got.item() == pytest.approx((2 * (1 - 1 / math.sqrt(2)) ** 2 + 1) / 4)


def test_similarity_preserving_refuses_unaligned_halves():
    f = torch.randn(4, 3)
    with pytest.raises(EdgereidError, match="not aligned by identity"):
        similarity_preserving(f, torch.tensor([3, 4, 4, 3]), torch.tensor([V, V, T, T]))


def test_four_way_triplet_hand_case():
    # 1-D features: visible id0 at 0, id1 at 3; infrared id0 at 1, id1 at 5; margin 0.4.
    # v-v and t-t: every hardest positive is the anchor itself, negatives >= 3 away: 0.
    # v-t: id0 anchor: pos 1, neg 5 -> 0; id1 anchor: pos 2, neg 2 -> 0.4; mean 0.2.
    # t-v: id0: pos 1, neg 2 -> 0; id1: pos 2, neg 5 -> 0.  Mean of the four: 0.05.
    f = torch.tensor([[0.0], [3.0], [1.0], [5.0]])
    got = four_way_triplet(f, torch.tensor([0, 1, 0, 1]), torch.tensor([V, V, T, T]), margin=0.4)
    assert got.item() == pytest.approx(0.05, abs=1e-5)


def test_cross_modal_loss_sums_weighted_terms_and_backpropagates():
    torch.manual_seed(0)
    feats = torch.randn(8, 6, requires_grad=True)
    emb = torch.randn(8, 6, requires_grad=True)
    logits = torch.randn(8, 4, requires_grad=True)
    pids = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    mod = torch.tensor([V] * 4 + [T] * 4)
    out = ReidOutput(embedding=emb, logits=[logits], features=[feats])
    loss_fn = CrossModalLoss(4, sp_weight=5.0, cmmd_weight=0.05)
    loss, parts = loss_fn.terms(out, (pids, mod))
    expected = parts["ce"] + parts["triplet"] + 5.0 * parts["sp"] + 0.05 * parts["cmmd"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["sp"] > 0 and parts["cmmd"] > 0 and parts["triplet"] > 0
    loss.backward()
    assert feats.grad.abs().sum() > 0 and emb.grad.abs().sum() > 0


def _records():
    recs = []
    for pid in range(5):
        recs += [ImageRecord(f"v{pid}_{i}.jpg", pid, 1, "visible") for i in range(5)]
        recs += [ImageRecord(f"t{pid}_{i}.jpg", pid, 3, "infrared") for i in range(3)]
    recs += [ImageRecord(f"v9_{i}.jpg", 9, 1, "visible") for i in range(6)]   # no infrared: left out
    return recs


def test_cross_modal_sampler_aligns_halves_by_identity():
    recs = _records()
    s = CrossModalSampler(recs, p=2, k=2, seed=3)
    idx = list(s)
    assert len(idx) == len(s) and len(idx) % 8 == 0 and idx
    for b in range(0, len(idx), 8):
        batch = [recs[i] for i in idx[b:b + 8]]
        vis, ir = batch[:4], batch[4:]
        assert [r.modality for r in vis] == ["visible"] * 4 and [r.modality for r in ir] == ["infrared"] * 4
        assert [r.pid for r in vis] == [r.pid for r in ir]
        assert 9 not in {r.pid for r in batch}
        assert len({r.pid for r in vis}) == 2
    assert idx == list(CrossModalSampler(recs, p=2, k=2, seed=3))        # deterministic
    s.set_epoch(1)
    assert list(s) != idx


def test_cross_modal_sampler_shards_batches_across_ranks():
    recs = _records()
    whole = list(CrossModalSampler(recs, p=1, k=1, seed=0))
    shards = [list(CrossModalSampler(recs, p=1, k=1, seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) > 0
    batches = [whole[i:i + 2] for i in range(0, len(whole), 2)]
    assert shards[0] == sum(batches[0:2 * (len(batches) // 2):2], [])
    assert shards[1] == sum(batches[1:2 * (len(batches) // 2):2], [])


def test_cross_modal_sampler_clear_errors():
    recs = _records()
    with pytest.raises(DatasetError, match="only 5 identities have both"):
        CrossModalSampler(recs, p=6, k=2)
    with pytest.raises(DatasetError, match="rank 2 of 2 replicas is out of range"):
        CrossModalSampler(recs, p=1, k=1, num_replicas=2, rank=2)
