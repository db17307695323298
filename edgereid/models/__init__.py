"""Re-ID backbones with BN-neck heads: ResNet-18/34, SCL-net, and search-space points."""
from edgereid.models.heads import ReidOutput
from edgereid.models.registry import build_model, list_models, model_complexity
from edgereid.models.searched import SearchedNet, build_from_architecture
from edgereid.models.switchable import (MODALITIES, SwitchableBatchNorm1d, SwitchableBatchNorm2d, for_modality,
                                        modality, set_modality)

__all__ = ["ReidOutput", "build_model", "list_models", "model_complexity", "SearchedNet", "build_from_architecture",
           "MODALITIES", "SwitchableBatchNorm1d", "SwitchableBatchNorm2d", "for_modality", "modality",
           "set_modality"]
