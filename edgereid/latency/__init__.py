"""Latency lookup tables: profile kernels on boards, predict models, prove the prediction.

    table = profile("host")                       # out/luts/host.json (--out to choose)
    pred = predict(arch_or_tflite, load_board("host"))
    summary = validate("mps2-an386", n=200)       # out/latency.md (results_dir to choose)
"""
from edgereid.latency.fusion import RULES, FusedLayer, FusionRules, architecture_kernels, fuse, rules_for_board
from edgereid.latency.kernels import Kernel, parse_key
from edgereid.latency.predict import OpCostModel, Prediction, format_prediction, model_kernels, predict, predict_kernels
from edgereid.latency.profile import profile
from edgereid.latency.table import Entry, LatencyTable, LatencyTableWarning, load_table, table_path
from edgereid.latency.validate import ValidationSummary, validate

__all__ = ["RULES", "FusedLayer", "FusionRules", "architecture_kernels", "fuse", "rules_for_board", "Kernel",
           "parse_key", "OpCostModel", "Prediction", "format_prediction", "model_kernels", "predict",
           "predict_kernels", "profile", "Entry", "LatencyTable", "LatencyTableWarning", "load_table",
           "table_path", "ValidationSummary", "validate"]
