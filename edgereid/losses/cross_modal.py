"""CM-NAS's two-modality objective (Fu et al., ICCV 2021; facts from its released code,
../shared/DESIGN.md): CE + four-way batch-hard triplet + SP + CMMD.

A batch is two aligned halves (`CrossModalSampler`): the first half visible, the second
infrared, sample i of one half the same identity as sample i of the other. Every term
takes the per-sample `modality` (0 visible, 1 infrared) rather than relying on that
order, except SP, which compares the halves position by position and so needs the
alignment (it checks it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgereid.errors import EdgereidError
from edgereid.losses.cross_entropy import CrossEntropyLabelSmooth
from edgereid.losses.triplet import euclidean_distances

VISIBLE, INFRARED = 0, 1


def _check(features: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor) -> None:
    if features.dim() != 2 or pids.shape != (features.shape[0],) or modality.shape != (features.shape[0],):
        raise EdgereidError(f"cross-modal loss: expected features [N, D], pids [N], modality [N]; got "
                            f"{tuple(features.shape)}, {tuple(pids.shape)}, {tuple(modality.shape)}")


def _batch_hard(dist: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor | None:
    """Mean of relu(hardest positive - hardest negative + margin) over anchors (rows) that
    have both a positive and a negative among the candidates (columns); None if none has."""
    valid = same.any(dim=1) & (~same).any(dim=1)
    if not valid.any():
        return None
    hardest_pos = dist.masked_fill(~same, float("-inf")).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    return (hardest_pos - hardest_neg + margin).clamp(min=0)[valid].mean()


def four_way_triplet(features: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor,
                     margin: float = 0.4) -> torch.Tensor:
    """Mean of the batch-hard triplet losses of the four anchor -> candidate pairings
    v-v, t-t, v-t, t-v (a pairing with no valid anchor is left out of the mean).

    Within one modality the anchor itself counts as a distance-0 positive, as in the
    single-modality `TripletLoss`."""
    _check(features, pids, modality)
    dist = euclidean_distances(features)
    same = pids.unsqueeze(0) == pids.unsqueeze(1)
    terms = []
    for a in (VISIBLE, INFRARED):
        for c in (VISIBLE, INFRARED):
            rows, cols = modality == a, modality == c
            t = _batch_hard(dist[rows][:, cols], same[rows][:, cols], margin)
            if t is not None:
                terms.append(t)
    if not terms:
        return features.sum() * 0.0
    return torch.stack(terms).mean()


def _poly2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.t()) ** 2


def cmmd(embeddings: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """Per identity, the biased MMD^2 between its visible and infrared embeddings
    (L2-normalised) with the polynomial kernel k(a, b) = (a.b)^2, averaged over the
    identities that have both modalities in the batch (0 if none)."""
    _check(embeddings, pids, modality)
    z = F.normalize(embeddings, dim=1)
    terms = []
    for pid in torch.unique(pids):
        v = z[(pids == pid) & (modality == VISIBLE)]
        t = z[(pids == pid) & (modality == INFRARED)]
        if len(v) and len(t):
            terms.append(_poly2(v, v).mean() + _poly2(t, t).mean() - 2.0 * _poly2(v, t).mean())
    if not terms:
        return embeddings.sum() * 0.0
    return torch.stack(terms).mean()


def similarity_preserving(features: torch.Tensor, pids: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
    """SP ("correlation consistency"): the Gram matrices of the visible half and of the
    infrared half, each row L2-normalised, compared by mean squared error. The halves must
    be aligned: sample i of each is the same identity (what `CrossModalSampler` yields)."""
    _check(features, pids, modality)
    v, t = modality == VISIBLE, modality == INFRARED
    if int(v.sum()) != int(t.sum()) or not torch.equal(pids[v], pids[t]):
        raise EdgereidError("SP loss: the visible and infrared samples of the batch are not aligned by identity "
                            f"(visible pids {pids[v].tolist()}, infrared pids {pids[t].tolist()}); use "
                            "CrossModalSampler")
    gv = F.normalize(features[v] @ features[v].t(), dim=1)
    gt = F.normalize(features[t] @ features[t].t(), dim=1)
    return F.mse_loss(gv, gt)


class CrossModalLoss(nn.Module):
    """CE (label-smoothed, every head) + `triplet_weight` x four-way triplet (pre-BN-neck
    features of every head) + `sp_weight` x SP (pre-BN-neck, deepest head) + `cmmd_weight` x
    CMMD (post-BN-neck embedding). CM-NAS's weights are the defaults.

    `targets` is `(pids, modality)`; `forward` returns the loss, `terms` also the parts
    for the training log, as `ReidLoss` does."""

    def __init__(self, num_classes: int, label_smoothing: float = 0.1, margin: float = 0.4,
                 triplet_weight: float = 1.0, sp_weight: float = 5.0, cmmd_weight: float = 0.05):
        super().__init__()
        self.ce = CrossEntropyLabelSmooth(num_classes, label_smoothing)
        self.margin, self.triplet_weight = margin, triplet_weight
        self.sp_weight, self.cmmd_weight = sp_weight, cmmd_weight

    def terms(self, outputs, targets) -> tuple[torch.Tensor, dict]:
        pids, modality = targets
        ce = sum(self.ce(logits, pids) for logits in outputs.logits)
        tri = sum(four_way_triplet(f, pids, modality, self.margin) for f in outputs.features)
        sp = similarity_preserving(outputs.features[-1], pids, modality) if self.sp_weight else ce * 0.0
        mmd = cmmd(outputs.embedding, pids, modality) if self.cmmd_weight else ce * 0.0
        loss = ce + self.triplet_weight * tri + self.sp_weight * sp + self.cmmd_weight * mmd
        acc = (outputs.logits[-1].argmax(1) == pids).float().mean().item() if outputs.logits else 0.0
        return loss, {"ce": float(ce.detach()), "triplet": float(tri.detach()), "sp": float(sp.detach()),
                      "cmmd": float(mmd.detach()), "acc": acc}

    def forward(self, outputs, targets) -> torch.Tensor:
        return self.terms(outputs, targets)[0]
