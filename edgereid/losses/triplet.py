"""Batch-hard triplet loss (Hermans et al. 2017): per anchor, its hardest positive
(farthest same-id sample) against its hardest negative (closest other-id sample)."""
import torch
from torch import nn


def euclidean_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances [N, N]; clamped before sqrt so its gradient stays finite."""
    sq = (x * x).sum(dim=1, keepdim=True)
    d2 = sq + sq.t() - 2.0 * (x @ x.t())
    return d2.clamp(min=1e-12).sqrt()


class TripletLoss(nn.Module):
    def __init__(self, margin: float = 0.3):
        super().__init__()
        self.margin = margin

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over anchors of relu(d(a, hardest p) - d(a, hardest n) + margin).

        Anchors with no other-id sample in the batch have no triplet and are left out;
        a batch with none at all gives 0 (still connected to the graph).
        """
        dist = euclidean_distances(features)
        same = targets.unsqueeze(0) == targets.unsqueeze(1)
        # The anchor itself counts as a (distance-0) positive, as in the usual implementation.
        hardest_pos = dist.masked_fill(~same, float("-inf")).max(dim=1).values
        hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
        has_neg = (~same).any(dim=1)
        if not has_neg.any():
            return features.sum() * 0.0
        losses = (hardest_pos - hardest_neg + self.margin).clamp(min=0)
        return losses[has_neg].mean()
