"""The firmware compiler's view of a model: tensors, ops in schedule order, graph I/O.

Plain data read from a .tflite file; nothing here knows about flatbuffers or C.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1}
_NUMPY = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
          "int64": np.int64, "float32": np.float32, "bool": np.bool_}


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str                                  # "int8", "int32", "float32", ...
    scales: tuple[float, ...] = ()              # float32 values as stored in the file
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    data: bytes | None = None                   # constant payload, little-endian
    is_const: bool = False

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * DTYPE_BYTES[self.dtype]

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
        """The constant payload as an array of `shape` (raises if not constant)."""
        if self.data is None:
            raise ValueError(f"tensor {self.index} ({self.name}) has no constant data")
        return np.frombuffer(self.data, dtype=_NUMPY[self.dtype]).reshape(self.shape)


@dataclass(frozen=True)
class Op:
    index: int
    kind: str                                   # builtin name, e.g. "CONV_2D"
    inputs: tuple[int, ...]                     # tensor indices; -1 = optional input omitted
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)  # snake_case keys; enums as names


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]                               # in the file's (= execution) order
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    def consumers(self, tensor_index: int) -> list[Op]:
        return [op for op in self.ops if tensor_index in op.inputs]

    def producer(self, tensor_index: int) -> Op | None:
        for op in self.ops:
            if tensor_index in op.outputs:
                return op
        return None
