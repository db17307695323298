"""Read a .tflite file into the IR (edgereid.tflite.ir): any op, any tensor type, metadata.

Every reason to refuse a file is a TFLiteError naming the file and, where it is about
one op, the op's index and name. What a stage can run is that stage's check.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.errors import TFLiteError
from edgereid.tflite import schema
from edgereid.tflite.ir import CUSTOM_PREFIX, Graph, Op, Tensor, storage_bytes
from edgereid.tflite.schema import S


def _decode(text) -> str:
    return text.decode() if isinstance(text, bytes) else (text or "")


def _parse_model(raw: bytes, where: str):
    if len(raw) < 8 or raw[4:8] != schema.FILE_IDENTIFIER:
        found = raw[4:8] if len(raw) >= 8 else b""
        raise TFLiteError(
            f"{where}: not a TFLite model (file identifier {found!r}, expected {schema.FILE_IDENTIFIER!r})"
        )
    try:
        model = S.ModelT.InitFromObj(S.Model.GetRootAs(raw, 0))
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise TFLiteError(f"{where}: damaged or truncated TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    if not model.subgraphs:
        raise TFLiteError(f"{where}: model has no subgraph")
    if len(model.subgraphs) != 1:
        raise TFLiteError(f"{where}: model has {len(model.subgraphs)} subgraphs; only 1 is supported")
    return model


def _buffer_bytes(model, raw: bytes, buffer_index: int, where: str) -> bytes | None:
    if not model.buffers or buffer_index <= 0 or buffer_index >= len(model.buffers):
        return None
    buf = model.buffers[buffer_index]
    if buf.data is not None and len(buf.data):
        return bytes(buf.data)
    if buf.offset > 1:  # large models keep payloads after the flatbuffer
        end = buf.offset + buf.size
        if end > len(raw):
            raise TFLiteError(f"{where}: buffer {buffer_index} ends at byte {end} but the file has {len(raw)} "
                              "(truncated)")
        return raw[buf.offset:end]
    return None


def _read_tensors(model, subgraph, raw: bytes, where: str) -> list[Tensor]:
    tensors = []
    for index, t in enumerate(subgraph.tensors or []):
        dtype = schema.DTYPE_NAMES.get(t.type, f"type{t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        q = t.quantization
        scales = tuple(float(v) for v in q.scale) if q is not None and q.scale is not None else ()
        zps = tuple(int(v) for v in q.zeroPoint) if q is not None and q.zeroPoint is not None else ()
        qdim = int(q.quantizedDimension) if q is not None else 0
        data = _buffer_bytes(model, raw, int(t.buffer), where)
        name = _decode(t.name) or f"t{index}"
        tensor = Tensor(index=index, name=name, shape=shape, dtype=dtype, scales=scales, zero_points=zps,
                        quantized_dimension=qdim, data=data, is_const=data is not None)
        if data is not None and dtype != "string":
            try:
                expected = storage_bytes(dtype, tensor.num_elements)
            except ValueError:
                expected = None   # a type without a fixed element size: nothing to check
            if expected is not None and len(data) != expected:
                raise TFLiteError(
                    f"{where}: tensor {index} ({name}) holds {len(data)} bytes, shape {list(shape)} {dtype} needs "
                    f"{expected} (truncated or damaged file)"
                )
        tensors.append(tensor)
    return tensors


def _read_op(model, index: int, o, where: str) -> Op:
    codes = model.operatorCodes or []
    if o.opcodeIndex >= len(codes):
        raise TFLiteError(f"{where}: op {index} uses opcode {o.opcodeIndex}, the model defines {len(codes)}")
    code = codes[o.opcodeIndex]
    kind = schema.op_kind(code)
    if kind.startswith(CUSTOM_PREFIX):
        if o.customOptionsFormat != S.CustomOptionsFormat.FLEXBUFFERS:
            raise TFLiteError(f"{where}: op {index} ({kind}) has custom options in format "
                              f"{o.customOptionsFormat}, expected FLEXBUFFERS (0)")
        try:
            options = schema.flexbuffer_decode(bytes(o.customOptions) if o.customOptions is not None else b"")
        except Exception as exc:  # the FlexBuffer decoder raises many types on damaged bytes
            raise TFLiteError(f"{where}: op {index} ({kind}) has unreadable custom options "
                              f"({type(exc).__name__}: {exc})") from None
    else:
        options = schema.options_to_dict(o.builtinOptions)
    return Op(index=index, kind=kind,
              inputs=tuple(int(i) for i in (o.inputs if o.inputs is not None else ())),
              outputs=tuple(int(i) for i in (o.outputs if o.outputs is not None else ())),
              options=options, version=int(code.version))


def _read_metadata(model, where: str) -> dict[str, bytes]:
    entries = {}
    for m in model.metadata or []:
        if not 0 <= m.buffer < len(model.buffers or []):
            raise TFLiteError(f"{where}: metadata {_decode(m.name)!r} points to buffer {m.buffer}, "
                              f"the model has {len(model.buffers or [])}")
        data = model.buffers[m.buffer].data
        entries[_decode(m.name)] = bytes(data) if data is not None else b""
    return entries


def custom_codes(raw: bytes, source: str = "<bytes>") -> set[str]:
    """The custom codes among the model's operator codes, read without unpacking the model."""
    if len(raw) < 8 or raw[4:8] != schema.FILE_IDENTIFIER:
        raise TFLiteError(f"{source}: not a TFLite model (file identifier 'TFL3' missing at bytes 4..8)")
    try:
        model = S.Model.GetRootAs(raw, 0)
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        return {_decode(c.CustomCode()) for c in codes
                if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == S.BuiltinOperator.CUSTOM}
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise TFLiteError(f"{source}: damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def parse_graph(raw: bytes, source: str = "<bytes>") -> Graph:
    """The IR of the .tflite flatbuffer `raw` (one subgraph); `source` names it in errors."""
    model = _parse_model(raw, source)
    subgraph = model.subgraphs[0]
    try:
        tensors = _read_tensors(model, subgraph, raw, source)
        ops = [_read_op(model, index, o, source) for index, o in enumerate(subgraph.operators or [])]
        metadata = _read_metadata(model, source)
    except TFLiteError:
        raise
    except Exception as exc:
        raise TFLiteError(f"{source}: damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    graph = Graph(tensors=tensors, ops=ops,
                  inputs=tuple(int(i) for i in (subgraph.inputs if subgraph.inputs is not None else ())),
                  outputs=tuple(int(i) for i in (subgraph.outputs if subgraph.outputs is not None else ())),
                  source=source, description=_decode(model.description), metadata=metadata)
    for op in ops:
        for ti in op.inputs + op.outputs:
            if ti >= len(tensors):
                raise TFLiteError(f"{source}: op {op.index} ({op.kind}) refers to tensor {ti}, "
                                  f"the model has {len(tensors)}")
    for ti in graph.inputs + graph.outputs:
        if not 0 <= ti < len(tensors):
            raise TFLiteError(f"{source}: graph input/output tensor {ti} does not exist "
                              f"(the model has {len(tensors)})")
    return graph


def read_graph(path) -> Graph:
    """Parse the file `path` into the IR; a missing or damaged file is a TFLiteError."""
    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"{path}: no such file (expected a .tflite model)")
    return parse_graph(path.read_bytes(), str(path))
