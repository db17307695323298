"""Re-ID backbones with BN-neck heads: ResNet-18/34, SCL-net, and search-space points."""
from edgereid.models.bireid import BiReIDResNet, binary_complexity, load_float_twin
from edgereid.models.binary import QUANTIZERS, QuantConv2d, QuantLinear, SameMaxPool2d, is_binary
from edgereid.models.heads import ReidOutput
from edgereid.models.registry import build_model, list_models, model_complexity
from edgereid.models.searched import SearchedNet, build_from_architecture
from edgereid.models.switchable import (MODALITIES, SwitchableBatchNorm1d, SwitchableBatchNorm2d, bn_switches,
                                        for_modality, make_switchable, modality, set_modality)

__all__ = ["ReidOutput", "build_model", "list_models", "model_complexity", "SearchedNet", "build_from_architecture",
           "BiReIDResNet", "binary_complexity", "load_float_twin", "QUANTIZERS", "QuantConv2d", "QuantLinear",
           "SameMaxPool2d", "is_binary",
           "MODALITIES", "SwitchableBatchNorm1d", "SwitchableBatchNorm2d", "for_modality", "modality",
           "set_modality", "make_switchable", "bn_switches"]
