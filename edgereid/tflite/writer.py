"""Write the IR (edgereid.tflite.ir) as a .tflite flatbuffer: builtin and custom ops, any tensor type.

Layout: buffer 0 is the empty sentinel, then one buffer per constant tensor in tensor
order, then one per metadata entry; operator codes in order of first use. The same
Graph always gives the same bytes.
"""
from __future__ import annotations

import flatbuffers

from edgereid.errors import TFLiteError
from edgereid.tflite import schema
from edgereid.tflite.ir import Graph, Op, Tensor
from edgereid.tflite.schema import S

SCHEMA_VERSION = 3


def _tensor(t: Tensor, buffers: list, where: str):
    out = S.TensorT()
    out.name = t.name
    out.shape = [int(d) for d in t.shape]
    if t.dtype not in schema.DTYPE_CODES:
        raise TFLiteError(f"{where}tensor {t.index} ({t.name}): unknown dtype {t.dtype!r}; "
                          f"expected one of {sorted(schema.DTYPE_CODES)}")
    out.type = schema.DTYPE_CODES[t.dtype]
    out.buffer = 0
    if t.data is not None:
        if t.dtype != "string" and len(t.data) != t.nbytes:
            raise TFLiteError(f"{where}tensor {t.index} ({t.name}) holds {len(t.data)} bytes; shape "
                              f"{list(t.shape)} {t.dtype} needs {t.nbytes}")
        buf = S.BufferT()
        buf.data = schema.uint8_vector(t.data)
        buffers.append(buf)
        out.buffer = len(buffers) - 1
    if t.scales:
        q = S.QuantizationParametersT()
        q.scale = [float(v) for v in t.scales]
        q.zeroPoint = [int(v) for v in t.zero_points]
        q.quantizedDimension = int(t.quantized_dimension)
        out.quantization = q
    return out


def _operator(op: Op, opcode_index: int, where: str):
    out = S.OperatorT()
    out.opcodeIndex = opcode_index
    out.inputs = [int(i) for i in op.inputs]
    out.outputs = [int(i) for i in op.outputs]
    if op.is_custom:
        try:
            payload = schema.flexbuffer_encode(op.options)
        except Exception as exc:  # the FlexBuffer encoder rejects values it cannot store
            raise TFLiteError(f"{where}op {op.index} ({op.kind}): custom options cannot be stored as a "
                              f"FlexBuffer map ({type(exc).__name__}: {exc})") from None
        out.customOptions = schema.uint8_vector(payload)
        out.customOptionsFormat = S.CustomOptionsFormat.FLEXBUFFERS
    else:
        options_type, options = schema.options_from_dict(op.kind, op.options, f"{where}op {op.index}: ")
        if options is not None:
            out.builtinOptionsType, out.builtinOptions = options_type, options
    return out


def write_graph(graph: Graph) -> bytes:
    """The .tflite bytes of `graph` (one subgraph named "main")."""
    where = f"{graph.source}: " if graph.source else ""
    buffers = [S.BufferT()]
    tensors = [_tensor(t, buffers, where) for t in graph.tensors]
    opcodes: dict[tuple[str, int], int] = {}
    operators = []
    for op in graph.ops:
        for ti in op.inputs + op.outputs:
            if ti >= len(graph.tensors):
                raise TFLiteError(f"{where}op {op.index} ({op.kind}) refers to tensor {ti}, "
                                  f"the graph has {len(graph.tensors)}")
        key = (op.kind, int(op.version))
        opcodes.setdefault(key, len(opcodes))
        operators.append(_operator(op, opcodes[key], where))
    sg = S.SubGraphT()
    sg.tensors = tensors
    sg.inputs = [int(i) for i in graph.inputs]
    sg.outputs = [int(i) for i in graph.outputs]
    sg.operators = operators
    sg.name = "main"
    model = S.ModelT()
    model.version = SCHEMA_VERSION
    model.description = graph.description or "edgereid"
    model.subgraphs = [sg]
    model.operatorCodes = [schema.operator_code(kind, version) for kind, version in opcodes]
    for name, payload in graph.metadata.items():
        buf = S.BufferT()
        buf.data = schema.uint8_vector(payload)
        buffers.append(buf)
        entry = S.MetadataT()
        entry.name = name
        entry.buffer = len(buffers) - 1
        model.metadata = (model.metadata or []) + [entry]
    model.buffers = buffers
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=schema.FILE_IDENTIFIER)
    return bytes(fb.Output())
