"""What a Re-ID model returns, and the BN-neck head every model ends with.

BN-neck (Luo et al., "Bag of Tricks", 2019): the pooled feature feeds the triplet loss,
a BatchNorm1d of it (bias frozen at zero) feeds the classifier and is the embedding
used at test time. Keeping the two apart lets the metric and the identity losses
pull on differently normalised copies of the same vector.
"""
from typing import NamedTuple

import torch
from torch import nn


class ReidOutput(NamedTuple):
    """Train-mode output: one entry per supervised head in `logits` and `features`."""

    embedding: torch.Tensor  # [N, D] the test-time embedding (post BN-neck)
    logits: list  # list[Tensor [N, num_classes]] for the identity (CE) losses
    features: list  # list[Tensor [N, C]] pre-BN features for the triplet losses


class BNNeckHead(nn.Module):
    """Pooled vector -> optional linear reduction -> BatchNorm1d (no bias) -> classifier."""

    def __init__(self, in_channels: int, num_classes: int, embedding_dim: int | None = None):
        super().__init__()
        dim = embedding_dim or in_channels
        # A reduction only when asked for a different size, so the default head adds no layer.
        self.reduce = nn.Linear(in_channels, dim) if dim != in_channels else None
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        self.dim = dim
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        if self.reduce is not None:
            nn.init.kaiming_normal_(self.reduce.weight, mode="fan_out")
            nn.init.zeros_(self.reduce.bias)

    def forward(self, pooled: torch.Tensor):
        """Return (pre-BN feature, post-BN embedding, logits or None in eval mode)."""
        feat = self.reduce(pooled) if self.reduce is not None else pooled
        emb = self.bnneck(feat)
        logits = self.classifier(emb) if self.training else None
        return feat, emb, logits


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C]; a mean over H, W exports as one MEAN / AVERAGE_POOL op."""
    return x.mean(dim=(2, 3))


def round_channels(channels: float, divisor: int = 8) -> int:
    """Scale-and-round used by width multipliers: nearest multiple of `divisor`, at least one."""
    return max(divisor, int(channels + divisor / 2) // divisor * divisor)


def init_backbone(model: nn.Module, residual_bn_of) -> None:
    """Kaiming-normal convs, unit BNs, then zero the BN that closes each residual branch.

    `residual_bn_of(module)` returns that BN (or a list of BNs: a split one's per-modality
    pair) for a residual block (None for other modules):
    every block then starts as its shortcut, which makes training from scratch (no
    ImageNet weights here) markedly steadier.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    for m in model.modules():
        bns = residual_bn_of(m)
        for bn in bns if isinstance(bns, (list, tuple)) else [bns]:
            if bn is not None:
                nn.init.zeros_(bn.weight)
