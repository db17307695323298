"""The firmware compiler's front end: a .tflite read into the IR, refused where it cannot run.

On top of the reader's checks (edgereid.tflite.reader: indices, types, shapes, sizes,
quantization, constant graph inputs): supported ops and their dtypes, graph I/O dtypes
model.h can describe, activations of rank <= 4 with every dim >= 1 and int8 ones
quantized per tensor, data flow in execution order, and each op's own check
(lowering.check_op: options, declared output shape, kernel ranges). Float32 ops run only where
LiteRT's reference arithmetic can be reproduced exactly (lowering.FLOAT_RUN_KINDS); any other
float32 op is refused naming why (FLOAT_REFUSED). Several inputs and outputs are accepted.
Every reason to refuse a file is a FirmwareError on one line naming the file and, where it
is about one op or tensor, the op's index and kind, the tensor's index and name, the field
and what was expected.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import FirmwareError, TFLiteError
from edgereid.firmware import lowering
from edgereid.tflite.ir import Graph, Op
from edgereid.tflite.reader import read_graph, tensor_label


# Float32 ops converters leave at a graph's ends or in islands that the firmware does not run, and
# why: each would need a C library function (exp, tanh, log ...) whose float results differ from
# LiteRT's in the last bit on some inputs, so the output could not be byte-exact. The float ops that
# are run: lowering.FLOAT_RUN_KINDS (comparisons and single IEEE operations, reproduced in order).
FLOAT_REFUSED = {
    "LOGISTIC": "1 / (1 + exp(-x)) needs the C library's expf",
    "TANH": "needs the C library's tanhf",
    "EXP": "needs the C library's expf",
    "LOG": "needs the C library's logf",
    "HARD_SWISH": "LiteRT's float hard-swish is not reproduced",
    "SOFTMAX": "float softmax needs the C library's expf",
    "GELU": "needs the C library's erff / tanhf",
}


def _refuse_float(graph: Graph, op: Op, path: Path) -> None:
    """A float32 op the firmware does not run: an error naming the op, its index and why."""
    # A float op: every activation it reads and writes is float32 (mixed ones get _check_dtypes's
    # slot-by-slot message).
    dtypes = {graph.tensors[t].dtype for t in op.inputs + op.outputs if t >= 0 and not graph.tensors[t].is_const}
    if dtypes != {"float32"}:
        return
    if op.kind in lowering.FLOAT_RUN_KINDS and op.kind in lowering.supported_ops():
        return
    why = FLOAT_REFUSED.get(op.kind, "only these float32 ops are run exactly as LiteRT's reference kernels: "
                            + ", ".join(lowering.FLOAT_RUN_KINDS))
    raise FirmwareError(f"{path}: op {op.index} ({op.kind}) on float32 is not run: {why}; quantize it to int8 "
                        "(or end the graph before it)")


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
                    f"{path}: op {op.index} ({op.kind}) {role} {slot} is {tensor_label(t)} of dtype "
                    f"{t.dtype}; {expected}"
                )


IO_DTYPES = ("int8", "float32")     # what model.h can describe (EREID_DTYPE_INT8 / _FLOAT32)


def _check_graph_io(graph: Graph, path: Path) -> None:
    """Inputs and outputs the generated API can pass: int8 or float32 activations."""
    # Several inputs (outputs) are packed into the one input (output) buffer (planner.packed_input_offsets).
    if not graph.inputs or not graph.outputs:
        raise FirmwareError(f"{path}: model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                            "expected at least 1 of each")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        if len(set(indices)) != len(indices):
            raise FirmwareError(f"{path}: graph {role}s {list(indices)} name a tensor twice; expected distinct "
                                "tensors")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for slot, ti in enumerate(indices):
            t = graph.tensors[ti]
            if t.dtype not in IO_DTYPES:
                raise FirmwareError(f"{path}: graph {role} {slot} is {tensor_label(t)} of dtype {t.dtype}; expected "
                                    f"{' or '.join(IO_DTYPES)}")


def _check_activations(graph: Graph, path: Path) -> None:
    """Every activation the ops touch: rank <= 4, every dim >= 1; int8 ones quantized per tensor."""
    seen = set()
    for op in graph.ops:
        for ti in op.inputs + op.outputs:
            if ti < 0 or ti in seen or graph.tensors[ti].is_const:
                continue
            seen.add(ti)
            t = graph.tensors[ti]
            if len(t.shape) > 4 or any(d < 1 for d in t.shape):
                raise FirmwareError(f"{path}: op {op.index} ({op.kind}) uses {tensor_label(t)}: shape "
                                    f"{list(t.shape)}; expected rank <= 4 and every dimension >= 1")
            if t.dtype == "int8" and len(t.scales) != 1:
                raise FirmwareError(f"{path}: op {op.index} ({op.kind}) uses {tensor_label(t)}: quantization has "
                                    f"{len(t.scales)} scales; expected one (a per-tensor quantized int8 activation)")


def _check_dataflow(graph: Graph, path: Path) -> None:
    """Schedule order = file order: each activation written once, read only after it is written
    (or a graph input), graph inputs never written, the graph output written by an op."""
    written: dict[int, int] = {ti: -1 for ti in graph.inputs}
    for op in graph.ops:
        for slot, ti in enumerate(op.inputs):
            if ti < 0 or graph.tensors[ti].is_const:
                continue
            if ti not in written:
                raise FirmwareError(f"{path}: op {op.index} ({op.kind}) input {slot} is "
                                    f"{tensor_label(graph.tensors[ti])}, which no earlier op writes and is no graph "
                                    "input; expected ops in execution order")
        for slot, ti in enumerate(op.outputs):
            if ti in written:
                by = "the caller (a graph input)" if written[ti] < 0 else f"op {written[ti]}"
                raise FirmwareError(f"{path}: op {op.index} ({op.kind}) output {slot} is "
                                    f"{tensor_label(graph.tensors[ti])}, already written by {by}; expected every "
                                    "tensor written once")
            written[ti] = op.index
    for slot, ti in enumerate(graph.outputs):
        if written.get(ti, -1) < 0:
            raise FirmwareError(f"{path}: graph output {slot} is {tensor_label(graph.tensors[ti])}, which no op "
                                "writes; expected the output of an op")


def read_tflite(path) -> Graph:
    """Parse `path` into a Graph; refuse what the firmware cannot run (see module doc)."""
    path = Path(path)
    try:
        graph = read_graph(path)
    except TFLiteError as exc:
        raise FirmwareError(str(exc)) from None
    supported = lowering.supported_ops()
    for op in graph.ops:
        _refuse_float(graph, op, path)
        if op.kind not in supported:
            raise FirmwareError(
                f"{path}: op {op.index} ({op.kind}) is not supported; supported: {', '.join(sorted(supported))}"
            )
        entry = lowering.registry_entry(op.kind)
        (entry.check_dtypes or _check_dtypes)(graph, op, path)
    _check_graph_io(graph, path)
    _check_activations(graph, path)
    _check_dataflow(graph, path)
    for op in graph.ops:
        lowering.check_op(graph, op, path)
    return graph
