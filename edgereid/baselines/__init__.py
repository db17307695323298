"""Non-learned reference methods, to show what a trained model has to beat."""
from edgereid.baselines.histogram import evaluate_histogram_baseline, histogram_features

__all__ = ["histogram_features", "evaluate_histogram_baseline"]
