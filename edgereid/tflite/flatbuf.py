"""Lossless edits of a whole .tflite flatbuffer (every subgraph, signature and buffer kept):
int8 edges, the float-op audit, metadata.

The IR (edgereid.tflite.reader / writer) carries what the toolchain uses; a file made by
a converter is edited here instead, on the schema's object API, so nothing it holds is lost.
"""
from __future__ import annotations

import json
from pathlib import Path

import flatbuffers

from edgereid.errors import TFLiteError
from edgereid.tflite import schema as tfl
from edgereid.tflite.schema import S as schema

METADATA_NAME = "edgereid"
_FLOAT_TYPES = {tfl.DTYPE_CODES[name]: name for name in tfl.FLOAT_DTYPES}


def load(data: bytes) -> schema.ModelT:
    if len(data) < 8 or data[4:8] != tfl.FILE_IDENTIFIER:
        raise TFLiteError("not a TFLite flatbuffer (file identifier 'TFL3' missing at bytes 4..8)")
    try:
        return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise TFLiteError(f"damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None


def dump(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=tfl.FILE_IDENTIFIER)
    return bytes(builder.Output())


def op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    """The op's IR name (edgereid.tflite.ir): "CONV_2D" or "CUSTOM:<custom code>"."""
    return tfl.op_kind(model.operatorCodes[op.opcodeIndex])


def _tensor_name(t: schema.TensorT) -> str:
    name = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
    return name


def _has_data(model: schema.ModelT, t: schema.TensorT) -> bool:
    buf = model.buffers[t.buffer] if 0 <= t.buffer < len(model.buffers or []) else None
    return buf is not None and ((buf.data is not None and len(buf.data) > 0) or buf.size > 0)


def float_ops(model: schema.ModelT) -> list[str]:
    """One line per op that touches a floating-point tensor (input, weight or output)."""
    found = []
    for sg_index, sg in enumerate(model.subgraphs):
        for i, op in enumerate(sg.operators or []):
            for role, idxs in (("input", op.inputs), ("output", op.outputs)):
                hit = None
                for t_index in (idxs if idxs is not None else []):
                    if t_index < 0:
                        continue
                    t = sg.tensors[t_index]
                    if t.type in _FLOAT_TYPES:
                        hit = (t_index, t)
                        break
                if hit:
                    t_index, t = hit
                    where = f"subgraph {sg_index} " if sg_index else ""
                    kind = "constant" if _has_data(model, t) else role
                    found.append(f"{where}op {i} {op_name(model, op)} runs in {_FLOAT_TYPES[t.type]}: "
                                 f"{kind} tensor {t_index} '{_tensor_name(t)}' is {_FLOAT_TYPES[t.type]}")
                    break
    return found


def quantize_edges(model: schema.ModelT) -> None:
    """Make the graph's inputs and outputs the int8 tensors themselves.

    The converter leaves a float input feeding QUANTIZE and a DEQUANTIZE feeding a float
    output. Each such op is removed and the int8 tensor on its far side becomes the
    graph (and signature) input or output, so the caller hands over int8 data, as a
    microcontroller does.
    """
    for sg_index, sg in enumerate(model.subgraphs):
        remap: dict[int, int] = {}
        drop: set[int] = set()
        for pos, t_in in enumerate(sg.inputs):
            users = [(i, op) for i, op in enumerate(sg.operators) if t_in in list(op.inputs)]
            if len(users) == 1 and op_name(model, users[0][1]) == "QUANTIZE":
                i, op = users[0]
                remap[t_in] = op.outputs[0]
                drop.add(i)
        for pos, t_out in enumerate(sg.outputs):
            producers = [(i, op) for i, op in enumerate(sg.operators) if t_out in list(op.outputs)]
            if len(producers) == 1 and op_name(model, producers[0][1]) == "DEQUANTIZE":
                i, op = producers[0]
                src = op.inputs[0]
                # Only if nothing else reads the float output (it would lose its producer).
                if not any(t_out in list(o.inputs) for o in sg.operators):
                    remap[t_out] = src
                    drop.add(i)
        sg.inputs = [remap.get(t, t) for t in sg.inputs]
        sg.outputs = [remap.get(t, t) for t in sg.outputs]
        sg.operators = [op for i, op in enumerate(sg.operators) if i not in drop]
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == sg_index:
                for tm in list(sig.inputs or []) + list(sig.outputs or []):
                    tm.tensorIndex = remap.get(tm.tensorIndex, tm.tensorIndex)


def io_details(model: schema.ModelT) -> dict:
    """Shape, dtype and quantization (scale, zero point) of subgraph 0's inputs and outputs."""
    sg = model.subgraphs[0]

    def describe(t_index):
        t = sg.tensors[t_index]
        q = t.quantization
        scale = [float(s) for s in q.scale] if q is not None and q.scale is not None else []
        zp = [int(z) for z in q.zeroPoint] if q is not None and q.zeroPoint is not None else []
        return {"name": _tensor_name(t), "shape": [int(d) for d in t.shape],
                "dtype": tfl.DTYPE_NAMES.get(t.type, str(t.type)),
                "scale": scale[0] if len(scale) == 1 else scale,
                "zero_point": zp[0] if len(zp) == 1 else zp}

    return {"inputs": [describe(t) for t in sg.inputs], "outputs": [describe(t) for t in sg.outputs]}


def set_metadata(model: schema.ModelT, name: str, payload: bytes) -> None:
    """Add (or replace) a Model.metadata entry pointing to a buffer with `payload`."""
    buf = schema.BufferT()
    buf.data = tfl.uint8_vector(payload)
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    metas = [m for m in (model.metadata or []) if _decode(m.name) != name]
    model.metadata = metas + [entry]


def get_metadata(model: schema.ModelT, name: str) -> bytes | None:
    for m in model.metadata or []:
        if _decode(m.name) == name:
            data = model.buffers[m.buffer].data
            return bytes(data) if data is not None else b""
    return None


def _decode(s) -> str:
    return s.decode() if isinstance(s, bytes) else (s or "")


def read_metadata_json(data: bytes, name: str = METADATA_NAME) -> dict | None:
    """The JSON in Model.metadata entry `name` of the flatbuffer `data`, or None if it has none."""
    raw = get_metadata(load(data), name)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise TFLiteError(f"metadata entry {name!r} is not JSON ({exc})") from None


def read_metadata(path, name: str = METADATA_NAME) -> dict:
    """The JSON metadata entry `name` (default "edgereid", written by edgereid.export) of .tflite `path`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TFLiteError(f"cannot read {path}: {exc.strerror}") from None
    try:
        meta = read_metadata_json(data, name)
    except TFLiteError as exc:
        raise TFLiteError(f"{path}: {exc}") from None
    if meta is None:
        raise TFLiteError(f"{path} has no {name!r} metadata entry (not exported by edgereid?)")
    return meta


def check_no_float_ops(path) -> None:
    """Raise TFLiteError naming every op of .tflite `path` that still runs in floating point."""
    path = Path(path)
    try:
        model = load(path.read_bytes())
    except OSError as exc:
        raise TFLiteError(f"cannot read {path}: {exc.strerror}") from None
    except TFLiteError as exc:
        raise TFLiteError(f"{path}: {exc}") from None
    floats = float_ops(model)
    if floats:
        raise TFLiteError(f"{path}: {len(floats)} float op(s): " + "; ".join(floats))
