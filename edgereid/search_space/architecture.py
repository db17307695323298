"""One point of the search space: a Re-ID backbone as stem -> blocks -> head.

A block is `depth` inverted-residual units (MobileNetV2/MCUNet style) of one width:
1x1 expand conv (skipped when expand == 1) -> BN -> ReLU -> k x k depthwise conv
(stride on the first unit only) -> BN -> ReLU -> 1x1 project conv -> BN, plus the
identity shortcut when the unit keeps shape. `precision` applies to the block's
full (non-depthwise) convs: a `Precision` (edgereid.ops): int8, int4 (4-bit weights),
or binary (1-bit weights and activations, BiRe-ID style) where the target runtime has
a binary conv kernel. Given as a string, it is parsed when the Block is made.

CM-NAS makes every BN layer either shared by the visible and infrared modalities or
split per modality. At inference one modality's statistics are folded into the conv,
so the choice costs nothing at run time, but it is part of the architecture and is
kept here: one entry per BN layer of the block, in layer order.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from edgereid.atomic import write_text
from edgereid.errors import ModelError
from edgereid.ops import Precision

BN_CHOICES = ("shared", "split")
FORMAT = "edgereid-architecture"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Stem:
    width: int
    kernel: int = 3
    stride: int = 2
    bn: str = "shared"


@dataclass(frozen=True)
class Block:
    width: int
    depth: int = 1
    kernel: int = 3
    stride: int = 1
    expand: int = 4
    precision: Precision = Precision.INT8
    # One per BN layer of the block, in order (see bn_layers_per_unit).
    bn: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "precision", Precision.parse(self.precision, "Block.precision"))

    @property
    def bn_layers_per_unit(self) -> int:
        return 3 if self.expand > 1 else 2

    @property
    def num_bn_layers(self) -> int:
        return self.depth * self.bn_layers_per_unit


@dataclass(frozen=True)
class Head:
    embedding: int
    bn: str = "shared"          # the BNNeck after the embedding FC (folded at inference)


@dataclass(frozen=True)
class Architecture:
    input_shape: tuple[int, int, int]      # H, W, C
    stem: Stem
    blocks: tuple[Block, ...]
    head: Head
    space: str = ""                        # name of the space it was drawn from, if any

    def __post_init__(self):
        validate(self)

    # ---- serialisation ------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["blocks"] = [dict(asdict(b), bn=list(b.bn), precision=b.precision.value) for b in self.blocks]
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict, source: str = "architecture") -> "Architecture":
        if not isinstance(d, dict):
            raise ModelError(f"{source}: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ModelError(f"{source}: 'format' is {d.get('format')!r}, expected {FORMAT!r}")
        if d.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{source}: format_version {d.get('format_version')!r}, expected {FORMAT_VERSION}")
        try:
            blocks = []
            for i, b in enumerate(d["blocks"]):
                precision = Precision.parse(b.get("precision", Precision.INT8.value),
                                            f"{source}: blocks[{i}].precision")
                blocks.append(Block(**dict(b, bn=tuple(b.get("bn", ())), precision=precision)))
            return cls(
                input_shape=tuple(int(v) for v in d["input_shape"]),
                stem=Stem(**d["stem"]),
                blocks=tuple(blocks),
                head=Head(**d["head"]),
                space=d.get("space", ""),
            )
        except (AttributeError, KeyError, TypeError) as exc:
            raise ModelError(f"{source}: malformed architecture ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_json(cls, text: str, source: str = "architecture") -> "Architecture":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(d, source)


def save_architecture(arch: Architecture, path) -> Path:
    return write_text(path, arch.to_json() + "\n")


def load_architecture(path) -> Architecture:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such architecture file (expected JSON written by save_architecture)")
    return Architecture.from_json(path.read_text(encoding="utf-8"), str(path))


def _positive(value, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ModelError(f"{what} must be a positive integer, got {value!r}")


def validate(arch: Architecture) -> None:
    """Refuse an architecture that cannot be built (the message names the field)."""
    if len(arch.input_shape) != 3:
        raise ModelError(f"input_shape must be (H, W, C), got {arch.input_shape!r}")
    for i, v in enumerate(arch.input_shape):
        _positive(v, f"input_shape[{i}]")
    s = arch.stem
    _positive(s.width, "stem.width")
    if s.kernel not in (1, 3, 5, 7) or s.stride not in (1, 2):
        raise ModelError(f"stem: kernel {s.kernel} stride {s.stride}; expected kernel 1/3/5/7, stride 1/2")
    if s.bn not in BN_CHOICES:
        raise ModelError(f"stem.bn is {s.bn!r}; expected one of {BN_CHOICES}")
    if not arch.blocks:
        raise ModelError("an architecture needs at least one block")
    for i, b in enumerate(arch.blocks):
        where = f"blocks[{i}]"
        for name in ("width", "depth", "expand"):
            _positive(getattr(b, name), f"{where}.{name}")
        if b.kernel not in (3, 5, 7):
            raise ModelError(f"{where}.kernel is {b.kernel}; expected 3, 5 or 7")
        if b.stride not in (1, 2):
            raise ModelError(f"{where}.stride is {b.stride}; expected 1 or 2")
        if len(b.bn) != b.num_bn_layers or any(c not in BN_CHOICES for c in b.bn):
            raise ModelError(f"{where}.bn must list {b.num_bn_layers} choices from {BN_CHOICES} (one per BN "
                             f"layer: {b.bn_layers_per_unit} per unit x depth {b.depth}), got {list(b.bn)}")
    _positive(arch.head.embedding, "head.embedding")
    if arch.head.bn not in BN_CHOICES:
        raise ModelError(f"head.bn is {arch.head.bn!r}; expected one of {BN_CHOICES}")
