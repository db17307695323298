"""Read a .tflite file into the IR (edgereid.tflite.ir): any op, any tensor type, metadata.

Every reason to refuse a file is a TFLiteError on one line naming the file and, where it
is about one op or tensor, the op's index and kind, the tensor's index and name, the field
and what was expected. The reader checks what every reader of the IR relies on (a
validated IR): tensor indices (negative or out of range; -1 only for an omitted optional
op input), known tensor types, shapes (sizes >= 0, byte size in Python ints at most
ir.MAX_TENSOR_BYTES), quantization (as many zero points as scales, finite positive scales,
zero points inside the type's range, per-channel lengths equal to the quantized
dimension), no op writing a constant, no constant graph input. What a stage can run
(ops, dtypes, shapes each op computes) is that stage's check (edgereid.firmware.frontend).
"""
from __future__ import annotations

import functools
import importlib.util
import math
import types
from pathlib import Path

import flatbuffers
import flatbuffers.compat
import flatbuffers.encode
import flatbuffers.number_types as _flatbuffers_nt
import flatbuffers.packer
import flatbuffers.table as _flatbuffers_table
import flatbuffers.util

from edgereid.errors import TFLiteError
from edgereid.tflite import schema
from edgereid.tflite.ir import (CUSTOM_PREFIX, MAX_TENSOR_BYTES, ZERO_POINT_RANGE, Graph, Op, Tensor,
                                storage_bytes)
from edgereid.tflite.schema import S

SCHEMA_VERSION = 3    # Model.version LiteRT accepts (TFLITE_SCHEMA_VERSION)


class _Invalid(Exception):
    """The flatbuffer breaks a rule flatbuffers' C++ Verifier (what LiteRT runs first) checks."""


def _need(buf, off: int, size: int, align: int, what: str) -> None:
    if off < 0 or off + size > len(buf):
        raise _Invalid(f"{what} at byte {off} ({size} bytes) lies outside the {len(buf)}-byte buffer")
    if off % align:
        raise _Invalid(f"{what} at byte {off} is not aligned to {align} bytes")


def _offset_target(buf, off: int, what: str) -> int:
    """Verifier::VerifyOffset: a uoffset at `off`, non-zero, < 2^31, pointing inside the buffer."""
    _need(buf, off, 4, 4, f"offset to {what}")
    o = int.from_bytes(buf[off:off + 4], "little")
    if o == 0 or o >= 1 << 31 or off + o >= len(buf):
        raise _Invalid(f"offset {o} to {what} at byte {off} points outside the {len(buf)}-byte buffer")
    return off + o


class _VerifiedTable(_flatbuffers_table.Table):
    """flatbuffers' Table with every read checked as flatbuffers::Verifier checks it:
    tables (vtable in bounds, aligned, even size), scalars (in bounds, aligned to their
    size), offsets (non-zero, < 2^31, inside the buffer), strings (in bounds, NUL
    terminated), vectors (length and elements in bounds)."""

    __slots__ = ()

    def __init__(self, buf, pos):
        super().__init__(buf, pos)
        _need(buf, pos, 4, 4, "table")
        vtable = pos - int.from_bytes(buf[pos:pos + 4], "little", signed=True)
        _need(buf, vtable, 2, 2, "vtable")
        size = int.from_bytes(buf[vtable:vtable + 2], "little")
        if size % 2:
            raise _Invalid(f"vtable at byte {vtable} has size {size}; expected an even size")
        _need(buf, vtable, size, 2, "vtable")

    def Get(self, flags, off):
        _need(self.Bytes, off, flags.bytewidth, flags.bytewidth, "scalar")
        return super().Get(flags, off)

    def Indirect(self, off):
        return _offset_target(self.Bytes, off, "a table")

    def String(self, off):
        start = _offset_target(self.Bytes, off, "a string")
        length = self.Get(_flatbuffers_nt.UOffsetTFlags, start)
        _need(self.Bytes, start + 4, length + 1, 1, "string")
        if self.Bytes[start + 4 + length] != 0:
            raise _Invalid(f"string at byte {start} is not NUL terminated")
        return bytes(self.Bytes[start + 4:start + 4 + length])

    def VectorLen(self, off):
        return self.Get(_flatbuffers_nt.UOffsetTFlags, _offset_target(self.Bytes, off + self.Pos, "a vector"))

    def Vector(self, off):
        start = _offset_target(self.Bytes, off + self.Pos, "a vector")
        _need(self.Bytes, start + 4, self.Get(_flatbuffers_nt.UOffsetTFlags, start), 1, "vector")
        return start + 4

    def GetVectorAsNumpy(self, flags, off):
        start = self.Vector(off)
        _need(self.Bytes, start, self.VectorLen(off) * flags.bytewidth, 1, "vector")
        return super().GetVectorAsNumpy(flags, off)

    def Union(self, t2, off):
        t2.Pos = _offset_target(self.Bytes, off + self.Pos, "a union table")
        t2.Bytes = self.Bytes


@functools.lru_cache(maxsize=1)
def _verifying_schema():
    """A private copy of the generated schema module whose tables are _VerifiedTable: reading
    a model through it verifies every byte the object API touches (= all of the model)."""
    spec = importlib.util.find_spec(S.__name__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.flatbuffers = types.SimpleNamespace(
        table=types.SimpleNamespace(Table=_VerifiedTable), number_types=_flatbuffers_nt,
        encode=flatbuffers.encode, packer=flatbuffers.packer, util=flatbuffers.util, compat=flatbuffers.compat,
        Builder=flatbuffers.Builder)
    return module


def _verified_model(raw: bytes):
    """The ModelT of `raw`, every table, scalar, offset, string and vector verified; _Invalid if not."""
    vs = _verifying_schema()
    if len(raw) >= 1 << 31:
        raise _Invalid(f"{len(raw)} bytes; a flatbuffer holds less than 2 GiB")
    root = _offset_target(raw, 0, "the root table")
    model = vs.Model()
    model.Init(raw, root)
    return vs.ModelT.InitFromObj(model)


def _decode(text) -> str:
    """A flatbuffer string; bytes that are not UTF-8 are kept as backslash escapes."""
    return text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else (text or "")


def _parse_model(raw: bytes, where: str):
    if len(raw) < 8 or raw[4:8] != schema.FILE_IDENTIFIER:
        found = raw[4:8] if len(raw) >= 8 else b""
        raise TFLiteError(
            f"{where}: not a TFLite model (file identifier {found!r}, expected {schema.FILE_IDENTIFIER!r})"
        )
    try:
        model = _verified_model(raw)
    except _Invalid as exc:
        raise TFLiteError(f"{where}: not a valid TFLite flatbuffer ({exc})") from None
    except Exception as exc:  # flatbuffers raises struct/index errors on damaged input
        raise TFLiteError(f"{where}: damaged or truncated TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    if model.version != SCHEMA_VERSION:
        raise TFLiteError(f"{where}: schema version {model.version}; expected {SCHEMA_VERSION} (the TFLite schema "
                          "LiteRT reads)")
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
        _check_tensor(tensor, where)
        if data is not None and dtype != "string":
            try:
                expected = storage_bytes(dtype, tensor.num_elements)
            except ValueError:
                expected = None   # a type without a fixed element size: nothing to check
            if expected is not None and len(data) != expected:
                raise TFLiteError(
                    f"{where}: {tensor_label(tensor)} holds {len(data)} bytes, shape {list(shape)} {dtype} needs "
                    f"{expected} (truncated or damaged file)"
                )
        tensors.append(tensor)
    return tensors


def tensor_label(t: Tensor) -> str:
    """`tensor 3 'conv/out'` with the name escaped, so that an error stays on one line."""
    return f"tensor {t.index} {t.name!r}"


def _check_tensor(t: Tensor, where: str) -> None:
    """Type, shape (checked size), quantization: what any reader of the IR may rely on."""
    label = f"{where}: {tensor_label(t)}"
    if t.dtype.startswith("type"):
        raise TFLiteError(f"{label}: type code {t.dtype[4:]} is not a TFLite tensor type")
    for axis, d in enumerate(t.shape):
        if d < 0:
            raise TFLiteError(f"{label}: shape {list(t.shape)} dimension {axis} is {d}; expected a size >= 0")
    try:
        nbytes = storage_bytes(t.dtype, t.num_elements)
    except ValueError:
        nbytes = None     # a type without a fixed element size (string, resource, variant)
    if nbytes is not None and nbytes > MAX_TENSOR_BYTES:
        raise TFLiteError(f"{label}: shape {list(t.shape)} {t.dtype} needs {nbytes} bytes; expected at most "
                          f"{MAX_TENSOR_BYTES} bytes per tensor")
    if not t.scales and not t.zero_points:
        return
    if len(t.scales) != len(t.zero_points):
        raise TFLiteError(f"{label}: quantization has {len(t.scales)} scales and {len(t.zero_points)} zero points; "
                          "expected as many of each")
    for k, scale in enumerate(t.scales):
        if not (math.isfinite(scale) and scale > 0.0):
            raise TFLiteError(f"{label}: quantization scale[{k}] is {scale!r}; expected a finite value > 0")
    lo, hi = ZERO_POINT_RANGE.get(t.dtype, (None, None))
    for k, zp in enumerate(t.zero_points):
        if lo is not None and not lo <= zp <= hi:
            raise TFLiteError(f"{label}: quantization zero_point[{k}] is {zp}; expected a value in "
                              f"[{lo}, {hi}] ({t.dtype})")
    qdim = t.quantized_dimension
    if qdim < 0 or (t.shape and qdim >= len(t.shape)):
        raise TFLiteError(f"{label}: quantized_dimension is {qdim}; expected an axis of shape {list(t.shape)}")
    if len(t.scales) > 1:
        if not t.shape or t.shape[qdim] != len(t.scales):
            raise TFLiteError(f"{label}: {len(t.scales)} per-channel scales along quantized_dimension {qdim} of "
                              f"shape {list(t.shape)}; expected {t.shape[qdim] if t.shape else 1}")


def _check_indices(graph: Graph, where: str) -> None:
    """Every tensor index an op or the graph names exists; -1 only for an omitted optional op input;
    no op writes a constant; no graph input is a constant."""
    n = len(graph.tensors)
    for op in graph.ops:
        for role, indices in (("input", op.inputs), ("output", op.outputs)):
            for slot, ti in enumerate(indices):
                if role == "input" and ti == -1:
                    continue
                if not 0 <= ti < n:
                    allowed = "-1 (omitted) or " if role == "input" else ""
                    raise TFLiteError(f"{where}: op {op.index} ({op.kind}) {role} {slot} is tensor index {ti}; "
                                      f"expected {allowed}an index in [0, {n - 1}] (the model has {n} tensors)")
                if role == "output" and graph.tensors[ti].is_const:
                    raise TFLiteError(f"{where}: op {op.index} ({op.kind}) output {slot} is "
                                      f"{tensor_label(graph.tensors[ti])}, a constant; expected an activation")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for slot, ti in enumerate(indices):
            if not 0 <= ti < n:
                raise TFLiteError(f"{where}: graph {role} {slot} is tensor index {ti}; expected an index in "
                                  f"[0, {n - 1}] (the model has {n} tensors)")
        if len(set(indices)) != len(indices):
            raise TFLiteError(f"{where}: graph {role}s {list(indices)} name a tensor twice; expected distinct "
                              "tensors")
    for slot, ti in enumerate(graph.inputs):
        if graph.tensors[ti].is_const:
            raise TFLiteError(f"{where}: graph input {slot} is {tensor_label(graph.tensors[ti])}, a constant "
                              "(it has a data buffer); expected a tensor the caller fills")


def _read_op(model, index: int, o, where: str) -> Op:
    codes = model.operatorCodes or []
    if o.opcodeIndex >= len(codes):
        raise TFLiteError(f"{where}: op {index} uses opcode {o.opcodeIndex}, the model defines {len(codes)}")
    code = codes[o.opcodeIndex]
    kind = schema.op_kind(code)
    if not kind.isprintable():   # a custom code with control characters: escaped, so errors stay one line
        kind = kind.encode("unicode_escape").decode("ascii")
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
    _check_indices(graph, source)
    return graph


def read_graph(path) -> Graph:
    """Parse the file `path` into the IR; a missing or damaged file is a TFLiteError."""
    path = Path(path)
    if not path.is_file():
        raise TFLiteError(f"{path}: no such file (expected a .tflite model)")
    return parse_graph(path.read_bytes(), str(path))
