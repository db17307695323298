"""Weight precision: a closed type, parsed once where a string comes in.

The string values ("int8", "int4", "binary") are what architecture JSON, latency
table keys and table configs hold, so files written before this type existed read
back unchanged. Activations are int8 in every precision; `binary` means 1-bit
weights (and 1-bit activations inside the binary kernels), stored as Larq Compute
Engine stores them: bitpacked int32 words (see ../shared/DESIGN.md).
"""
from __future__ import annotations

import enum

from edgereid.errors import ModelError


class Precision(enum.Enum):
    INT8 = "int8"
    INT4 = "int4"
    BINARY = "binary"

    @property
    def weight_bits(self) -> int:
        return _WEIGHT_BITS[self]

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value, field: str = "precision", error: type[Exception] = ModelError) -> "Precision":
        """`value` (a Precision or its string) as a Precision; anything else raises `error`
        naming `field` and the allowed values."""
        if isinstance(value, cls):
            return value
        for p in cls:
            if isinstance(value, str) and value == p.value:
                return p
        raise error(f"{field} is {value!r}; expected one of {', '.join(PRECISIONS)}")


_WEIGHT_BITS = {Precision.INT8: 8, Precision.INT4: 4, Precision.BINARY: 1}
PRECISIONS = tuple(p.value for p in Precision)
