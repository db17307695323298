"""Firmware compiler: int8 .tflite -> self-contained C project -> build and size check."""
from edgereid.firmware.build import BuildResult, build_firmware, format_report, generate
from edgereid.firmware.lowering import lower_graph, register_lowering, supported_ops
from edgereid.firmware.planner import Schedule, plan
from edgereid.firmware.frontend import read_tflite
from edgereid.firmware import lowering_lce  # noqa: E402,F401  (registers the Lce* lowerings)

__all__ = ["BuildResult", "Schedule", "build_firmware", "format_report", "generate", "lower_graph", "plan",
           "read_tflite", "register_lowering", "supported_ops"]
