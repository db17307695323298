"""The kernels of a .tflite file: its ops read with edgereid.tflite.reader, described by the op registry.

A converted .tflite is already fused (BN folded, ReLU fused), so each op is one
kernel. Unlike the firmware front end this accepts any op: a host model may hold ops
the firmware cannot run, and their latency can still be looked up or fitted. An op
with no int8, int4 or binary tensor (a float-only op) has no table precision and is
refused (TFLiteError naming the op).
"""
from __future__ import annotations

from edgereid.ops import FusedLayer, Kernel, op_kind
from edgereid.tflite.reader import read_graph


def read_kernels(path) -> list[FusedLayer]:
    """One FusedLayer per op of the model's subgraph, in execution order."""
    graph = read_graph(path)
    return [FusedLayer(name=f"op{op.index}", layers=(f"op{op.index}:{op.kind}",),
                       kernel=Kernel(op=op.kind, **op_kind(op.kind).read(op, graph)))
            for op in graph.ops]
