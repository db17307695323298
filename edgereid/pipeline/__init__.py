"""The whole pipeline as one resumable job (`edgereid demo`)."""
from edgereid.pipeline.demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
