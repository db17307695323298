"""The firmware compiler's front end: a .tflite read into the IR, refused where it cannot run.

Every reason to refuse a file is a FirmwareError naming the file and, where it is about
one op, the op's index and name.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import FirmwareError, TFLiteError
from edgereid.firmware import lowering
from edgereid.tflite.ir import Graph, Op
from edgereid.tflite.reader import read_graph


def _check_dtypes(graph: Graph, op: Op, path: Path) -> None:
    """int8 activations; int8/int32 constants; float32 only entering QUANTIZE or leaving DEQUANTIZE."""
    expected = ("expected int8 activations, int8/int32 constants, float32 only as QUANTIZE input "
                "or DEQUANTIZE output")
    for role, indices in (("input", op.inputs), ("output", op.outputs)):
        for slot, ti in enumerate(indices):
            if ti < 0:
                continue
            t = graph.tensors[ti]
            if t.is_const:
                ok = t.dtype in ("int8", "int32")
            else:
                ok = t.dtype == "int8" or (t.dtype == "float32" and (
                    (op.kind == "QUANTIZE" and role == "input") or (op.kind == "DEQUANTIZE" and role == "output")))
            if not ok:
                raise FirmwareError(
                    f"{path}: op {op.index} ({op.kind}) {role} {slot} is tensor {ti} '{t.name}' of dtype "
                    f"{t.dtype}; {expected}"
                )


def read_tflite(path) -> Graph:
    """Parse `path` into a Graph; refuse what the firmware cannot run (see module doc)."""
    path = Path(path)
    try:
        graph = read_graph(path)
    except TFLiteError as exc:
        raise FirmwareError(str(exc)) from None
    supported = lowering.supported_ops()
    for op in graph.ops:
        if op.kind not in supported:
            raise FirmwareError(
                f"{path}: op {op.index} ({op.kind}) is not supported; supported: {', '.join(sorted(supported))}"
            )
        entry = lowering.registry_entry(op.kind)
        (entry.check_dtypes or _check_dtypes)(graph, op, path)
    # Several inputs are packed into the one input buffer (planner.packed_input_offsets).
    if not graph.inputs or len(graph.outputs) != 1:
        raise FirmwareError(f"{path}: model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                            "expected at least 1 input and exactly 1 output")
    return graph
