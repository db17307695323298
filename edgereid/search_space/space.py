"""Search spaces: the choices at each position of stem -> blocks -> head, and sampling.

`mcu` (the default) takes the 128x64x3 (H x W x C) crops the data stage produces and
stays within what a Cortex-M board with a few hundred KiB of RAM can hold: widths 8 to
96, at most 4x expansion, largest activation 64x32x64 int8 = 128 KiB. `tiny` is the
same shape at 32x16x3 for tests and quick profiles.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from edgereid.errors import ModelError
from edgereid.ops import Precision
from edgereid.search_space.architecture import BN_CHOICES, Architecture, Block, Head, Stem


@dataclass(frozen=True)
class StemChoices:
    widths: tuple[int, ...]
    kernel: int = 3
    stride: int = 2


@dataclass(frozen=True)
class BlockChoices:
    widths: tuple[int, ...]
    depths: tuple[int, ...] = (1, 2)
    kernels: tuple[int, ...] = (3, 5)
    strides: tuple[int, ...] = (1,)
    expands: tuple[int, ...] = (2, 4)
    precisions: tuple[Precision, ...] = (Precision.INT8,)

    def __post_init__(self):
        object.__setattr__(self, "precisions", tuple(Precision.parse(p, "BlockChoices.precisions")
                                                     for p in self.precisions))


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input_shape: tuple[int, int, int]     # H, W, C
    stem: StemChoices
    blocks: tuple[BlockChoices, ...]
    embeddings: tuple[int, ...]
    bn_choices: tuple[str, ...] = BN_CHOICES

    def with_precisions(self, precisions) -> "SearchSpace":
        """The same space restricted to `precisions` (Precisions or their strings, e.g. what a runtime supports)."""
        precisions = tuple(Precision.parse(p, "with_precisions") for p in precisions)
        blocks = []
        for i, b in enumerate(self.blocks):
            kept = tuple(p for p in b.precisions if p in precisions)
            if not kept:
                raise ModelError(f"space {self.name}: block {i} allows {[str(p) for p in b.precisions]}, none of "
                                 f"{[str(p) for p in precisions]}")
            blocks.append(BlockChoices(b.widths, b.depths, b.kernels, b.strides, b.expands, kept))
        return SearchSpace(self.name, self.input_shape, self.stem, tuple(blocks), self.embeddings, self.bn_choices)


def _mcu(name: str, input_shape: tuple[int, int, int]) -> SearchSpace:
    return SearchSpace(
        name=name,
        input_shape=input_shape,
        stem=StemChoices(widths=(8, 16)),
        blocks=(
            BlockChoices(widths=(16, 24), strides=(2,)),
            BlockChoices(widths=(24, 32), strides=(2,), depths=(1, 2, 3)),
            BlockChoices(widths=(32, 48), strides=(1, 2), depths=(1, 2, 3)),
            BlockChoices(widths=(48, 64), strides=(2,), depths=(1, 2)),
            BlockChoices(widths=(64, 96), strides=(1,), depths=(1, 2)),
        ),
        embeddings=(64, 128),
    )


# Every block's 1x1 convs at int8, int4 (4-bit weights) or binary (LCE binary conv) weights.
LOW_BIT = (Precision.INT8, Precision.INT4, Precision.BINARY)


def _mixed(base: SearchSpace, name: str) -> SearchSpace:
    blocks = tuple(BlockChoices(b.widths, b.depths, b.kernels, b.strides, b.expands, LOW_BIT) for b in base.blocks)
    return SearchSpace(name, base.input_shape, base.stem, blocks, base.embeddings, base.bn_choices)


SPACES = {
    "mcu": _mcu("mcu", (128, 64, 3)),
    "tiny": _mcu("tiny", (32, 16, 3)),
}
SPACES["mcu-mixed"] = _mixed(SPACES["mcu"], "mcu-mixed")
DEFAULT_SPACE = "mcu"


def list_spaces() -> list[str]:
    return sorted(SPACES)


def load_space(name: str | None = None) -> SearchSpace:
    name = name or DEFAULT_SPACE
    if name not in SPACES:
        raise ModelError(f"unknown search space {name!r}; known: {', '.join(list_spaces())}")
    return SPACES[name]


def sample(space: SearchSpace, rng: random.Random) -> Architecture:
    """One architecture drawn uniformly per choice; the same rng state gives the same one."""
    stem = Stem(width=rng.choice(space.stem.widths), kernel=space.stem.kernel, stride=space.stem.stride,
                bn=rng.choice(space.bn_choices))
    blocks = []
    for bc in space.blocks:
        depth = rng.choice(bc.depths)
        expand = rng.choice(bc.expands)
        n_bn = depth * (3 if expand > 1 else 2)
        blocks.append(Block(width=rng.choice(bc.widths), depth=depth, kernel=rng.choice(bc.kernels),
                            stride=rng.choice(bc.strides), expand=expand, precision=rng.choice(bc.precisions),
                            bn=tuple(rng.choice(space.bn_choices) for _ in range(n_bn))))
    head = Head(embedding=rng.choice(space.embeddings), bn=rng.choice(space.bn_choices))
    return Architecture(input_shape=space.input_shape, stem=stem, blocks=tuple(blocks), head=head, space=space.name)
