"""Identity (label-smoothed cross-entropy) and metric (batch-hard triplet) losses, and their sum."""
from edgereid.losses.cross_entropy import CrossEntropyLabelSmooth
from edgereid.losses.reid import ReidLoss
from edgereid.losses.triplet import TripletLoss

__all__ = ["CrossEntropyLabelSmooth", "TripletLoss", "ReidLoss"]
