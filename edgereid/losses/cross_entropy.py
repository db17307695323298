"""Cross-entropy with label smoothing (Szegedy et al. 2016), as in Re-ID baselines."""
import torch
from torch import nn


class CrossEntropyLabelSmooth(nn.Module):
    """Target distribution (1 - eps) on the true class + eps / num_classes everywhere."""

    def __init__(self, num_classes: int, eps: float = 0.1):
        super().__init__()
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"label smoothing eps must be in [0, 1), got {eps}")
        self.num_classes = num_classes
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(logits, dim=1)
        one_hot = torch.zeros_like(log_probs).scatter_(1, targets.unsqueeze(1), 1.0)
        smoothed = (1.0 - self.eps) * one_hot + self.eps / self.num_classes
        return (-smoothed * log_probs).sum(dim=1).mean()
