"""Training and evaluation: the loop, checkpoints, feature extraction, protocol metrics."""
from edgereid.engine.batches import LoaderBatches, PKBatches
from edgereid.engine.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from edgereid.engine.evaluator import EvalResult, evaluate, extract_features
from edgereid.engine.loop import FitResult, LRSchedule, fit
from edgereid.engine.trainer import TrainConfig, train

__all__ = ["TrainConfig", "train", "fit", "FitResult", "LRSchedule", "PKBatches", "LoaderBatches", "EvalResult",
           "evaluate", "extract_features", "save_checkpoint", "load_checkpoint", "model_from_checkpoint"]
