"""Patch-based inference of the leading layers (MCUNetV2): less arena than any per-layer plan.

The first layers of a vision network hold the largest feature maps. Run as a stage, patch
by patch, they never hold a whole intermediate map: each patch is a stripe of rows of the
stage's OUTPUT; going backwards through the stage, every map gets the rows its readers
need (a convolution or pool grows them by its window: the overlap between neighbouring
stripes is computed twice, the recomputation; ADD, MUL and CONCATENATION along W or C
map rows one to one). The stage input (the graph input, in the caller's buffer, or the
whole output of an earlier stage) and the stage output are whole maps; in between the
arena holds only stripe buffers, placed like the arena (best fit over the stage's steps).

Stripes span the full width, so in NHWC a stripe is contiguous: a layer's stripe input is
a pointer into a buffer (or into the stage input) with its own dims, no copy. Padding
belongs to the image border only: a stripe's call gets top padding only where its
receptive field crosses the true top border (`pad - a*stride` rows; PAD: its own rows of
padding), and its input rows are clipped to the true bottom, where the kernels' own
out-of-range test adds the bottom padding exactly as for the whole map. Everything else
(width, channels, quantisation, the kernel) is the layer's own call, so the bytes are the
same.

A stage is layers start..end-1 where every map but the last is read inside the stage only
(`stage_from`: its cuts). The planner sees a stage as one layer reading the stage input,
writing the stage output, with the stripe buffers as its scratch (`plan_patched`).
`choose_split` tries one stage from the graph input, or two (the second reading the first
one's output), each cut and stripe count, and keeps the plan that meets a RAM budget with
the least recomputed MACs (no budget: the least arena).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from edgereid.errors import FirmwareError
from edgereid.firmware.kernel_abi import (BufferSizeCheck, ConstRef, Dims, KernelCall, Scalar, StructArrayRef,
                                          StructRef, TensorRef, Tile)
from edgereid.firmware.lowering import Layer
from edgereid.firmware.planner import ALIGN, PATCHED, Schedule, StorageGroup, _best_fit, plan
from edgereid.tflite.ir import Graph

PATCHABLE_KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "PAD", "PADV2")
PATCH_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32)   # stripes tried by choose_split


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class RowGeometry:
    """One stage layer along H: which StructRefs of its call to rewrite per stripe."""
    index: int
    kind: str
    in_h: int
    out_h: int
    out_row_bytes: int         # W * C of the output (int8)
    in_dims: StructRef
    out_dims: StructRef
    params: StructRef
    window: int = 1            # (k - 1) * dilation + 1; PAD: 1
    stride: int = 1
    pad_top: int = 0           # conv/pool padding.h, PAD before.h

    @property
    def is_pad(self) -> bool:
        return self.kind in ("PAD", "PADV2")

    def rows_needed(self, a: int, b: int) -> tuple[int, int, int]:
        """Output rows [a, b) read input rows [in_a, in_b); the stripe's own top padding."""
        lo = a * self.stride - self.pad_top
        hi = (b - 1) * self.stride - self.pad_top + self.window
        in_a, in_b = max(0, lo), min(self.in_h, hi)
        return in_a, in_b, in_a - lo


def _dims_before(args, tensor: int) -> StructRef | None:
    for prev, arg in zip(args, args[1:]):
        if isinstance(arg, TensorRef) and arg.tensor == tensor:
            return prev if isinstance(prev, StructRef) and isinstance(prev.value, Dims) else None
    return None


@dataclass(frozen=True)
class RowwiseGeometry:
    """ADD, MUL, or CONCATENATION along W or C: output row r reads row r of each input
    (an input of one row broadcasts: it is read whole)."""
    index: int
    kind: str
    out_h: int
    out_row_bytes: int


ROWWISE_KINDS = ("ADD", "MUL", "CONCATENATION")


def _rowwise_geometry(graph: Graph, layer: Layer, index: int) -> RowwiseGeometry | None:
    y = graph.tensors[layer.writes[0]]
    args = layer.call.args
    if layer.op.kind == "CONCATENATION":
        axes = [a.value for a in args if isinstance(a, Scalar)]
        if len(axes) != 2 or axes[1] not in (2, 3):   # (num_inputs, axis): rows must map one to one
            return None
    for prev, arg in zip(args, args[1:]):
        if isinstance(arg, ConstRef) and isinstance(prev, StructRef) and isinstance(prev.value, Dims) \
                and prev.value.h not in (1,):
            return None   # a constant with rows would need its own row offset
    for t in layer.reads:
        x = graph.tensors[t]
        if x.dtype != "int8" or len(x.shape) != 4 or x.shape[0] != 1 or x.shape[1] not in (1, y.shape[1]):
            return None
    return RowwiseGeometry(index=index, kind=layer.op.kind, out_h=y.shape[1], out_row_bytes=y.shape[2] * y.shape[3])


def _geometry(graph: Graph, layer: Layer, index: int):
    """The layer's row geometry, or None when it cannot run on stripes."""
    kinds = PATCHABLE_KINDS + ROWWISE_KINDS
    if layer.op.kind not in kinds or layer.call is None or layer.alias or len(layer.writes) != 1 or not layer.reads:
        return None
    y = graph.tensors[layer.writes[0]]
    if y.dtype != "int8" or len(y.shape) != 4 or y.shape[0] != 1:
        return None
    if layer.op.kind in ROWWISE_KINDS:
        return _rowwise_geometry(graph, layer, index)
    if len(layer.reads) != 1:
        return None
    x = graph.tensors[layer.reads[0]]
    if x.dtype != "int8" or len(x.shape) != 4 or x.shape[0] != 1:
        return None
    args = layer.call.args
    in_dims, out_dims = _dims_before(args, x.index), _dims_before(args, y.index)
    params = next((a for a in args if isinstance(a, StructRef) and
                   (hasattr(a.value, "padding") or hasattr(a.value, "before"))), None)
    if in_dims is None or out_dims is None or params is None:
        return None
    common = dict(index=index, kind=layer.op.kind, in_h=x.shape[1], out_h=y.shape[1],
                  out_row_bytes=y.shape[2] * y.shape[3], in_dims=in_dims, out_dims=out_dims, params=params)
    p = params.value
    if hasattr(p, "before"):
        if p.before.n or p.after.n:
            return None
        return RowGeometry(**common, pad_top=p.before.h)
    filt = next((a for a in args[args.index(in_dims) + 2:] if isinstance(a, StructRef)
                 and isinstance(a.value, Dims) and a is not out_dims), None)
    if filt is None:
        return None
    dilation = getattr(p, "dilation", Tile(1, 1)).h
    return RowGeometry(**common, window=(filt.value.h - 1) * dilation + 1, stride=p.stride.h, pad_top=p.padding.h)


@dataclass
class Stage:
    """Layers from `start` that can run on stripes, reading `source` (or what they wrote)."""
    start: int
    source: int                    # the stage input: the graph input, or a map an earlier stage wrote whole
    geometry: list                 # RowGeometry | RowwiseGeometry of layers start.. in order
    cuts: list[int]                # stage ends E (layers start..E-1) whose only tensor read at or after E
                                   # is layer E-1's output


def stage_from(graph: Graph, layers: list[Layer], start: int = 0, source: int | None = None) -> Stage:
    """Layers from `start` that read only `source` (default: the one graph input) or what
    earlier such layers wrote, each runnable on stripes; a stage start..E-1 is valid when
    every tensor its layers but the last write is read inside the stage only (so no whole
    map of it is ever needed)."""
    if source is None:
        if len(graph.inputs) != 1:
            return Stage(start, -1, [], [])
        source = graph.inputs[0]
    readers: dict[int, list[int]] = {}
    for i, layer in enumerate(layers):
        for t in layer.reads:
            readers.setdefault(t, []).append(i)
    geometry, produced = [], {source}
    for i in range(start, len(layers)):
        layer = layers[i]
        g = _geometry(graph, layer, i)
        if g is None or any(t not in produced for t in layer.reads):
            break
        geometry.append(g)
        produced.add(layer.writes[0])
    cuts = []
    for end in range(start + 2, start + len(geometry) + 1):
        inner = [layers[j].writes[0] for j in range(start, end - 1)]
        if all(t not in graph.outputs and readers.get(t) and max(readers[t]) < end for t in inner):
            cuts.append(end)
    return Stage(start, source, geometry, cuts)


def leading_stage(graph: Graph, layers: list[Layer]) -> Stage:
    return stage_from(graph, layers, 0)


def leading_chain(graph: Graph, layers: list[Layer]) -> list:
    """The leading stage's layers up to its last cut."""
    stage = leading_stage(graph, layers)
    return stage.geometry[:max(stage.cuts, default=0)]


@dataclass
class StripeCall:
    """One kernel call of one stripe: the layer's call with stripe dims and padding."""
    layer: int
    call: KernelCall
    places: dict              # tensor -> ("tensor", t, byte offset) or ("buffer", t, byte offset)


@dataclass
class PatchSplit:
    start: int                                 # layers start..end-1 run patch by patch
    end: int
    patches: int                               # stripes of the stage output
    calls: list[StripeCall]                    # in execution order (stripe by stripe)
    buffer_offset: dict                        # inner tensor -> offset of its stripe buffer in the scratch
    buffer_bytes: dict                         # inner tensor -> stripe buffer bytes (largest stripe)
    buffers_end: int
    kernel_scratch_bytes: int                  # the stage kernels' largest scratch (after the buffers)
    stage_macs: int
    patched_macs: int
    model_macs: int
    inner_tensors: tuple[int, ...]             # never whole: no place in the arena
    stage_input: int
    stage_output: int
    lower_bound_bytes: int = 0                 # per-layer plan, filled by choose_split
    unpatched_arena_bytes: int = 0
    candidates: list[dict] = field(default_factory=list)
    stage: Stage | None = None

    @property
    def layers(self) -> int:
        return self.end - self.start

    @property
    def scratch_bytes(self) -> int:
        return _align(self.buffers_end) + _align(self.kernel_scratch_bytes)

    @property
    def kernel_scratch_offset(self) -> int:
        return _align(self.buffers_end)

    @property
    def recomputed_macs(self) -> int:
        return self.patched_macs - self.stage_macs

    def report(self, arena_bytes: int | None = None) -> dict:
        out = {"first_layer": self.start, "last_layer": self.end - 1, "patches": self.patches,
               "stage_output_tensor": self.stage_output,
               "lower_bound_bytes": self.lower_bound_bytes,
               "unpatched_arena_bytes": self.unpatched_arena_bytes,
               "stripe_buffers_bytes": self.buffers_end,
               "kernel_scratch_bytes": self.kernel_scratch_bytes,
               "stage_macs": self.stage_macs, "recomputed_macs": self.recomputed_macs,
               "recomputed_pct_of_stage": round(100.0 * self.recomputed_macs / max(1, self.stage_macs), 2),
               "recomputed_pct_of_model": round(100.0 * self.recomputed_macs / max(1, self.model_macs), 2)}
        if arena_bytes is not None:
            out["patched_arena_bytes"] = arena_bytes
        return out


def _stripes(h: int, p: int) -> list[tuple[int, int]]:
    """Rows [a, b) of `p` stripes as even as possible (the first ones one row taller)."""
    base, extra = divmod(h, p)
    out, a = [], 0
    for i in range(p):
        b = a + base + (1 if i < extra else 0)
        out.append((a, b))
        a = b
    return out


def _hull(r, s):
    return s if r is None else (min(r[0], s[0]), max(r[1], s[1]))


def _spatial_values(g: RowGeometry, in_rows: int, out_rows: int, pad_top: int):
    """(in dims, out dims, params) values of one stripe call of a spatial layer."""
    in_v = dataclasses.replace(g.in_dims.value, h=in_rows)
    out_v = dataclasses.replace(g.out_dims.value, h=out_rows)
    p = g.params.value
    if g.is_pad:
        after = out_rows - pad_top - in_rows
        p = dataclasses.replace(p, before=dataclasses.replace(p.before, h=pad_top),
                                after=dataclasses.replace(p.after, h=after))
    else:
        p = dataclasses.replace(p, padding=dataclasses.replace(p.padding, h=pad_top))
    return in_v, out_v, p


def make_split(graph: Graph, layers: list[Layer], stage: Stage, end: int, n_patches: int,
               with_calls: bool = True) -> PatchSplit | None:
    """The stripe calls of layers stage.start..end-1 (`end`: one of stage.cuts) in
    `n_patches` stripes of the stage output's rows, or None when a stripe would be empty
    somewhere (a PAD stripe of padding rows only). with_calls=False: sizes and MACs only
    (for ranking splits; `calls` is empty)."""
    start = stage.start
    if not start < end <= start + len(stage.geometry):
        return None
    geometry = {start + k: g for k, g in enumerate(stage.geometry)}
    steps = range(start, end)
    last = geometry[end - 1]
    if not 1 <= n_patches <= last.out_h:
        return None
    stage_input, stage_output = stage.source, layers[end - 1].writes[0]
    inner = tuple(layers[j].writes[0] for j in range(start, end - 1))
    row_bytes = {layers[j].writes[0]: geometry[j].out_row_bytes for j in steps}
    per_patch = []
    sizes = dict.fromkeys(inner, 0)
    patched_macs = 0
    for a, b in _stripes(last.out_h, n_patches):
        need = {stage_output: (a, b)}
        spatial = {}
        for j in reversed(steps):
            g, layer = geometry[j], layers[j]
            if layer.writes[0] not in need:
                return None
            oa, ob = need[layer.writes[0]]
            if isinstance(g, RowGeometry):
                ia, ib, pad = g.rows_needed(oa, ob)
                if ib <= ia:
                    return None
                spatial[j] = (ia, ib, pad)
                need[layer.reads[0]] = _hull(need.get(layer.reads[0]), (ia, ib))
            else:
                for t in layer.reads:
                    rows = (oa, ob) if graph.tensors[t].shape[1] == g.out_h else (0, 1)
                    need[t] = _hull(need.get(t), rows)
            patched_macs += layer.macs * (ob - oa) // g.out_h
        for t in inner:
            sizes[t] = max(sizes[t], (need[t][1] - need[t][0]) * row_bytes[t])
        per_patch.append((need, spatial))

    # Stripe buffers: placed like the arena (best fit, 16-byte aligned) over the stage's steps.
    readers_last = {t: max(j for j in steps if t in layers[j].reads) for t in inner}
    groups = [StorageGroup(id=k, tensors=[t], size=sizes[t], first=start + inner.index(t), last=readers_last[t])
              for k, t in enumerate(inner)]
    placed = []
    for g in sorted(groups, key=lambda g: (-g.size, g.first, g.id)):
        g.offset = _best_fit(g, [p for p in placed if p.overlaps(g)])
        placed.append(g)
    offsets = {g.tensors[0]: g.offset for g in groups}
    buffers_end = max((g.offset + g.size for g in groups), default=0)

    names: dict[tuple, StructRef] = {}

    def ref(orig, value):
        if value == (orig.values if isinstance(orig, StructArrayRef) else orig.value):
            return orig
        key = (orig.name, value)
        if key not in names:
            k = sum(1 for n in names if n[0] == orig.name)
            names[key] = (StructArrayRef(f"{orig.name}_s{k}", value) if isinstance(orig, StructArrayRef)
                          else StructRef(f"{orig.name}_s{k}", value))
        return names[key]

    calls: list[StripeCall] = []
    for need, spatial in per_patch if with_calls else ():
        for j in steps:
            g, layer = geometry[j], layers[j]
            out_t = layer.writes[0]
            oa, ob = need[out_t]
            places = {out_t: ("tensor", out_t, oa * g.out_row_bytes) if out_t == stage_output
                      else ("buffer", out_t, 0)}
            args = layer.call.args
            if isinstance(g, RowGeometry):
                ia, ib, pad = spatial[j]
                in_v, out_v, p_v = _spatial_values(g, ib - ia, ob - oa, pad)
                swap = {g.in_dims.name: ref(g.in_dims, in_v), g.out_dims.name: ref(g.out_dims, out_v),
                        g.params.name: ref(g.params, p_v)}
                views = {layer.reads[0]: (ia, ib)}
            else:
                swap, views = {}, {}
                for prev, arg in zip(args, args[1:]):
                    if isinstance(prev, StructRef) and isinstance(prev.value, Dims) and isinstance(arg, TensorRef) \
                            and graph.tensors[arg.tensor].shape[1] == g.out_h:
                        swap[prev.name] = ref(prev, dataclasses.replace(prev.value, h=ob - oa))
                for arg in args:
                    if isinstance(arg, StructArrayRef) and all(isinstance(v, Dims) for v in arg.values):
                        swap[arg.name] = ref(arg, tuple(dataclasses.replace(v, h=ob - oa) for v in arg.values))
                for t in layer.reads:
                    views[t] = (oa, ob) if graph.tensors[t].shape[1] == g.out_h else (0, 1)
            for t, (ia, ib) in views.items():
                rb = graph.tensors[t].nbytes // graph.tensors[t].shape[1]
                places[t] = ("tensor", t, ia * rb) if t == stage_input else ("buffer", t, (ia - need[t][0]) * rb)
            new = lambda a_: swap.get(a_.name, a_) if isinstance(a_, (StructRef, StructArrayRef)) else a_  # noqa: E731
            check = layer.call.buffer_size_check
            call = dataclasses.replace(layer.call, args=tuple(new(x) for x in args),
                                       buffer_size_check=None if check is None else
                                       BufferSizeCheck(check.function, tuple(new(x) for x in check.args)))
            calls.append(StripeCall(j, call, places))
    return PatchSplit(start=start, end=end, patches=n_patches, calls=calls, buffer_offset=offsets,
                      buffer_bytes=sizes, buffers_end=buffers_end,
                      kernel_scratch_bytes=max(layers[j].scratch_bytes for j in steps),
                      stage_macs=sum(layers[j].macs for j in steps), patched_macs=patched_macs,
                      model_macs=sum(l.macs for l in layers), inner_tensors=inner,
                      stage_input=stage_input, stage_output=stage_output, stage=stage)


@dataclass
class _StageLayer(Layer):
    """The whole stage, for the planner: reads the graph input, writes the stage output,
    and holds the stripe buffers (and the kernels' scratch) as its scratch."""
    stage_scratch: int = 0

    @property
    def scratch_bytes(self) -> int:
        return self.stage_scratch


def plan_patched(graph: Graph, layers: list[Layer], splits) -> Schedule:
    """The plan of `layers` with each split's stage as one layer (module docstring);
    `splits`: one PatchSplit or a list of them, in layer order, not overlapping."""
    splits = [splits] if isinstance(splits, PatchSplit) else list(splits)
    planned = list(layers)
    for sp in splits:
        stage = layers[sp.start:sp.end]
        planned[sp.start] = _StageLayer(op=stage[0].op, reads=(sp.stage_input,), writes=(sp.stage_output,),
                                        call=None, arrays=[a for l in stage for a in l.arrays], macs=sp.patched_macs,
                                        stage_scratch=sp.scratch_bytes)
        for j in range(sp.start + 1, sp.end):
            planned[j] = dataclasses.replace(layers[j], reads=(), writes=(), call=None, arrays=[], macs=0,
                                             inplace_input=None)
    schedule = plan(graph, planned)
    for sp in splits:
        for t in sp.inner_tensors:
            g = StorageGroup(id=len(schedule.groups), tensors=[t], size=graph.tensors[t].nbytes, first=sp.start,
                             last=sp.end - 1, place=PATCHED)
            schedule.groups.append(g)
            schedule.group_of[t] = g.id
    schedule.patches = splits or None
    return schedule


def _options(graph: Graph, layers: list[Layer], stage: Stage) -> list[PatchSplit]:
    """Every split of `stage` (each cut, each stripe count) not beaten on both stripe
    scratch and recomputation by another split of the same cut."""
    out = []
    for end in stage.cuts:
        splits = [sp for sp in (make_split(graph, layers, stage, end, n, with_calls=False) for n in PATCH_COUNTS)
                  if sp is not None]
        cost = lambda sp: (sp.scratch_bytes, sp.recomputed_macs)  # noqa: E731
        out += [sp for sp in splits if not any(cost(o) != cost(sp) and cost(o)[0] <= cost(sp)[0]
                                               and cost(o)[1] <= cost(sp)[1] for o in splits)]
    return out


def _estimate(graph: Graph, base: Schedule, splits: list[PatchSplit]) -> int:
    """Arena bytes the plan of `splits` needs at least: during a stage its input (when in
    the arena), stripe scratch and output; after the last stage what the per-layer plan
    keeps live there. Ranks candidates before the exact plan."""
    need = 0
    for k, sp in enumerate(splits):
        source = graph.tensors[sp.stage_input].nbytes if k else 0
        need = max(need, source + sp.scratch_bytes + graph.tensors[sp.stage_output].nbytes)
    return max([need] + [r.live_bytes for r in base.layers[splits[-1].end:]])


EXACT_PLANS = 24    # candidates (best estimates first) planned exactly by choose_split
FIRST_OF_TWO_CUTS = 4   # with two stages, the first ends at one of the leading stage's first cuts


def choose_split(graph: Graph, layers: list[Layer], ram_budget: int | None = None,
                 base: Schedule | None = None) -> tuple[Schedule, list[PatchSplit] | None]:
    """The plan to build: one patch-based stage from the graph input, or two (the second
    reading the first one's output), chosen among every cut and stripe count. With
    `ram_budget`, the candidates of least recomputation whose arena fits it (none when the
    per-layer plan already fits); without, the least arena. A budget no candidate meets is
    a FirmwareError naming the best arena found."""
    base = base if base is not None else plan(graph, layers)
    if ram_budget is not None and base.arena_bytes <= ram_budget:
        return base, None
    lead = leading_stage(graph, layers)
    first = _options(graph, layers, lead)
    combos = [[sp] for sp in first]
    later: dict[int, list[PatchSplit]] = {}
    for sp in first:
        if sp.end not in lead.cuts[:FIRST_OF_TWO_CUTS]:
            continue
        if sp.end not in later:
            later[sp.end] = _options(graph, layers, stage_from(graph, layers, sp.end, sp.stage_output))
        combos += [[sp, sp2] for sp2 in later[sp.end]]
    recompute = lambda c: sum(sp.recomputed_macs for sp in c)  # noqa: E731
    ranked = sorted(combos, key=lambda c: (_estimate(graph, base, c), recompute(c)))
    if ram_budget is not None:
        ranked = sorted((c for c in combos if _estimate(graph, base, c) <= ram_budget), key=recompute)
    tried = []
    for c in ranked[:EXACT_PLANS]:
        schedule = plan_patched(graph, layers, c)
        tried.append((schedule, c))
        if ram_budget is not None and schedule.arena_bytes <= ram_budget:
            break   # ranked by recomputation: the first that fits is the one
    candidates = [{"stages": [[sp.start, sp.end - 1, sp.patches] for sp in c], "arena_bytes": sch.arena_bytes,
                   "recomputed_macs": recompute(c)} for sch, c in tried]
    if ram_budget is not None:
        fits = [(sch, c) for sch, c in tried if sch.arena_bytes <= ram_budget]
        if not fits:
            best = min([sch.arena_bytes for sch, _ in tried] + [min((_estimate(graph, base, c) for c in combos),
                                                                     default=base.arena_bytes)])
            raise FirmwareError(f"no patch split meets the RAM budget of {ram_budget:,} B for the arena: the "
                                f"per-layer plan needs {base.arena_bytes:,} B (lower bound "
                                f"{base.lower_bound_bytes:,} B), the best patch split about {best:,} B"
                                + ("" if combos else " (no leading layers can run patch by patch)"))
        schedule, chosen = min(fits, key=lambda p: (recompute(p[1]), p[0].arena_bytes))
    else:
        if not tried:
            return base, None
        schedule, chosen = min(tried, key=lambda p: (p[0].arena_bytes, recompute(p[1])))
        if schedule.arena_bytes >= base.arena_bytes:
            return base, None
    chosen = [make_split(graph, layers, sp.stage, sp.end, sp.patches) for sp in chosen]
    for sp in chosen:
        sp.lower_bound_bytes = base.lower_bound_bytes
        sp.unpatched_arena_bytes = base.arena_bytes
        sp.candidates = candidates
    schedule.patches = chosen
    return schedule, chosen


PATCH_MODES = ("off", "auto")


def plan_with_patches(graph: Graph, layers: list[Layer], patches: str = "off",
                      ram_budget: int | None = None) -> Schedule:
    """`patches="off"`: the per-layer plan (a `ram_budget` it misses is a FirmwareError);
    "auto": choose_split."""
    if patches not in PATCH_MODES:
        raise FirmwareError(f"patches must be one of {', '.join(PATCH_MODES)}, got {patches!r}")
    if ram_budget is not None and ram_budget < 0:
        raise FirmwareError(f"ram_budget must be 0 or more bytes, got {ram_budget}")
    base = plan(graph, layers)
    if patches == "off":
        if ram_budget is not None and base.arena_bytes > ram_budget:
            raise FirmwareError(f"the arena needs {base.arena_bytes:,} B, over the RAM budget of {ram_budget:,} B "
                                "(patches=auto may fit it)")
        return base
    return choose_split(graph, layers, ram_budget, base)[0]


__all__ = ["PATCHABLE_KINDS", "PATCH_MODES", "ROWWISE_KINDS", "PatchSplit", "RowGeometry", "RowwiseGeometry", "Stage",
           "StripeCall", "choose_split", "leading_chain", "leading_stage", "make_split", "plan_patched", "stage_from",
           "plan_with_patches"]
