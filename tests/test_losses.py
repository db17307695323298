"""Losses on hand-made cases."""
import math

import pytest
import torch

from edgereid.losses import CrossEntropyLabelSmooth, TripletLoss


def test_label_smoothing_hand_case():
    logits = torch.tensor([[0.0, 0.0, math.log(2.0)]])  # softmax = [1/4, 1/4, 1/2]
    target = torch.tensor([2])
    loss = CrossEntropyLabelSmooth(3, eps=0.3)(logits, target)
    # target distribution [0.1, 0.1, 0.8]
    expected = -(0.1 * math.log(0.25) * 2 + 0.8 * math.log(0.5))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_zero_eps_is_cross_entropy():
    torch.manual_seed(0)
    logits, target = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    ours = CrossEntropyLabelSmooth(4, eps=0.0)(logits, target)
    assert ours.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, target).item(), rel=1e-6)


def test_batch_hard_triplet_hand_case():
    # 1-D points: id 0 at 0 and 1, id 1 at 3 and 7.
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # hardest pos / neg per anchor: a0: 1 / 3, a1: 1 / 2, a2: 4 / 2, a3: 4 / 6
    # relu(p - n + 0.5): 0, 0, 2.5, 0 -> mean 0.625
    assert TripletLoss(margin=0.5)(x, y).item() == pytest.approx(0.625, rel=1e-5)
    # margin 3: 1, 2, 5, 1 -> 2.25
    assert TripletLoss(margin=3.0)(x, y).item() == pytest.approx(2.25, rel=1e-5)


def test_triplet_is_zero_when_classes_are_far_apart_and_grad_finite():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    loss = TripletLoss(0.3)(x, y)
    assert loss.item() == 0.0
    loss.backward()  # identical points: sqrt at 0 must not give NaN
    assert torch.isfinite(x.grad).all()


def test_triplet_without_negatives_gives_zero():
    x = torch.randn(3, 4, requires_grad=True)
    loss = TripletLoss(0.3)(x, torch.tensor([1, 1, 1]))
    assert loss.item() == 0.0
    loss.backward()


def test_reid_loss_sums_every_head_and_weights_the_triplet():
    from edgereid.losses import ReidLoss
    from edgereid.models import ReidOutput

    torch.manual_seed(0)
    pids = torch.tensor([0, 0, 1, 1])
    logits = [torch.randn(4, 3), torch.randn(4, 3)]
    feats = [torch.randn(4, 8), torch.randn(4, 8)]
    out = ReidOutput(torch.randn(4, 8), logits, feats)
    ce, tri = CrossEntropyLabelSmooth(3, 0.1), TripletLoss(0.3)
    expected_ce = ce(logits[0], pids) + ce(logits[1], pids)
    expected_tri = tri(feats[0], pids) + tri(feats[1], pids)
    loss_fn = ReidLoss(3, triplet_weight=0.5)
    assert loss_fn(out, pids).item() == pytest.approx((expected_ce + 0.5 * expected_tri).item(), rel=1e-6)
    assert loss_fn.cross_entropy(out, pids).item() == pytest.approx(expected_ce.item(), rel=1e-6)
    loss, terms = loss_fn.terms(out, pids)
    assert loss.item() == pytest.approx(loss_fn(out, pids).item(), rel=1e-6)
    assert terms["ce"] == pytest.approx(expected_ce.item()) and terms["triplet"] == pytest.approx(expected_tri.item())
    assert terms["acc"] == (logits[1].argmax(1) == pids).float().mean().item()  # the deepest head
