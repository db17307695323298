"""Identity (label-smoothed cross-entropy) and metric (batch-hard triplet) losses, their sum,
and CM-NAS's two-modality objective (four-way triplet, SP, CMMD)."""
from edgereid.losses.cross_entropy import CrossEntropyLabelSmooth
from edgereid.losses.cross_modal import CrossModalLoss, cmmd, four_way_triplet, similarity_preserving
from edgereid.losses.reid import ReidLoss
from edgereid.losses.triplet import TripletLoss

__all__ = ["CrossEntropyLabelSmooth", "TripletLoss", "ReidLoss", "CrossModalLoss", "four_way_triplet", "cmmd",
           "similarity_preserving"]
