"""The TFLite schema in one place: enum names, op naming, options <-> dict, FlexBuffers.

Uses `ai_edge_litert.schema_py_generated` (the schema's generated object API), so no
TensorFlow is needed. Everything else in edgereid goes through the IR
(`edgereid.tflite.ir`) or `edgereid.tflite.flatbuf`, never through this module's
generated classes directly.
"""
from __future__ import annotations

import re

import numpy as np
from ai_edge_litert import schema_py_generated as S
from flatbuffers import flexbuffers

from edgereid.errors import TFLiteError
from edgereid.tflite.ir import CUSTOM_PREFIX, custom_kind

FILE_IDENTIFIER = b"TFL3"


def _enum_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


BUILTIN_NAMES = _enum_names(S.BuiltinOperator)                     # code -> "CONV_2D"
BUILTIN_CODES = {name: code for code, name in BUILTIN_NAMES.items()}
DTYPE_NAMES = {code: name.lower() for code, name in _enum_names(S.TensorType).items()}  # 9 -> "int8"
DTYPE_CODES = {name: code for code, name in DTYPE_NAMES.items()}
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_ACTIVATIONS = _enum_names(S.ActivationFunctionType)
_PADDINGS = _enum_names(S.Padding)
# Option fields stored as enums: named in the IR, numbers in the file.
_NAMED_ENUMS = {"fused_activation_function": _ACTIVATIONS, "padding": _PADDINGS}

# Builtin ops whose options table is not "<OpName>Options" (the schema's own pairing).
_OPTIONS_EXCEPTIONS = {
    "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions", "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
    "REDUCE_ALL": "ReducerOptions", "L2_NORMALIZATION": "L2NormOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
    "CONV_3D_TRANSPOSE": "Conv3DOptions", "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions",
}
_OPTIONS_BY_NORMALISED = {name.lower(): name for name in vars(S.BuiltinOptions) if not name.startswith("_")}


def snake(name: str) -> str:
    """Schema field name in snake_case: dilationHFactor -> dilation_h_factor."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def options_type(kind: str) -> str | None:
    """The BuiltinOptions table name of builtin op `kind`, or None if it has none."""
    name = _OPTIONS_EXCEPTIONS.get(kind) or _OPTIONS_BY_NORMALISED.get(kind.replace("_", "").lower() + "options")
    return name if name and name != "NONE" else None


def op_kind(opcode) -> str:
    """The IR name of an OperatorCode(T): "CONV_2D" or "CUSTOM:<custom code>"."""
    code = max(int(opcode.builtinCode), int(opcode.deprecatedBuiltinCode))
    if code == S.BuiltinOperator.CUSTOM:
        custom = opcode.customCode
        return custom_kind(custom.decode() if isinstance(custom, bytes) else (custom or ""))
    return BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


def operator_code(kind: str, version: int):
    """An OperatorCodeT for IR op `kind` at `version`."""
    oc = S.OperatorCodeT()
    oc.version = int(version)
    if kind.startswith(CUSTOM_PREFIX):
        oc.builtinCode = oc.deprecatedBuiltinCode = S.BuiltinOperator.CUSTOM
        oc.customCode = kind[len(CUSTOM_PREFIX):]
        return oc
    if kind not in BUILTIN_CODES:
        raise TFLiteError(f"unknown builtin op {kind!r} (custom ops are spelled '{CUSTOM_PREFIX}<code>')")
    code = BUILTIN_CODES[kind]
    oc.builtinCode = code
    # Codes above 127 live only in builtinCode; the old int8 field holds the placeholder.
    oc.deprecatedBuiltinCode = min(code, S.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    return oc


def options_to_dict(options_obj) -> dict:
    """A builtin-options object as a plain dict: snake_case keys, enums as names."""
    if options_obj is None:
        return {}
    out = {}
    for key, value in sorted(vars(options_obj).items()):
        key = snake(key)
        if key in _NAMED_ENUMS:
            value = _NAMED_ENUMS[key].get(value, str(value))
        elif hasattr(value, "tolist"):
            value = tuple(value.tolist())
        elif isinstance(value, (list, tuple)):
            value = tuple(value)
        out[key] = value
    return out


def options_from_dict(kind: str, options: dict, where: str = ""):
    """(BuiltinOptions type code, options object) for builtin op `kind`; (0, None) if it has none."""
    table = options_type(kind)
    if table is None:
        if options:
            raise TFLiteError(f"{where}{kind} has no builtin options, got {sorted(options)}")
        return S.BuiltinOptions.NONE, None
    obj = getattr(S, table + "T")()
    fields = {snake(name): name for name in vars(obj)}
    for key, value in options.items():
        if key not in fields:
            raise TFLiteError(f"{where}{kind} option {key!r} is not a field of {table}; "
                              f"expected one of {sorted(fields)}")
        if key in _NAMED_ENUMS and isinstance(value, str):
            codes = {name: code for code, name in _NAMED_ENUMS[key].items()}
            if value not in codes:
                raise TFLiteError(f"{where}{kind} option {key}={value!r}: expected one of {sorted(codes)}")
            value = codes[value]
        elif isinstance(value, tuple):
            value = list(value)
        setattr(obj, fields[key], value)
    return getattr(S.BuiltinOptions, table), obj


def flexbuffer_encode(options: dict) -> bytes:
    """A custom op's options as a FlexBuffer map (the format Larq Compute Engine reads)."""
    return bytes(flexbuffers.Dumps(dict(options)))


def flexbuffer_decode(data: bytes) -> dict:
    """A custom op's FlexBuffer options; an empty buffer is an empty map."""
    if not data:
        return {}
    value = flexbuffers.Loads(bytes(data))
    if not isinstance(value, dict):
        raise ValueError(f"custom options hold a FlexBuffer {type(value).__name__}, expected a map")
    return value


def uint8_vector(data: bytes) -> np.ndarray:
    """A byte payload as the generated object API expects a [ubyte] vector."""
    return np.frombuffer(bytes(data), dtype=np.uint8).copy()
