"""Evolutionary search under hard constraints (Once-for-All's search over a trained supernet).

Every candidate must meet the budget (infeasible ones are redrawn, never scored); a
generation keeps the best `parents` by score, then fills the population with mutations
(each choice redrawn with probability `mutate_prob`, BN switches included) and
crossovers (each position from either parent). The state after every generation is
written to `state_path` (JSON), and `evolve(..., resume=True)` continues from it with the
same random stream, so an interrupted search ends where an uninterrupted one does.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from edgereid.atomic import write_text
from edgereid.errors import EdgereidError
from edgereid.search.budget import Budget, Cost
from edgereid.search_space import Architecture
from edgereid.search_space.architecture import Block, Head, Stem
from edgereid.search_space.space import SearchSpace, sample

STATE_FORMAT = "edgereid-search-state"


@dataclass(frozen=True)
class Candidate:
    arch: Architecture
    cost: Cost
    score: float

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "cost": self.cost.to_dict(), "score": self.score}

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        return cls(Architecture.from_dict(d["arch"]), Cost(**d["cost"]), float(d["score"]))


def _mutate(space: SearchSpace, arch: Architecture, rng: random.Random, p: float) -> Architecture:
    def pick(choices, current):
        return rng.choice(choices) if rng.random() < p else current

    stem = Stem(pick(space.stem.widths, arch.stem.width), arch.stem.kernel, arch.stem.stride,
                pick(space.bn_choices, arch.stem.bn))
    blocks = []
    for bc, b in zip(space.blocks, arch.blocks):
        depth, expand = pick(bc.depths, b.depth), pick(bc.expands, b.expand)
        n_bn = depth * (3 if expand > 1 else 2)
        old = list(b.bn) + [rng.choice(space.bn_choices) for _ in range(max(0, n_bn - len(b.bn)))]
        bn = tuple(pick(space.bn_choices, c) for c in old[:n_bn])
        blocks.append(Block(width=pick(bc.widths, b.width), depth=depth, kernel=pick(bc.kernels, b.kernel),
                            stride=pick(bc.strides, b.stride), expand=expand,
                            precision=pick(bc.precisions, b.precision), bn=bn))
    head = Head(pick(space.embeddings, arch.head.embedding), pick(space.bn_choices, arch.head.bn))
    return Architecture(arch.input_shape, stem, tuple(blocks), head, space.name)


def _crossover(a: Architecture, b: Architecture, rng: random.Random) -> Architecture:
    return Architecture(a.input_shape, rng.choice((a.stem, b.stem)),
                        tuple(rng.choice(pair) for pair in zip(a.blocks, b.blocks)),
                        rng.choice((a.head, b.head)), a.space)


def _rng_state(rng: random.Random) -> list:
    version, state, gauss = rng.getstate()
    return [version, list(state), gauss]


def _set_rng_state(rng: random.Random, saved: list) -> None:
    rng.setstate((saved[0], tuple(saved[1]), saved[2]))


def evolve(space: SearchSpace, budget: Budget, cost: Callable[[Architecture], Cost],
           score: Callable[[Architecture], float], *, population: int = 16, generations: int = 8,
           parents: int = 4, mutate_prob: float = 0.25, seed: int = 0, max_tries: int = 2000,
           state_path=None, resume: bool = False, progress: bool = True) -> list[Candidate]:
    """Every candidate scored, in the order scored (the last generation's best has the top score).

    `cost(arch)` must be cheap next to `score(arch)` (the supernet's accuracy estimate).
    """
    if population < 2 or parents < 1 or parents > population or generations < 1:
        raise EdgereidError(f"search: population {population}, parents {parents}, generations {generations}; "
                            "expected population >= 2, 1 <= parents <= population, generations >= 1")
    state_path = Path(state_path) if state_path is not None else None
    rng = random.Random(seed)
    scored: list[Candidate] = []
    current: list[Candidate] = []
    generation = 0
    if resume and state_path is not None and state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("format") != STATE_FORMAT or state.get("space") != space.name:
            raise EdgereidError(f"{state_path}: not a search state of space {space.name}")
        scored = [Candidate.from_dict(c) for c in state["scored"]]
        current = [Candidate.from_dict(c) for c in state["population"]]
        generation = int(state["generation"])
        _set_rng_state(rng, state["rng"])
    seen = {c.arch.to_json() for c in scored}

    def feasible(make) -> tuple[Architecture, Cost]:
        for _ in range(max_tries):
            arch = make()
            c = cost(arch)
            if not c.violations(budget) and arch.to_json() not in seen:
                return arch, c
        raise EdgereidError(f"search: no new architecture within the budget ({budget.describe()}) in {max_tries} "
                            "draws; relax the budget or enlarge the space")

    def add(arch: Architecture, c: Cost) -> Candidate:
        cand = Candidate(arch, c, float(score(arch)))
        seen.add(arch.to_json())
        scored.append(cand)
        return cand

    bar = tqdm(total=generations, initial=generation, desc="search", disable=not progress, leave=False)
    while generation < generations:
        if generation == 0:
            new = [add(*feasible(lambda: sample(space, rng))) for _ in range(population)]
        else:
            top = sorted(current, key=lambda c: -c.score)[:parents]
            new = list(top)
            while len(new) < population:
                if rng.random() < 0.5 and len(top) > 1:
                    a, b = rng.sample(top, 2)
                    new.append(add(*feasible(lambda: _mutate(space, _crossover(a.arch, b.arch, rng), rng,
                                                             mutate_prob / 2))))
                else:
                    parent = rng.choice(top)
                    new.append(add(*feasible(lambda: _mutate(space, parent.arch, rng, mutate_prob))))
        current = new
        generation += 1
        bar.update(1)
        best = max(current, key=lambda c: c.score)
        bar.set_postfix(best=f"{best.score:.3f}", latency=f"{best.cost.latency_ms:.3g}ms")
        if state_path is not None:
            write_text(state_path, json.dumps({
                "format": STATE_FORMAT, "space": space.name, "generation": generation, "rng": _rng_state(rng),
                "population": [c.to_dict() for c in current], "scored": [c.to_dict() for c in scored]}) + "\n")
    bar.close()
    return scored


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates no other one beats on both score (higher) and latency (lower), by latency."""
    front, best = [], float("-inf")
    for c in sorted(candidates, key=lambda c: (c.cost.latency_ms, -c.score)):
        if c.score > best:
            front.append(c)
            best = c.score
    return front
