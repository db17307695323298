"""CM-NAS proper: search only the BN switches of a fixed backbone.

A backbone (widths, depths, kernels, strides, expansions, precisions, embedding) fixes
the latency, flash and RAM; what is left are its BN switches, one "shared"/"split" per
BN layer. `fixed_backbone_space(arch)` is the space whose other choices are the
backbone's alone, so the evolutionary search of `edgereid.search.evolution` (its
mutation, crossover, resumable state) searches exactly the switches. Switches are
written as a 0/1 string in build order (stem, blocks' layers, head; 1 = split), the
order `edgereid.models.bn_switches(model)` reports for the built model.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from edgereid.errors import EdgereidError, ModelError
from edgereid.search.budget import Budget, Cost
from edgereid.search.evolution import Candidate, evolve
from edgereid.search_space import Architecture
from edgereid.search_space.architecture import BN_CHOICES
from edgereid.search_space.space import BlockChoices, SearchSpace, StemChoices


def bn_bits(arch: Architecture) -> str:
    """The architecture's BN switches as 0/1 (1 = split), in build order."""
    choices = [arch.stem.bn] + [c for b in arch.blocks for c in b.bn] + [arch.head.bn]
    return "".join("1" if c == "split" else "0" for c in choices)


def num_bn_layers(arch: Architecture) -> int:
    return 2 + sum(b.num_bn_layers for b in arch.blocks)


def with_bn_switches(arch: Architecture, switches: str) -> Architecture:
    """`arch` with its BN switches set: "shared" or "split" (every layer) or a 0/1 string."""
    count = num_bn_layers(arch)
    if switches in BN_CHOICES:
        bits = ("1" if switches == "split" else "0") * count
    elif set(switches) <= {"0", "1"} and len(switches) == count:
        bits = switches
    else:
        raise ModelError(f"BN switches {switches!r}: expected 'shared', 'split' or {count} digits 0/1 "
                         "(one per BN layer in build order, 1 = split)")
    choice = ["split" if c == "1" else "shared" for c in bits]
    blocks, at = [], 1
    for b in arch.blocks:
        blocks.append(dataclasses.replace(b, bn=tuple(choice[at:at + b.num_bn_layers])))
        at += b.num_bn_layers
    return dataclasses.replace(arch, stem=dataclasses.replace(arch.stem, bn=choice[0]), blocks=tuple(blocks),
                               head=dataclasses.replace(arch.head, bn=choice[-1]))


def fixed_backbone_space(arch: Architecture, name: str | None = None) -> SearchSpace:
    """The space with one choice per position (the backbone's) and free BN switches.

    Named after the architecture's own space by default, so the candidates it yields
    still say which space (and supernet) they belong to."""
    blocks = tuple(BlockChoices(widths=(b.width,), depths=(b.depth,), kernels=(b.kernel,), strides=(b.stride,),
                                expands=(b.expand,), precisions=(b.precision,)) for b in arch.blocks)
    return SearchSpace(name or arch.space or "fixed-backbone", tuple(arch.input_shape),
                       StemChoices(widths=(arch.stem.width,), kernel=arch.stem.kernel, stride=arch.stem.stride),
                       blocks, (arch.head.embedding,), BN_CHOICES)


def search_bn_switches(backbone: Architecture, budget: Budget, cost: Callable[[Architecture], Cost],
                       score: Callable[[Architecture], float], *, population: int = 12, generations: int = 5,
                       parents: int = 4, mutate_prob: float = 0.25, seed: int = 0, state_path=None,
                       resume: bool = False, progress: bool = True) -> list[Candidate]:
    """Evolve the BN switches of `backbone` (its other choices stay); every candidate scored.

    The switches cost nothing at run time (a split BN folds into its conv per modality),
    so the backbone's cost is computed once and is every candidate's; a backbone outside
    the budget is refused, not searched."""
    backbone_cost = cost(with_bn_switches(backbone, "shared"))
    over = backbone_cost.violations(budget)
    if over:
        raise EdgereidError(f"BN-switch search: the backbone does not meet the budget ({budget.describe()}): "
                            + "; ".join(over))
    space = fixed_backbone_space(backbone)
    return evolve(space, budget, lambda arch: backbone_cost, score, population=population, generations=generations,
                  parents=parents, mutate_prob=mutate_prob, seed=seed, state_path=state_path, resume=resume,
                  progress=progress)


__all__ = ["bn_bits", "num_bn_layers", "with_bn_switches", "fixed_backbone_space", "search_bn_switches"]
