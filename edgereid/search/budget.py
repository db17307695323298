"""What a board allows and what an architecture costs on it: the search's hard constraints.

- latency: the board's latency table (overhead + each fused kernel's entry, or the
  table's fitted per-op model for kernels it lacks), in milliseconds at the board clock;
- flash: the model's constant data (weights, biases, requantisation constants, as the
  firmware stores them) plus the code allowance (`edgereid.latency.pruning.CODE_ALLOWANCE`);
- RAM: the firmware planner's tensor arena for the int8 graph, plus the board's stack.

`space_floor` answers "how low can this space go on this board": the least latency by
dynamic programming over the positions (latency adds up over kernels, and a block's
kernels depend only on its input shape and its own choices), and the flash and arena of
the space's smallest architecture. An impossible budget is refused with those figures.
"""
from __future__ import annotations

import itertools
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from edgereid.errors import EdgereidError
from edgereid.firmware.lowering import lower_graph
from edgereid.firmware.planner import plan
from edgereid.latency.fusion import rules_for_board
from edgereid.latency.predict import predict_kernels
from edgereid.latency.pruning import CODE_ALLOWANCE, milliseconds_per_unit
from edgereid.latency.table import LatencyTable
from edgereid.search_space import Architecture
from edgereid.search_space.architecture import Block, Head, Stem
from edgereid.search_space.fusion import fuse, fused_layers
from edgereid.search_space.layers import LayerWriter, write_block, write_head, write_stem
from edgereid.search_space.space import SearchSpace
from edgereid.search_space.tflite import to_tflite
from edgereid.tflite import read_graph



@dataclass(frozen=True)
class Budget:
    board: str
    latency_ms: float
    flash_bytes: int | None
    ram_bytes: int | None

    def describe(self) -> str:
        mem = ", ".join(f"{what} {_kib(v)}" for what, v in (("flash", self.flash_bytes), ("RAM", self.ram_bytes))
                        if v is not None)
        return f"{self.board}: latency {self.latency_ms:.4g} ms" + (f", {mem}" if mem else "")


@dataclass(frozen=True)
class Cost:
    latency_ms: float
    flash_bytes: int
    ram_bytes: int          # arena + stack

    def violations(self, budget: Budget) -> list[str]:
        out = []
        if self.latency_ms > budget.latency_ms:
            out.append(f"latency {self.latency_ms:.4g} ms > {budget.latency_ms:.4g} ms")
        if budget.flash_bytes is not None and self.flash_bytes > budget.flash_bytes:
            out.append(f"flash {_kib(self.flash_bytes)} > {_kib(budget.flash_bytes)}")
        if budget.ram_bytes is not None and self.ram_bytes > budget.ram_bytes:
            out.append(f"RAM {_kib(self.ram_bytes)} > {_kib(budget.ram_bytes)}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _kib(n: int) -> str:
    return f"{n / 1024:.0f} KiB"


def board_budget(board, latency_ms: float | None) -> Budget:
    """The board's flash and RAM and the latency target (required: a board file holds no default)."""
    if latency_ms is None:
        raise EdgereidError(f"search for {board.name}: give the latency target (--latency-ms); the board file "
                            "sets memory budgets only")
    if not latency_ms > 0:
        raise EdgereidError(f"search: latency target must be > 0 ms, got {latency_ms}")
    return Budget(board.name, float(latency_ms), board.memory.flash_bytes, board.memory.ram_bytes)


class CostModel:
    """Costs of architectures on one board (cached by architecture)."""

    def __init__(self, board, table: LatencyTable):
        self.board, self.table = board, table
        self.rules = rules_for_board(board)
        self.scale = milliseconds_per_unit(table, board)
        self.stack = board.memory.stack_bytes or 0
        self._cache: dict[str, Cost] = {}

    def latency_ms(self, fused) -> float:
        """Per-inference overhead + the kernels', in ms."""
        return predict_kernels(fused, self.table).total * self.scale

    def kernels_ms(self, fused) -> float:
        """The kernels' latency alone (no per-inference overhead), in ms."""
        return sum(p.value for p in predict_kernels(fused, self.table).layers) * self.scale

    def __call__(self, arch: Architecture) -> Cost:
        key = arch.to_json()
        if key not in self._cache:
            self._cache[key] = self._cost(arch)
        return self._cache[key]

    def _cost(self, arch: Architecture) -> Cost:
        latency = self.latency_ms(fused_layers(arch, self.rules))
        with tempfile.TemporaryDirectory() as tmp:
            graph = read_graph(to_tflite(arch, Path(tmp) / "arch.tflite"))
        constants = sum(len(t.data) for t in graph.tensors if t.data)
        arena = plan(graph, lower_graph(graph)).arena_bytes
        return Cost(latency, constants + CODE_ALLOWANCE, arena + self.stack)


def smallest_architecture(space: SearchSpace) -> Architecture:
    """The narrowest, shallowest, smallest-kernel, least-expanded point, striding wherever it may."""
    blocks = []
    for bc in space.blocks:
        expand, depth = min(bc.expands), min(bc.depths)
        per = 3 if expand > 1 else 2
        blocks.append(Block(width=min(bc.widths), depth=depth, kernel=min(bc.kernels), stride=max(bc.strides),
                            expand=expand, precision=bc.precisions[0], bn=("shared",) * (per * depth)))
    return Architecture(space.input_shape, Stem(min(space.stem.widths), space.stem.kernel, space.stem.stride),
                        tuple(blocks), Head(min(space.embeddings)), space.name)


@dataclass(frozen=True)
class Floor:
    latency_ms: float
    flash_bytes: int
    ram_bytes: int


def space_floor(space: SearchSpace, costs: CostModel) -> Floor:
    """The least latency any architecture of `space` has on the board (exact, by dynamic
    programming over positions), and the flash and RAM of its smallest architecture."""
    def block_latency(state, block) -> tuple[float, tuple]:
        wr = LayerWriter(state)
        write_block(wr, 0, block)
        return costs.kernels_ms(fuse(wr.layers, costs.rules)), wr.shape

    best: dict[tuple, float] = {}
    for width in space.stem.widths:
        wr = LayerWriter(space.input_shape)
        write_stem(wr, Stem(width, space.stem.kernel, space.stem.stride))
        cost = costs.kernels_ms(fuse(wr.layers, costs.rules))
        best[wr.shape] = min(best.get(wr.shape, float("inf")), cost)
    for bc in space.blocks:
        nxt: dict[tuple, float] = {}
        for (state, so_far), width, kernel, stride, expand, depth, precision in itertools.product(
                best.items(), bc.widths, bc.kernels, bc.strides, bc.expands, bc.depths, bc.precisions):
            lat, shape = block_latency(state, Block(width=width, depth=depth, kernel=kernel, stride=stride,
                                                    expand=expand, precision=precision))
            nxt[shape] = min(nxt.get(shape, float("inf")), so_far + lat)
        best = nxt
    least = float("inf")
    for (state, so_far), emb in itertools.product(best.items(), space.embeddings):
        wr = LayerWriter(state)
        write_head(wr, Head(emb))
        least = min(least, so_far + costs.kernels_ms(fuse(wr.layers, costs.rules)))
    overhead = costs.latency_ms([])
    small = costs(smallest_architecture(space))
    return Floor(least + overhead, small.flash_bytes, small.ram_bytes)


def check_budget(space: SearchSpace, costs: CostModel, budget: Budget) -> Floor:
    """Refuse a budget no architecture of the space can meet, naming how low the space goes."""
    floor = space_floor(space, costs)
    short = []
    if floor.latency_ms > budget.latency_ms:
        short.append(f"latency {budget.latency_ms:.4g} ms (the fastest architecture takes {floor.latency_ms:.4g} ms)")
    if budget.flash_bytes is not None and floor.flash_bytes > budget.flash_bytes:
        short.append(f"flash {_kib(budget.flash_bytes)} (the smallest architecture needs {_kib(floor.flash_bytes)})")
    if budget.ram_bytes is not None and floor.ram_bytes > budget.ram_bytes:
        short.append(f"RAM {_kib(budget.ram_bytes)} (the smallest architecture needs {_kib(floor.ram_bytes)})")
    if short:
        raise EdgereidError(f"search space {space.name} cannot meet the budget on {budget.board}: "
                            + "; ".join(short))
    return floor


__all__ = ["Budget", "Cost", "CostModel", "Floor", "board_budget", "check_budget", "space_floor",
           "smallest_architecture"]
