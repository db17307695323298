"""The model as every stage sees it: tensors, ops in schedule order, graph I/O, metadata.

Plain data read from (or written to) a .tflite file; nothing here knows about
flatbuffers or C.

Op naming, the one spelling used everywhere: a builtin op is its schema name
("CONV_2D"), a custom op is "CUSTOM:" + its custom code ("CUSTOM:LceBconv2d").
Builtin options are a dict with snake_case keys and the activation / padding enums as
names ("RELU", "SAME"); custom options are the op's FlexBuffer map, as stored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CUSTOM_PREFIX = "CUSTOM:"

# The largest tensor any reader of the IR accepts: sizes are Python ints (checked
# arithmetic), and every byte offset of a tensor must fit a C int32 index.
MAX_TENSOR_BYTES = 2**31 - 1
# Zero points a quantized type can hold (the quantized value range of the type).
ZERO_POINT_RANGE = {"int4": (-8, 7), "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
                    "uint16": (0, 65535), "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
                    "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}

# Bytes per element of the whole-byte types; int4 packs two elements per byte.
DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8,
               "uint64": 8, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex64": 8,
               "complex128": 16, "bool": 1}
_NUMPY = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32,
          "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64, "float16": np.float16,
          "float32": np.float32, "float64": np.float64, "complex64": np.complex64,
          "complex128": np.complex128, "bool": np.bool_}


def custom_kind(custom_code: str) -> str:
    """The op kind of a custom op: "CUSTOM:" + its custom code."""
    return CUSTOM_PREFIX + custom_code


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype holding one element of `dtype` (int4 elements unpack to int8)."""
    if dtype == "int4":
        return np.dtype(np.int8)
    if dtype not in _NUMPY:
        raise ValueError(f"tensor dtype {dtype!r} has no numpy equivalent")
    return np.dtype(_NUMPY[dtype])


def storage_bytes(dtype: str, num_elements: int) -> int:
    """Bytes `num_elements` of `dtype` take in a buffer (int4: two per byte, rounded up)."""
    if dtype == "int4":
        return (num_elements + 1) // 2
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"tensor dtype {dtype!r} has no fixed element size")
    return num_elements * DTYPE_BYTES[dtype]


def pack_int4(values) -> bytes:
    """int4 values in [-8, 7], two per byte: element 2i in the low nibble of byte i."""
    flat = np.asarray(values, dtype=np.int64).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError(f"int4 values must lie in [-8, 7], got [{flat.min()}, {flat.max()}]")
    nibbles = (flat & 0xF).astype(np.uint8)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(data: bytes, num_elements: int) -> np.ndarray:
    """The first `num_elements` int4 values of `data` (see pack_int4), as int8."""
    raw = np.frombuffer(data, dtype=np.uint8)
    nibbles = np.empty(raw.size * 2, dtype=np.uint8)
    nibbles[0::2], nibbles[1::2] = raw & 0xF, raw >> 4
    values = nibbles[:num_elements].astype(np.int8)
    return np.where(values > 7, values - 16, values).astype(np.int8)


def pack_bits(values, axis: int = -1) -> np.ndarray:
    """Larq Compute Engine's bitpacked int32 along the last axis (DESIGN.md): channel c goes
    to word c // 32, bit c % 32 (LSB first); bit 1 = -1 (value < 0, so +0, -0 and NaN give +1),
    bit 0 = +1; each pixel starts a new word and the unused bits of its last word stay 0."""
    x = np.moveaxis(np.asarray(values), axis, -1)
    channels = x.shape[-1]
    words = (channels + 31) // 32
    bits = np.zeros(x.shape[:-1] + (words * 32,), dtype=np.uint64)
    bits[..., :channels] = x < 0
    weights = np.left_shift(np.uint64(1), np.arange(32, dtype=np.uint64))
    packed = (bits.reshape(x.shape[:-1] + (words, 32)) * weights).sum(axis=-1, dtype=np.uint64)
    return np.moveaxis(packed.astype(np.uint32).view(np.int32), -1, axis)


def unpack_bits(packed, channels: int, axis: int = -1) -> np.ndarray:
    """+1.0 / -1.0 float32 values of the first `channels` channels of bitpacked int32 words."""
    words = np.moveaxis(np.asarray(packed, dtype=np.int32), axis, -1).view(np.uint32).astype(np.uint64)
    bits = (words[..., :, None] >> np.arange(32, dtype=np.uint64)) & np.uint64(1)
    bits = bits.reshape(words.shape[:-1] + (words.shape[-1] * 32,))[..., :channels]
    return np.moveaxis(np.where(bits == 1, -1.0, 1.0).astype(np.float32), -1, axis)


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                                  # schema type in lower case: "int8", "int4", "float32", ...
    scales: tuple[float, ...] = ()              # float32 values as stored in the file
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    data: bytes | None = None                   # constant payload as stored (little-endian; int4 packed)
    is_const: bool = False

    @property
    def num_elements(self) -> int:
        """Product of the dims in Python ints (never wraps: [65536] * 4 is 2**64, not 0)."""
        return math.prod(int(d) for d in self.shape)

    @property
    def nbytes(self) -> int:
        return storage_bytes(self.dtype, self.num_elements)

    @property
    def scale(self) -> float:
        return self.scales[0] if self.scales else 0.0

    @property
    def zero_point(self) -> int:
        return self.zero_points[0] if self.zero_points else 0

    @property
    def is_per_channel(self) -> bool:
        return len(self.scales) > 1

    def array(self) -> np.ndarray:
        """The constant payload as an array of `shape` (int4 unpacked to int8; raises if not constant)."""
        if self.data is None:
            raise ValueError(f"tensor {self.index} ({self.name}) has no constant data")
        if self.dtype == "int4":
            return unpack_int4(self.data, self.num_elements).reshape(self.shape)
        return np.frombuffer(self.data, dtype=numpy_dtype(self.dtype)).reshape(self.shape)


@dataclass(frozen=True)
class Op:
    index: int
    kind: str                                   # "CONV_2D", or "CUSTOM:<custom code>" (module doc)
    inputs: tuple[int, ...]                     # tensor indices; -1 = optional input omitted
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)  # builtin: snake_case keys, enums as names; custom: FlexBuffer map
    version: int = 1                            # the operator code's version

    @property
    def is_custom(self) -> bool:
        return self.kind.startswith(CUSTOM_PREFIX)

    @property
    def custom_code(self) -> str | None:
        return self.kind[len(CUSTOM_PREFIX):] if self.is_custom else None


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]                               # in the file's (= execution) order
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source: str = ""
    description: str = ""
    metadata: dict[str, bytes] = field(default_factory=dict)   # Model.metadata entries by name

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def consumers(self, tensor_index: int) -> list[Op]:
        return [op for op in self.ops if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> Op | None:
        for op in self.ops:
            if tensor_index in op.outputs:
                return op
        return None

    def custom_codes(self) -> set[str]:
        return {op.custom_code for op in self.ops if op.is_custom}
