"""Static memory plan: one activation arena, offsets chosen from tensor lifetimes.

Schedule = graph order. The graph input and output live in the caller's buffers (the
`input`/`output` pointers of ereid_model_invoke), every other activation in the arena.
Tensors that share bytes form one storage group: a RESHAPE output aliases its input; an
element-wise op may write over an input whose last use it is. A layer whose kernel asked
for scratch (Layer.scratch_bytes, from the kernel's get_buffer_size rule) gets a group of
its own alive during that layer only: codegen passes it in the kernel's ereid_context.
Groups are placed largest first, each into the best-fitting gap (smallest gap that holds
it) among the groups whose lifetimes overlap its own; offsets are 16-byte aligned.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from edgereid.errors import FirmwareError
from edgereid.tflite.ir import Graph
from edgereid.firmware.lowering import Layer, lower_graph

ALIGN = 16
EXTERNAL_INPUT = "input"
EXTERNAL_OUTPUT = "output"
ARENA = "arena"
PATCHED = "patch"   # a tensor inside a patch-based stage: never whole, only stripes (edgereid.firmware.patches)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class StorageGroup:
    """Tensors sharing the same bytes; alive from `first` to `last` step (inclusive)."""
    id: int
    tensors: list[int]
    size: int
    first: int
    last: int
    place: str = ARENA          # ARENA, EXTERNAL_INPUT or EXTERNAL_OUTPUT
    offset: int = 0             # arena offset when place == ARENA
    is_scratch: bool = False

    def overlaps(self, other: "StorageGroup") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class LayerReport:
    index: int
    kind: str
    macs: int
    weight_bytes: int
    live_bytes: int            # arena bytes of groups alive during this layer
    io_bytes: int              # this layer's activation inputs + outputs (all places)


@dataclass
class Schedule:
    groups: list[StorageGroup]
    group_of: dict[int, int]                 # tensor index -> group id
    aliased_layers: set[int]                 # layers with no code (output aliases input)
    scratch_group_of: dict[int, int]         # layer index -> scratch group id
    arena_bytes: int
    layers: list[LayerReport] = field(default_factory=list)
    sum_activation_bytes: int = 0            # every arena group 16-aligned, no reuse
    lower_bound_bytes: int = 0               # max over steps of live arena bytes
    patches: object = None                   # [patches.PatchSplit]: stages that run patch by patch (or None)

    def location(self, tensor: int) -> tuple[str, int]:
        g = self.groups[self.group_of[tensor]]
        return g.place, g.offset


INPUT_ALIGN = 4  # each packed input starts word-aligned: VLDR of a float32 input faults unaligned


def packed_input_offsets(nbytes: list[int]) -> tuple[list[int], int]:
    """Where each graph input starts in the one input buffer (graph input order, each
    start rounded up to INPUT_ALIGN, padding bytes ignored) and the buffer's size."""
    offsets, end = [], 0
    for n in nbytes:
        start = -(-end // INPUT_ALIGN) * INPUT_ALIGN
        offsets.append(start)
        end = start + n
    return offsets, end


class _UnionFind:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _lifetimes(graph: Graph, layers: list[Layer]) -> dict[int, list[int]]:
    """tensor -> [first step, last step]; graph input from step -1, graph output to step n."""
    life: dict[int, list[int]] = {}
    n = len(layers)
    for t in graph.inputs:
        life[t] = [-1, -1]
    for step, layer in enumerate(layers):
        for t in layer.reads:
            life.setdefault(t, [step, step])[1] = step
        for t in layer.writes:
            life.setdefault(t, [step, step])
            life[t][1] = max(life[t][1], step)
    for t in graph.outputs:
        life.setdefault(t, [n, n])[1] = n
    return life


def _check_indices(graph: Graph, layers: list[Layer]) -> None:
    """Every tensor index the plan uses names a tensor (no Python negative indexing), the
    graph has inputs, and each layer is an op's."""
    n = len(graph.tensors)
    where = f"{graph.source}: " if graph.source else ""
    if len(layers) != len(graph.ops):
        raise FirmwareError(f"{where}the plan got {len(layers)} layers for {len(graph.ops)} ops; expected one per op")
    if not graph.inputs or not graph.outputs:
        raise FirmwareError(f"{where}the graph has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs; "
                            "expected at least one of each")
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for slot, t in enumerate(indices):
            if not 0 <= t < n:
                raise FirmwareError(f"{where}graph {role} {slot} is tensor index {t}; expected one in [0, {n - 1}]")
    for step, layer in enumerate(layers):
        for role, indices in (("reads", layer.reads), ("writes", layer.writes)):
            for t in indices:
                if not 0 <= t < n:
                    raise FirmwareError(f"{where}op {step} ({layer.op.kind}) {role} tensor index {t}; expected one "
                                        f"in [0, {n - 1}]")
        if layer.alias and (not layer.reads or not layer.writes):
            raise FirmwareError(f"{where}op {step} ({layer.op.kind}) aliases its output to its input but has "
                                f"{len(layer.reads)} reads and {len(layer.writes)} writes; expected 1 of each")
        if layer.inplace_input is not None and not (0 <= layer.inplace_input < len(layer.reads) and layer.writes):
            raise FirmwareError(f"{where}op {step} ({layer.op.kind}) in-place input {layer.inplace_input} is not "
                                f"one of its {len(layer.reads)} reads")


def plan(graph: Graph, layers: list[Layer] | None = None) -> Schedule:
    """Place every activation; `layers` defaults to lower_graph(graph)."""
    if layers is None:
        layers = lower_graph(graph)
    _check_indices(graph, layers)
    life = _lifetimes(graph, layers)
    uf = _UnionFind()
    for t in life:
        uf.find(t)
    graph_in, graph_out = set(graph.inputs), set(graph.outputs)
    input_offsets, _ = packed_input_offsets([graph.tensors[t].nbytes for t in graph.inputs])
    aliased: set[int] = set()
    for step, layer in enumerate(layers):
        out = layer.writes[0] if layer.writes else None
        if layer.alias:
            src = layer.reads[0]
            # The caller's output buffer cannot alias anything else: copy into it instead.
            if out in graph_out:
                continue
            uf.union(src, out)
            aliased.add(step)
        elif layer.inplace_input is not None:
            src = layer.reads[layer.inplace_input]
            root = uf.find(src)
            members = [t for t in life if uf.find(t) == root]
            last_use = max(life[t][1] for t in members)
            if (last_use == step and out not in graph_out and not (set(members) & graph_in)
                    and graph.tensors[out].nbytes <= graph.tensors[src].nbytes):
                uf.union(src, out)

    by_root: dict[int, list[int]] = {}
    for t in sorted(life):
        by_root.setdefault(uf.find(t), []).append(t)
    groups: list[StorageGroup] = []
    group_of: dict[int, int] = {}
    for root in sorted(by_root):
        members = by_root[root]
        g = StorageGroup(id=len(groups), tensors=members,
                         size=max(graph.tensors[t].nbytes for t in members),
                         first=min(life[t][0] for t in members), last=max(life[t][1] for t in members))
        if set(members) & graph_in:
            g.place = EXTERNAL_INPUT
            g.offset = input_offsets[graph.inputs.index(min(set(members) & graph_in))]
        elif set(members) & graph_out:
            g.place = EXTERNAL_OUTPUT
        groups.append(g)
        for t in members:
            group_of[t] = g.id
    scratch_group_of = {}
    for step, layer in enumerate(layers):
        if layer.scratch_bytes > 0:
            g = StorageGroup(id=len(groups), tensors=[], size=layer.scratch_bytes, first=step, last=step,
                             is_scratch=True)
            groups.append(g)
            scratch_group_of[step] = g.id

    arena_groups = [g for g in groups if g.place == ARENA]
    placed: list[StorageGroup] = []
    for g in sorted(arena_groups, key=lambda g: (-g.size, g.first, g.id)):
        g.offset = _best_fit(g, [p for p in placed if p.overlaps(g)])
        placed.append(g)
    arena_bytes = _align(max((g.offset + g.size for g in arena_groups), default=0))

    schedule = Schedule(groups, group_of, aliased, scratch_group_of, arena_bytes)
    schedule.sum_activation_bytes = sum(_align(g.size) for g in arena_groups)
    for step, layer in enumerate(layers):
        live = sum(g.size for g in arena_groups if g.first <= step <= g.last)
        io = sum(graph.tensors[t].nbytes for t in set(layer.reads) | set(layer.writes))
        schedule.layers.append(LayerReport(step, layer.op.kind, layer.macs, layer.weight_bytes, live, io))
    schedule.lower_bound_bytes = max((r.live_bytes for r in schedule.layers), default=0)
    return schedule


def _best_fit(group: StorageGroup, conflicts: list[StorageGroup]) -> int:
    """Lowest-waste aligned gap among `conflicts` that holds `group`; else after the last one."""
    best = None
    cursor = 0
    for c in sorted(conflicts, key=lambda c: (c.offset, c.id)):
        gap = c.offset - cursor
        if gap >= group.size and (best is None or gap < best[0]):
            best = (gap, cursor)
        cursor = max(cursor, _align(c.offset + c.size))
    if best is not None:
        return best[1]
    return cursor
