"""Reading and rewriting .tflite flatbuffers: int8 edges, float-op audit, metadata.

Uses the object API of `ai_edge_litert.schema_py_generated` (the TFLite schema), so no
TensorFlow is needed.
"""
from __future__ import annotations

import json

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from edgereid.errors import ExportError

METADATA_NAME = "edgereid"
_FLOAT_TYPES = {schema.TensorType.FLOAT32: "float32", schema.TensorType.FLOAT16: "float16",
                schema.TensorType.FLOAT64: "float64", schema.TensorType.BFLOAT16: "bfloat16"}
_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def load(data: bytes) -> schema.ModelT:
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ExportError("not a TFLite flatbuffer (file identifier 'TFL3' missing at bytes 4..8)")
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))


def dump(model: schema.ModelT) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return f"CUSTOM({code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode})"
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


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
                "dtype": _TYPE_NAMES.get(t.type, str(t.type)).lower(),
                "scale": scale[0] if len(scale) == 1 else scale,
                "zero_point": zp[0] if len(zp) == 1 else zp}

    return {"inputs": [describe(t) for t in sg.inputs], "outputs": [describe(t) for t in sg.outputs]}


def set_metadata(model: schema.ModelT, name: str, payload: bytes) -> None:
    """Add (or replace) a Model.metadata entry pointing to a buffer with `payload`."""
    buf = schema.BufferT()
    buf.data = np.frombuffer(payload, dtype=np.uint8).copy()
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
            return bytes(np.asarray(data, dtype=np.uint8)) if data is not None else b""
    return None


def _decode(s) -> str:
    return s.decode() if isinstance(s, bytes) else (s or "")


def read_metadata_json(data: bytes) -> dict | None:
    raw = get_metadata(load(data), METADATA_NAME)
    return None if raw is None else json.loads(raw.decode())
