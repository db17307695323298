"""The Re-ID training objective every stage trains with: identity CE + batch-hard triplet."""
from __future__ import annotations

import torch
from torch import nn

from edgereid.losses.cross_entropy import CrossEntropyLabelSmooth
from edgereid.losses.triplet import TripletLoss


def _value(x) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


class ReidLoss(nn.Module):
    """Label-smoothed CE on every head's logits + `triplet_weight` x batch-hard triplet on
    every head's pre-BN-neck feature.

    `outputs` is anything with `.logits` and `.features` lists (a model's train-mode
    `ReidOutput`). `forward` returns the scalar loss; `terms` also returns what a training
    log wants (`ce`, `triplet`, and `acc` of the deepest head).
    """

    def __init__(self, num_classes: int, label_smoothing: float = 0.1, margin: float = 0.3,
                 triplet_weight: float = 1.0):
        super().__init__()
        self.ce = CrossEntropyLabelSmooth(num_classes, label_smoothing)
        self.triplet = TripletLoss(margin)
        self.triplet_weight = triplet_weight

    def cross_entropy(self, outputs, pids: torch.Tensor) -> torch.Tensor:
        """The identity part alone (e.g. the Taylor pruning criterion's loss)."""
        return sum(self.ce(logits, pids) for logits in outputs.logits)

    def terms(self, outputs, pids: torch.Tensor) -> tuple[torch.Tensor, dict]:
        ce = self.cross_entropy(outputs, pids)
        tri = sum(self.triplet(feat, pids) for feat in outputs.features)
        loss = ce + self.triplet_weight * tri
        acc = (outputs.logits[-1].argmax(1) == pids).float().mean().item() if outputs.logits else 0.0
        return loss, {"ce": _value(ce), "triplet": _value(tri), "acc": acc}

    def forward(self, outputs, pids: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(outputs, pids) + self.triplet_weight * sum(
            self.triplet(feat, pids) for feat in outputs.features)
