"""The kernels of a .tflite file: its ops read with edgereid.tflite.reader, described by the op registry.

A converted .tflite is already fused (BN folded, ReLU fused), so each op is one
kernel, with one exception: an int8 tensor bitpacked by an LceQuantize that only an
LceBconv2d with int8 output reads is that binary conv's input stage, and the pair is
one kernel, CONV_2D at binary precision (int8 in and out), the unit the search space
and the latency tables use for a binary conv (float or bitpacked outputs keep their
own LCE keys). Unlike the firmware front end
this accepts any op: a host model may hold ops the firmware cannot run, and their
latency can still be looked up or fitted. An op with no int8, int4 or binary tensor
(a float-only op) has no table precision and is refused (TFLiteError naming the op).
"""
from __future__ import annotations

from edgereid.ops import FusedLayer, Kernel, Precision, op_kind
from edgereid.tflite.reader import read_graph

_QUANTIZE, _BCONV = "CUSTOM:LceQuantize", "CUSTOM:LceBconv2d"


def _binary_conv_inputs(graph) -> dict[int, object]:
    """LceBconv2d (int8 output) op index -> the LceQuantize op that bitpacks its int8 input for it alone."""
    readers: dict[int, list] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(op)
    pairs = {}
    for op in graph.ops:
        if op.kind != _QUANTIZE or graph.tensor(op.inputs[0]).dtype != "int8":
            continue
        users = readers.get(op.outputs[0], [])
        if len(users) == 1 and users[0].kind == _BCONV and users[0].inputs[0] == op.outputs[0] \
                and graph.tensor(users[0].outputs[0]).dtype == "int8":
            pairs[users[0].index] = op
    return pairs


def read_kernels(path) -> list[FusedLayer]:
    """One FusedLayer per kernel of the model's subgraph, in execution order."""
    graph = read_graph(path)
    pairs = _binary_conv_inputs(graph)
    absorbed = {q.index for q in pairs.values()}
    layers = []
    for op in graph.ops:
        if op.index in absorbed:
            continue
        fields = op_kind(op.kind).read(op, graph)
        quantize = pairs.get(op.index)
        if quantize is None:
            layers.append(FusedLayer(name=f"op{op.index}", layers=(f"op{op.index}:{op.kind}",),
                                     kernel=Kernel(op=op.kind, **fields)))
            continue
        fields.update(precision=Precision.BINARY)
        layers.append(FusedLayer(name=f"op{op.index}",
                                 layers=(f"op{quantize.index}:{quantize.kind}", f"op{op.index}:{op.kind}"),
                                 kernel=Kernel(op="CONV_2D", **fields)))
    return layers
