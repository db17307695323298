"""Re-ID backbones with BN-neck heads: ResNet-18/34 and SCL-net."""
from edgereid.models.heads import ReidOutput
from edgereid.models.registry import build_model, list_models, model_complexity

__all__ = ["ReidOutput", "build_model", "list_models", "model_complexity"]
