"""Every fused kernel configuration a search space can produce: what a profile measures.

The walk follows the reachable tensor shapes position by position (stem, each block,
head) rather than every architecture, so it stays small: a block's kernels depend
only on its input shape and its own choices, and units after the second of a block
repeat the second's kernels.
"""
from __future__ import annotations

import itertools

from edgereid.ops import Kernel
from edgereid.search_space.architecture import Block, Head, Stem
from edgereid.search_space.fusion import FusionRules, fuse
from edgereid.search_space.layers import LayerWriter, write_block, write_head, write_stem
from edgereid.search_space.space import SearchSpace


def space_kernels(space: SearchSpace, rules: FusionRules) -> list[Kernel]:
    """Unique kernels, in first-seen order (stem first, head last)."""
    seen: dict[str, Kernel] = {}

    def collect(wr: LayerWriter) -> tuple[int, int, int]:
        for f in fuse(wr.layers, rules):
            seen.setdefault(f.kernel.key(), f.kernel)
        return wr.shape

    states = set()
    for width in space.stem.widths:
        wr = LayerWriter(space.input_shape)
        write_stem(wr, Stem(width=width, kernel=space.stem.kernel, stride=space.stem.stride))
        states.add(collect(wr))
    for bc in space.blocks:
        next_states = set()
        for state, width, kernel, stride, expand, precision in itertools.product(
                sorted(states), bc.widths, bc.kernels, bc.strides, bc.expands, bc.precisions):
            depths = sorted(set(min(d, 2) for d in bc.depths))
            for depth in depths:
                wr = LayerWriter(state)
                write_block(wr, 0, Block(width=width, depth=depth, kernel=kernel, stride=stride, expand=expand,
                                         precision=precision))
                next_states.add(collect(wr))
        states = next_states
    for state, embedding in itertools.product(sorted(states), space.embeddings):
        wr = LayerWriter(state)
        write_head(wr, Head(embedding=embedding))
        collect(wr)
    return list(seen.values())
