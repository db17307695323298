"""Read an int8 .tflite file into the compiler's Graph (edgereid.tflite.ir).

Every reason to refuse a file is a TFLiteError naming the file and, where it is about
one op, the op's index and name.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgereid.errors import TFLiteError
from edgereid.tflite.ir import DTYPE_BYTES, Graph, Op, Tensor

_FILE_IDENTIFIER = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)  # dilationHFactor -> dilationH_Factor
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _options_dict(options_obj, s) -> dict:
    """A builtin-options object as a plain dict: snake_case keys, enums as names."""
    if options_obj is None:
        return {}
    activation = _enum_names(s.ActivationFunctionType)
    padding = _enum_names(s.Padding)
    out = {}
    for key, value in sorted(vars(options_obj).items()):
        key = _snake(key)
        if key == "fused_activation_function":
            value = activation.get(value, str(value))
        elif key == "padding":
            value = padding.get(value, str(value))
        elif hasattr(value, "tolist"):
            value = tuple(int(v) for v in value.tolist())
        elif isinstance(value, (list, tuple)):
            value = tuple(value)
        out[key] = value
    return out


def _op_kind(opcode, builtin_names: dict[int, str]) -> str:
    code = max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))
    name = builtin_names.get(code, f"BUILTIN_{code}")
    if name == "CUSTOM":
        custom = opcode.customCode.decode() if isinstance(opcode.customCode, bytes) else opcode.customCode
        return f"CUSTOM:{custom}"
    return name


def _parse_model(raw: bytes, path: Path):
    if len(raw) < 8 or raw[4:8] != _FILE_IDENTIFIER:
        found = raw[4:8] if len(raw) >= 8 else b""
        raise TFLiteError(
            f"{path}: not a TFLite model (file identifier {found!r}, expected {_FILE_IDENTIFIER!r})"
        )
    s = _schema()
    try:
        model = s.ModelT.InitFromObj(s.Model.GetRootAs(raw, 0))
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise TFLiteError(f"{path}: damaged or truncated TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    if not model.subgraphs:
        raise TFLiteError(f"{path}: model has no subgraph")
    if len(model.subgraphs) != 1:
        raise TFLiteError(f"{path}: model has {len(model.subgraphs)} subgraphs; only 1 is supported")
    return model


def _buffer_bytes(model, raw: bytes, buffer_index: int, path: Path) -> bytes | None:
    if not model.buffers or buffer_index <= 0 or buffer_index >= len(model.buffers):
        return None
    buf = model.buffers[buffer_index]
    if buf.data is not None and len(buf.data):
        return bytes(buf.data)
    if buf.offset > 1:  # large models keep payloads after the flatbuffer
        end = buf.offset + buf.size
        if end > len(raw):
            raise TFLiteError(f"{path}: buffer {buffer_index} ends at byte {end} but the file has {len(raw)} (truncated)")
        return raw[buf.offset:end]
    return None


def _read_tensors(model, subgraph, raw: bytes, path: Path) -> list[Tensor]:
    s = _schema()
    type_names = {k: v.lower() for k, v in _enum_names(s.TensorType).items()}
    tensors = []
    for index, t in enumerate(subgraph.tensors or []):
        dtype = type_names.get(t.type, f"type{t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        q = t.quantization
        scales = tuple(float(v) for v in q.scale) if q is not None and q.scale is not None else ()
        zps = tuple(int(v) for v in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
        qdim = int(q.quantizedDimension) if q is not None else 0
        data = _buffer_bytes(model, raw, int(t.buffer), path)
        name = t.name.decode() if isinstance(t.name, bytes) else (t.name or f"t{index}")
        tensor = Tensor(index=index, name=name, shape=shape, dtype=dtype, scales=scales, zero_points=zps,
                        quantized_dimension=qdim, data=data, is_const=data is not None)
        if data is not None and dtype in DTYPE_BYTES and len(data) != tensor.nbytes:
            raise TFLiteError(
                f"{path}: tensor {index} ({name}) holds {len(data)} bytes, shape {list(shape)} {dtype} needs "
                f"{tensor.nbytes} (truncated or damaged file)"
            )
        tensors.append(tensor)
    return tensors


def read_graph(path) -> Graph:
    """Parse `path` into a Graph (one subgraph); a damaged file is a TFLiteError."""

    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"{path}: no such file (expected a .tflite model)")
    raw = path.read_bytes()
    model = _parse_model(raw, path)
    s = _schema()
    subgraph = model.subgraphs[0]
    builtin_names = _enum_names(s.BuiltinOperator)
    try:
        tensors = _read_tensors(model, subgraph, raw, path)
        ops = []
        for index, o in enumerate(subgraph.operators or []):
            if o.opcodeIndex >= len(model.operatorCodes or []):
                raise TFLiteError(f"{path}: op {index} uses opcode {o.opcodeIndex}, the model defines "
                                    f"{len(model.operatorCodes or [])}")
            kind = _op_kind(model.operatorCodes[o.opcodeIndex], builtin_names)
            ops.append(Op(index=index, kind=kind,
                          inputs=tuple(int(i) for i in (o.inputs if o.inputs is not None else ())),
                          outputs=tuple(int(i) for i in (o.outputs if o.outputs is not None else ())),
                          options=_options_dict(o.builtinOptions, s)))
    except TFLiteError:
        raise
    except Exception as exc:
        raise TFLiteError(f"{path}: damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    graph = Graph(tensors=tensors, ops=ops,
                  inputs=tuple(int(i) for i in (subgraph.inputs if subgraph.inputs is not None else ())),
                  outputs=tuple(int(i) for i in (subgraph.outputs if subgraph.outputs is not None else ())),
                  source=str(path))
    for op in ops:
        for ti in op.inputs + op.outputs:
            if ti >= len(tensors):
                raise TFLiteError(f"{path}: op {op.index} ({op.kind}) refers to tensor {ti}, the model has {len(tensors)}")
    return graph
