"""Predict a model's latency on a board: overhead + the sum of its kernels' table entries.

A kernel configuration missing from the table is predicted by a per-op linear cost
model fitted to the table's own entries (least squares on MACs, input, output and
weight bytes, weighted so that relative errors count equally) and flagged as fitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.errors import LatencyError
from edgereid.latency.fusion import FusedLayer, architecture_kernels, rules_for_board
from edgereid.latency.kernels import Kernel
from edgereid.latency.runtime import runtime_of
from edgereid.latency.table import LatencyTable, load_table
from edgereid.latency.tflite_ops import read_kernels
from edgereid.search_space.architecture import Architecture, load_architecture

FEATURES = ("const", "macs", "input_bytes", "output_bytes", "weight_bytes")


def features(kernel: Kernel) -> np.ndarray:
    return np.array([1.0, kernel.macs, kernel.input_bytes, kernel.output_bytes, kernel.weight_bytes])


class OpCostModel:
    """cost(kernel) = w . features(kernel), one weight vector per op kind (and precision).

    Op kinds with too few entries for all features fall back to fewer features, and
    kinds absent from the table to one model fitted to every entry.
    """

    def __init__(self, table: LatencyTable):
        rows: dict[tuple[str, str], list[tuple[np.ndarray, float]]] = {}
        everything = []
        for kernel, entry in table.kernels():
            rows.setdefault((kernel.op, kernel.precision), []).append((features(kernel), entry.median))
            everything.append((features(kernel), entry.median))
        self.unit = table.unit
        self.weights = {k: self._fit(v) for k, v in rows.items()}
        self.fallback = self._fit(everything) if everything else None

    @staticmethod
    def _fit(rows) -> np.ndarray | None:
        x = np.stack([r[0] for r in rows])
        y = np.array([r[1] for r in rows], dtype=float)
        # Relative error matters, not absolute: weight each row by 1/median.
        scale = 1.0 / np.maximum(y, np.max(y) * 1e-6 + 1e-30)
        # Most features for which there are at least two rows per feature; always keep const + macs.
        keep = max(2, min(len(FEATURES), len(rows) // 2))
        cols = list(range(keep))
        w, *_ = np.linalg.lstsq(x[:, cols] * scale[:, None], y * scale, rcond=None)
        full = np.zeros(len(FEATURES))
        full[cols] = w
        return full

    def predict(self, kernel: Kernel) -> float:
        w = self.weights.get((kernel.op, kernel.precision))
        if w is None:
            w = self.fallback
        if w is None:
            raise LatencyError(f"cannot predict {kernel.key()}: the latency table has no entries to fit")
        return float(max(features(kernel) @ w, 0.0))


@dataclass(frozen=True)
class LayerPrediction:
    name: str
    kernel: Kernel
    value: float
    source: str              # "measured" | "estimated" (table entry) | "fitted" (not in the table)


@dataclass(frozen=True)
class Prediction:
    board: str
    unit: str
    overhead: float
    layers: tuple[LayerPrediction, ...]

    @property
    def total(self) -> float:
        return self.overhead + sum(p.value for p in self.layers)

    @property
    def fitted(self) -> list[LayerPrediction]:
        return [p for p in self.layers if p.source == "fitted"]


def predict_kernels(fused: list[FusedLayer], table: LatencyTable) -> Prediction:
    model = None
    out = []
    for f in fused:
        entry = table.get(f.kernel)
        if entry is not None:
            out.append(LayerPrediction(f.name, f.kernel, entry.median, "estimated" if entry.estimated else "measured"))
            continue
        model = model or OpCostModel(table)
        out.append(LayerPrediction(f.name, f.kernel, model.predict(f.kernel), "fitted"))
    overhead = table.overhead.median if table.overhead else 0.0
    return Prediction(table.board, table.unit, overhead, tuple(out))


def model_kernels(model, board) -> list[FusedLayer]:
    """Kernels of an Architecture, an architecture JSON file or a .tflite file."""
    if isinstance(model, Architecture):
        return architecture_kernels(model, rules_for_board(board))
    path = Path(model)
    if path.suffix == ".tflite":
        return read_kernels(path)
    return architecture_kernels(load_architecture(path), rules_for_board(board))


def predict(model, board, table: LatencyTable | None = None) -> Prediction:
    """Predicted latency of `model` (Architecture, .json or .tflite) on `board` (a Board)."""
    if table is None:
        table = load_table(board)
        table.check_runtime(runtime_of(board), rules_for_board(board).id)
    return predict_kernels(model_kernels(model, board), table)


def format_prediction(pred: Prediction) -> str:
    unit = pred.unit
    scale, shown = (1e3, "ms") if unit == "s" else (1.0, unit)
    lines = [f"{'layer':<24} {'kernel':<64} {shown:>14}  source"]
    for p in pred.layers:
        lines.append(f"{p.name:<24} {p.kernel.key():<64} {p.value * scale:>14.4g}  {p.source}")
    lines.append(f"{'overhead (per inference)':<89} {pred.overhead * scale:>14.4g}")
    lines.append(f"{'total':<89} {pred.total * scale:>14.4g}  on {pred.board}")
    if pred.fitted:
        lines.append(f"{len(pred.fitted)} of {len(pred.layers)} kernels are not in the table: predicted by the "
                     "fitted per-op model (marked 'fitted')")
    return "\n".join(lines)


__all__ = ["OpCostModel", "LayerPrediction", "Prediction", "predict_kernels", "predict", "model_kernels",
           "format_prediction"]
