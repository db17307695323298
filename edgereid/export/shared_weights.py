"""Align one modality's int8 filters with another's where they differ only by a rounding tie.

A split BN folds per modality; with per-output-channel symmetric int8 the fold cancels out of
the quantized filter (round(127 w a_m / max|w a_m|) = round(127 w / max|w|)), except where
127 w / max|w| sits at a rounding tie: float rounding of the two folds can then round it
apart, and one value differing by 1 makes the whole filter buffer differ, so a multi-variant
firmware image (edgereid.firmware.variants) stores it twice. `align_rounding_ties` sets such
values of `other` to `reference`'s: in a channel quantized at full range in both models
(largest |q| = 127, so its scale is max|w a_m| / 127 and the two rows are the same real row
up to that fold), a value that differs by exactly 1 is a tie, and taking the other rounding
moves it by one least significant bit, a quantization error of 0.5 LSB either way. Channels
whose scale the converter widened (largest |q| < 127: an int32 bias that would not fit) and
values differing by more than 1 are left as they are. Only filter bytes change.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid import atomic
from edgereid.errors import ExportError, TFLiteError
from edgereid.tflite import flatbuf
from edgereid.tflite.schema import S as schema

_FILTER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass
class TieAlignment:
    values: int        # int8 filter values set to the reference's
    channels: int      # output channels they are in
    filters: int       # filter tensors that now equal the reference's and did not before


def _load(source, what: str):
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    try:
        return flatbuf.load(data)
    except TFLiteError as exc:
        raise ExportError(f"{what}: {exc}") from None


def _filters(model) -> list[tuple[int, object]]:
    """(op index, filter tensor) of every conv / depthwise / FC op with an int8 filter."""
    graph = model.subgraphs[0]
    out = []
    for i, op in enumerate(graph.operators or []):
        if flatbuf.op_name(model, op) in _FILTER_OPS and op.inputs is not None and len(op.inputs) > 1:
            t = graph.tensors[op.inputs[1]]
            if t.type == schema.TensorType.INT8 and t.buffer and model.buffers[t.buffer].data is not None:
                out.append((i, t))
    return out


def align_rounding_ties(reference, other, out=None) -> tuple[bytes, TieAlignment]:
    """`other` (a .tflite path or bytes) with its int8 filter values set to `reference`'s where
    they differ by a rounding tie (module doc); the same graph is required. Writes `out` when
    given (atomically); returns the new bytes and what changed."""
    ref, oth = _load(reference, "reference"), _load(other, "other")
    ref_filters, oth_filters = _filters(ref), _filters(oth)
    if [i for i, _ in ref_filters] != [i for i, _ in oth_filters]:
        raise ExportError("align_rounding_ties: the two models' conv / depthwise / FC ops with int8 filters differ; "
                          "expected two exports of one graph")
    stats = TieAlignment(0, 0, 0)
    for (op, ta), (_, tb) in zip(ref_filters, oth_filters):
        shape_a, shape_b = list(ta.shape), list(tb.shape)
        qa_dim = ta.quantization.quantizedDimension if ta.quantization is not None else 0
        qb_dim = tb.quantization.quantizedDimension if tb.quantization is not None else 0
        if shape_a != shape_b or qa_dim != qb_dim:
            raise ExportError(f"align_rounding_ties: op {op} filter is {shape_b} (axis {qb_dim}) in one model, "
                              f"{shape_a} (axis {qa_dim}) in the reference; expected two exports of one graph")
        buf_b = oth.buffers[tb.buffer]
        qa = np.frombuffer(bytes(ref.buffers[ta.buffer].data), np.int8).reshape(shape_a).astype(np.int32)
        qb = np.frombuffer(bytes(buf_b.data), np.int8).reshape(shape_b).astype(np.int32)
        if np.array_equal(qa, qb):
            continue
        ra, rb = np.moveaxis(qa, qa_dim, 0), np.moveaxis(qb, qa_dim, 0).copy()
        rows_a, rows_b = ra.reshape(ra.shape[0], -1), rb.reshape(rb.shape[0], -1)
        for c in np.flatnonzero((rows_a != rows_b).any(axis=1)):
            diff = np.abs(rows_a[c] - rows_b[c])
            if diff.max() != 1 or np.abs(rows_a[c]).max() != 127 or np.abs(rows_b[c]).max() != 127:
                continue
            stats.values += int((diff == 1).sum())
            stats.channels += 1
            rows_b[c] = rows_a[c]
        aligned = np.moveaxis(rows_b.reshape(rb.shape), 0, qa_dim)
        if np.array_equal(aligned, qa):
            stats.filters += 1
        buf_b.data = np.ascontiguousarray(aligned).astype(np.int8).view(np.uint8).reshape(-1)
    data = flatbuf.dump(oth)
    if out is not None:
        atomic.write_bytes(Path(out), data)
    return data, stats


__all__ = ["TieAlignment", "align_rounding_ties"]
