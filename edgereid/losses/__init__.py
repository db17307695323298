"""Identity (label-smoothed cross-entropy) and metric (batch-hard triplet) losses."""
from edgereid.losses.cross_entropy import CrossEntropyLabelSmooth
from edgereid.losses.triplet import TripletLoss

__all__ = ["CrossEntropyLabelSmooth", "TripletLoss"]
