"""Full-integer TFLite with INT4 filters: the int8 export, then the int4 layers' filters stored as INT4.

A quantized graph from `edgereid.compress` marks an int4 weight by its quantize op's range
([-7, 7] instead of [-127, 127]). litert-torch converts it like any int8 weight and writes
the codes unchanged into an int8 filter tensor; here those filters are re-typed INT4
(two per byte, element 2i in the low nibble: `edgereid.tflite.pack_int4`) through the
TFLite layer. Nothing is re-quantized: scales, zero points and biases stay as converted.
Exactness is checked, not assumed: every int4 weight of the torch graph must be found as
one filter whose codes equal the torch graph's quantize op output element for element and
whose scales equal its scales; any miss is an ExportError naming the layer.
Why not ai-edge-quantizer (installed, 0.10): it quantizes a float .tflite with its own
min/max ranges, so its int4 values would not be the QAT model's fake-quantized weights.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import torch

from edgereid import atomic
from edgereid.errors import ExportError
from edgereid.export.exporters import export_tflite
from edgereid.tflite import Graph, METADATA_NAME, pack_int4, read_graph, write_graph

# Ops whose filter (input 1) may be INT4 in LiteRT, and the permutation from the TFLite filter
# layout back to torch's: CONV_2D [O, kH, kW, I], DEPTHWISE_CONV_2D [1, kH, kW, C], FC [O, I].
FILTER_TO_TORCH = {"CONV_2D": (0, 3, 1, 2), "DEPTHWISE_CONV_2D": (3, 0, 1, 2), "FULLY_CONNECTED": (0, 1)}
# LiteRT's BUILTIN_REF resolver registers DEPTHWISE_CONV_2D up to version 6 (7 fails to register).
MAX_DEPTHWISE_VERSION = 6

_quantize_per_channel = torch.ops.quantized_decomposed.quantize_per_channel.default


@dataclasses.dataclass(frozen=True)
class Int4Weight:
    """One int4 weight of a quantized torch graph: its codes in torch layout and per-channel scales."""
    name: str                   # the weight's attribute path in the graph (e.g. "layer1.0.conv1.weight")
    codes: np.ndarray           # int8 values in [-8, 7], torch layout
    scales: np.ndarray          # float32, one per output channel


def _value(graph_module: torch.nn.Module, arg):
    if isinstance(arg, torch.fx.Node):
        if arg.op != "get_attr":
            raise ExportError(f"int4 export: expected a constant for {arg.name}, got a {arg.op} node")
        return functools.reduce(getattr, arg.target.split("."), graph_module)
    return arg


def int4_weights(quantized: torch.fx.GraphModule) -> list[Int4Weight]:
    """The int4 weights of a quantized graph: weights whose per-channel quantize op range fits int4."""
    out = []
    for node in quantized.graph.nodes:
        if node.op != "call_function" or node.target != _quantize_per_channel:
            continue
        weight, scales, zero_points, axis, qmin, qmax, dtype = (_value(quantized, a) for a in node.args[:7])
        if not (-8 <= qmin and qmax <= 7):
            continue
        if int(axis) != 0 or torch.any(zero_points != 0):
            raise ExportError(f"int4 weight {node.args[0].name}: expected symmetric per-output-channel "
                              f"quantization (axis 0, zero point 0), got axis {axis}")
        with torch.no_grad():
            codes = _quantize_per_channel(weight, scales, zero_points, axis, qmin, qmax, dtype)
        out.append(Int4Weight(str(node.args[0].target), codes.numpy().astype(np.int8),
                              scales.detach().float().numpy()))
    return out


def store_int4_filters(graph: Graph, weights: list[Int4Weight]) -> tuple[Graph, list[str]]:
    """`graph` with the filters holding `weights` re-typed INT4; returns it and the filled op kinds.

    Each weight must match an int8 filter of a CONV_2D, DEPTHWISE_CONV_2D or
    FULLY_CONNECTED (same codes in torch layout, same scales), else ExportError.
    """
    by_codes: dict[tuple, list[tuple[int, str]]] = {}
    for op in graph.ops:
        if op.kind not in FILTER_TO_TORCH or len(op.inputs) < 2:
            continue
        t = graph.tensors[op.inputs[1]]
        if t.dtype != "int8" or t.data is None:
            continue
        torch_layout = np.ascontiguousarray(t.array().transpose(FILTER_TO_TORCH[op.kind]))
        by_codes.setdefault((torch_layout.shape, torch_layout.tobytes()), []).append((t.index, op.kind))
    tensors, kinds, claimed = list(graph.tensors), [], set()
    for w in weights:
        hits = by_codes.get((w.codes.shape, w.codes.tobytes()), [])
        # Unclaimed filters first; the converter shares one tensor between identical constants
        # (e.g. all-zero weights behind a zero BN gamma), so a claimed one may hold this weight too.
        hits = [h for h in hits if h[0] not in claimed] + [h for h in hits if h[0] in claimed]
        hits = [h for h in hits if np.allclose(np.asarray(graph.tensors[h[0]].scales, np.float32), w.scales,
                                               rtol=1e-6, atol=0)]
        if not hits:
            raise ExportError(f"int4 export: no int8 filter in the TFLite file holds the codes and scales of the "
                              f"fake-quantized weight {w.name} (shape {w.codes.shape}); the converter changed them")
        index, kind = hits[0]
        if index in claimed:
            continue
        t = tensors[index]
        claimed.add(index)
        tensors[index] = dataclasses.replace(t, dtype="int4", data=pack_int4(t.array()))
        kinds.append(kind)
    ops = []
    for op in graph.ops:
        int4_filter = op.kind in FILTER_TO_TORCH and len(op.inputs) > 1 and op.inputs[1] in claimed
        if int4_filter and op.kind == "DEPTHWISE_CONV_2D" and op.version > MAX_DEPTHWISE_VERSION:
            op = dataclasses.replace(op, version=MAX_DEPTHWISE_VERSION)
        ops.append(op)
    return dataclasses.replace(graph, tensors=tensors, ops=ops), kinds


def export_int4_tflite(quantized: torch.fx.GraphModule, path, input_size=(128, 64), preprocess: dict | None = None,
                       model_name: str | None = None) -> Path:
    """Full-integer TFLite of a mixed int4/int8 quantized graph: int8 activations, INT4 filters where
    the graph's weights are int4. Metadata "edgereid" gains `int4_layers` (the weights' names)."""
    weights = int4_weights(quantized)
    if not weights:
        raise ExportError("int4 export: the model has no int4 weight; export it with export_tflite(int8=True)")
    path = Path(path)
    int8_path = export_tflite(quantized, path, input_size=input_size, int8=True, preprocess=preprocess,
                              model_name=model_name)
    graph, _ = store_int4_filters(read_graph(int8_path), weights)
    meta = json.loads(graph.metadata[METADATA_NAME])
    meta["int4_layers"] = [w.name for w in weights]
    graph.metadata[METADATA_NAME] = json.dumps(meta, sort_keys=True).encode()
    return atomic.write_bytes(path, write_graph(graph))


def weight_bytes(graph: Graph) -> int:
    """Bytes of every constant tensor (weights, biases, shape operands) as stored: the model's share of
    flash before code and tables."""
    return sum(t.nbytes for t in graph.tensors if t.is_const and t.data is not None)


__all__ = ["Int4Weight", "int4_weights", "store_int4_filters", "export_int4_tflite", "weight_bytes",
           "FILTER_TO_TORCH", "MAX_DEPTHWISE_VERSION"]
