"""Which fusion rules a board's runtime follows, and the kernels an architecture runs there.

The rules themselves (BN folding, ReLU fusion, per runtime id) and `fuse` belong to the
search space (edgereid.search_space.fusion), which lowers its own layers; this module
picks the rules for a board and re-exports them for the latency API.
"""
from __future__ import annotations

from edgereid.errors import LatencyError
from edgereid.ops import FusedLayer
from edgereid.search_space.architecture import Architecture
from edgereid.search_space.fusion import RULES, FusionRules, fuse, fused_layers


def get_rules(rules_id: str) -> FusionRules:
    if rules_id not in RULES:
        raise LatencyError(f"unknown fusion rules {rules_id!r}; known: {', '.join(sorted(RULES))}")
    return RULES[rules_id]


def rules_for_board(board) -> FusionRules:
    """Firmware boards (Cortex-M, run under QEMU or over serial) use the firmware's rules."""
    if board.is_mcu or board.run.kind in ("qemu", "serial"):
        return RULES["edgereid-fw-v1"]
    return RULES["litert-v1"]


def architecture_kernels(arch: Architecture, rules: FusionRules) -> list[FusedLayer]:
    return fused_layers(arch, rules)


__all__ = ["RULES", "FusionRules", "FusedLayer", "fuse", "get_rules", "rules_for_board", "architecture_kernels"]
