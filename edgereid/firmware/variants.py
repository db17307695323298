"""One firmware image for several variants of one graph (e.g. a split-BN model's visible and
infrared exports): the constants stored once where their bytes agree, a runtime switch.

A CM-NAS split BN folds into its conv per modality. With per-output-channel symmetric int8
weights the fold scales a channel's weights and its quantization scale alike, so the int8
weights come out the same for both modalities (where the BN scales have the same sign and
the float rounding agrees); the int32 biases, the requantisation multipliers and shifts and,
when calibrated per modality, the activation zero points differ. Here every variant is lowered
as its own model, then model.c is written once:

- constant arrays are content-addressed: equal bytes (and C type) are one array, whatever
  layer or variant they come from; an array whose bytes differ is stored once per variant;
- params structs likewise (after their pointers are renamed to the arrays kept);
- a call whose arguments differ only in the constants it points at is written once and picks
  them from per-variant pointer tables (`op3_quant_sel[ereid_model_variant]`); a call whose
  kernel differs (a wrapper's pick from the constants) gets a switch on the variant;
- `ereid_model_set_variant(index)` selects the variant (0 until called; an index out of range
  is refused and changes nothing), so every table index is in range.

The variants must have one graph structure: same ops (kind, options, tensor indices) and
tensors (shape, dtype, constant or not, per-channel count); otherwise a FirmwareError names
the first op or tensor that differs. Activation memory (the arena plan) is the same for all;
patch-based stages are not supported here.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgereid.atomic import output_dir
from edgereid.errors import FirmwareError
from edgereid.firmware import codegen
from edgereid.firmware.build import (SANITIZE_FLAGS, SizeReport, _run_make, board_spec, check_fit, measure_size)
from edgereid.firmware.codegen import BoardSpec
from edgereid.firmware.frontend import read_tflite
from edgereid.firmware.kernel_abi import (Address, ConstRef, Context, KernelCall, ScratchContext, StructArrayRef,
                                          StructRef, declare)
from edgereid.firmware.lowering import CArray, Layer, lower_graph
from edgereid.firmware.planner import Schedule, plan
from edgereid.firmware.toolchain import Toolchain
from edgereid.resources import firmware_dir
from edgereid.tflite.ir import Graph
from edgereid.tflite.reader import tensor_label

VARIANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
SELECTED = "ereid_model_variant"          # the C variable the tables are indexed by
_ITEM_BYTES = {"int8_t": 1, "int32_t": 4, "float": 4, "double": 8}


@dataclass(frozen=True)
class Variant:
    name: str          # a C identifier part: EREID_MODEL_VARIANT_<NAME>
    model: Path


def parse_variants(pairs) -> list[Variant]:
    """`[(name, path)]` or `["name=path"]` -> Variants; checks names (C identifiers, distinct),
    files (exist) and count (at least 2)."""
    out: list[Variant] = []
    for item in pairs:
        if isinstance(item, Variant):
            out.append(item)
            continue
        if isinstance(item, str):
            name, sep, path = item.partition("=")
            if not sep:
                raise FirmwareError(f"variant {item!r}: expected NAME=MODEL.tflite")
        else:
            name, path = item
        out.append(Variant(str(name), Path(path)))
    if len(out) < 2:
        raise FirmwareError(f"a multi-variant image takes at least 2 variants, got {len(out)}")
    seen = set()
    for v in out:
        if not VARIANT_NAME.match(v.name):
            raise FirmwareError(f"variant name {v.name!r}: expected a letter, then letters, digits or _ "
                                "(at most 32; it names C macros)")
        if v.name.lower() in seen:
            raise FirmwareError(f"variant name {v.name!r} is given twice (names are compared ignoring case)")
        seen.add(v.name.lower())
        if not v.model.is_file():
            raise FirmwareError(f"variant {v.name}: model {v.model} does not exist")
    return out


# ---- one graph structure ------------------------------------------------------------------

def _tensor_difference(a, b) -> str | None:
    for what, x, y in (("shape", list(a.shape), list(b.shape)), ("dtype", a.dtype, b.dtype),
                       ("constant", a.is_const, b.is_const),
                       ("quantization channels", len(a.scales), len(b.scales)),
                       ("quantized dimension", a.quantized_dimension if len(a.scales) > 1 else 0,
                        b.quantized_dimension if len(b.scales) > 1 else 0)):
        if x != y:
            return f"{what} {y} where the first variant has {x}"
    return None


def check_same_structure(graphs: list[Graph], names: list[str]) -> None:
    """Raise a FirmwareError naming the first op or tensor (in execution order) where a variant's
    graph differs from the first one's: op kind, options or tensor indices; tensor shape, dtype,
    constness or per-channel count. Constant values and quantization scales may differ."""
    ref = graphs[0]
    for g, name in zip(graphs[1:], names[1:]):
        where = f"variant {name} ({g.source})"
        if len(g.ops) != len(ref.ops):
            raise FirmwareError(f"{where} has {len(g.ops)} ops, variant {names[0]} has {len(ref.ops)}; expected "
                                "one graph structure (same ops, same tensor shapes)")
        seen: set[int] = set()
        for op_a, op_b in zip(ref.ops, g.ops):
            label = f"{where}: op {op_b.index} ({op_b.kind})"
            if op_a.kind != op_b.kind:
                raise FirmwareError(f"{label} where variant {names[0]} has {op_a.kind}; expected one graph "
                                    "structure (same ops, same tensor shapes)")
            if (op_a.inputs, op_a.outputs) != (op_b.inputs, op_b.outputs):
                raise FirmwareError(f"{label} reads {list(op_b.inputs)} and writes {list(op_b.outputs)}, variant "
                                    f"{names[0]} reads {list(op_a.inputs)} and writes {list(op_a.outputs)}; "
                                    "expected the same tensors")
            if op_a.options != op_b.options:
                keys = sorted(k for k in set(op_a.options) | set(op_b.options)
                              if op_a.options.get(k) != op_b.options.get(k))
                raise FirmwareError(f"{label} option {keys[0]} is {op_b.options.get(keys[0])!r}, variant "
                                    f"{names[0]} has {op_a.options.get(keys[0])!r}; expected the same options")
            for t in (*op_a.inputs, *op_a.outputs):
                if t < 0 or t in seen:
                    continue
                seen.add(t)
                diff = _tensor_difference(ref.tensors[t], g.tensors[t])
                if diff:
                    raise FirmwareError(f"{label} uses {tensor_label(g.tensors[t])}: {diff}; expected one graph "
                                        "structure (same ops, same tensor shapes)")
        if (list(g.inputs), list(g.outputs)) != (list(ref.inputs), list(ref.outputs)):
            raise FirmwareError(f"{where} has graph inputs {list(g.inputs)} and outputs {list(g.outputs)}, variant "
                                f"{names[0]} has {list(ref.inputs)} and {list(ref.outputs)}; expected the same")


def _plan_signature(schedule: Schedule, graph: Graph) -> tuple:
    return (schedule.arena_bytes, tuple(sorted(schedule.scratch_group_of.items())),
            tuple(schedule.location(t) for t in range(len(graph.tensors)) if t in schedule.group_of),
            tuple(sorted(schedule.aliased_layers)))


def _check_same_plan(schedules: list[Schedule], layers: list[list[Layer]], graphs: list[Graph],
                     names: list[str]) -> None:
    for k in range(1, len(schedules)):
        if _plan_signature(schedules[k], graphs[k]) == _plan_signature(schedules[0], graphs[0]):
            continue
        first = next((i for i, (a, b) in enumerate(zip(layers[0], layers[k])) if a.scratch_bytes != b.scratch_bytes),
                     None)
        what = (f"op {first} ({layers[k][first].op.kind}) asks for {layers[k][first].scratch_bytes} B of scratch, "
                f"variant {names[0]}'s {layers[0][first].scratch_bytes} B" if first is not None
                else "its activation plan differs")
        raise FirmwareError(f"variant {names[k]}: {what}; the variants of one image share one activation arena")


# ---- constants stored once: content-addressed arrays and structs --------------------------

def _array_key(a: CArray) -> tuple:
    dtype = {"int8_t": np.int64, "int32_t": np.int64, "float": np.float32, "double": np.float64}[a.ctype]
    return a.ctype, np.asarray(a.values, dtype=dtype).reshape(-1).tobytes()


def _renamed(value, names: dict[str, str]):
    """`value` (a struct value, Address, or one of their fields) with every array symbol renamed."""
    if isinstance(value, Address):
        return dataclasses.replace(value, symbol=names.get(value.symbol, value.symbol))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _renamed(getattr(value, f.name), names)
                                             for f in dataclasses.fields(value)})
    if isinstance(value, tuple):
        return tuple(_renamed(v, names) for v in value)
    return value


def _renamed_arg(arg, arrays: dict[str, str], structs: dict[str, str]):
    if isinstance(arg, ConstRef) and arg.name is not None:
        return dataclasses.replace(arg, name=arrays.get(arg.name, arg.name))
    if isinstance(arg, StructRef):
        return StructRef(structs.get(arg.name, arg.name), _renamed(arg.value, arrays))
    if isinstance(arg, StructArrayRef):
        return StructArrayRef(structs.get(arg.name, arg.name), _renamed(arg.values, arrays))
    return arg


def _renamed_call(call: KernelCall, arrays: dict[str, str], structs: dict[str, str]) -> KernelCall:
    check = call.buffer_size_check
    if check is not None:
        check = dataclasses.replace(check, args=tuple(_renamed_arg(a, arrays, structs) for a in check.args))
    return dataclasses.replace(call, args=tuple(_renamed_arg(a, arrays, structs) for a in call.args),
                               buffer_size_check=check)


@dataclass
class ConstantPool:
    """Every constant of the image once: name -> C declaration, in first-use order."""
    declarations: dict[str, str] = field(default_factory=dict)
    bytes_of: dict[str, int] = field(default_factory=dict)
    _by_key: dict[tuple, str] = field(default_factory=dict)

    def add(self, key: tuple, name: str, declaration, nbytes: int) -> str:
        """The name the constant with `key` has in model.c (`name` if new; `declaration(name)` declares it)."""
        if key in self._by_key:
            return self._by_key[key]
        if name in self.declarations:
            raise FirmwareError(f"model.c constant name {name} used for two different constants")
        self._by_key[key] = name
        self.declarations[name] = declaration(name)
        self.bytes_of[name] = nbytes
        return name


@dataclass
class SharingReport:
    """Constant bytes: what one variant alone holds, what the image stores once for all,
    what it stores per variant. `weights_*`: the int8 arrays (filters) only."""
    variant_bytes: list[int]
    shared_bytes: int
    per_variant_bytes: int
    weights_variant_bytes: list[int]
    weights_shared_bytes: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class LoweredVariants:
    """What model.c is written from: per layer, the declarations (in order) and the call."""
    graph: Graph
    schedule: Schedule
    layers: list[Layer]                         # variant 0's (names, shapes, plan, per-layer reports)
    names: list[str]
    per_layer: list[list[str]]                  # layer -> C declarations (arrays, structs, tables)
    calls: list[list[KernelCall | None]]        # layer -> the call per variant, constants renamed
    selected_calls: list[KernelCall | None]     # layer -> one call picking per-variant constants, or None
    functions: set[str]
    sources: list[Path]
    sharing: SharingReport


def _sharing(layer_sets: list[list[Layer]], kept: dict[int, dict[tuple, str]]) -> SharingReport:
    """Bytes of each variant's arrays; those whose kept copy every variant uses count as shared."""
    users: dict[str, set[int]] = {}
    size: dict[str, int] = {}
    is_weight: dict[str, bool] = {}
    variant_bytes, weight_bytes = [], []
    for k, layers in enumerate(layer_sets):
        total = weights = 0
        for i, layer in enumerate(layers):
            for a in layer.arrays:
                n = int(np.asarray(a.values).size) * _ITEM_BYTES[a.ctype]
                total += n
                weights += n if a.ctype == "int8_t" else 0
                name = kept[k][(i, a.name)]
                users.setdefault(name, set()).add(k)
                size[name], is_weight[name] = n, a.ctype == "int8_t"
        variant_bytes.append(total)
        weight_bytes.append(weights)
    everyone = set(range(len(layer_sets)))
    shared = sum(size[n] for n, u in users.items() if u == everyone)
    return SharingReport(variant_bytes, shared, sum(size[n] for n, u in users.items() if u != everyone),
                         weight_bytes, sum(size[n] for n, u in users.items() if u == everyone and is_weight[n]))


def _table_declaration(name: str, refs: list) -> tuple[str, object]:
    """A per-variant pointer table and the argument that indexes it."""
    first = refs[0]
    if isinstance(first, StructRef):
        items = ", ".join(f"&{r.name}" for r in refs)
        decl = f"static const {type(first.value).c_name} *const {name}[{len(refs)}] = {{{items}}};"
        # `&(*table[i])` is the selected struct's address: the call and its buffer-size check take `&name`.
        return decl, StructRef(f"(*{name}[{SELECTED}])", first.value)
    items = ", ".join(r.name or "NULL" for r in refs)
    decl = f"static {first.c_type}const {name}[{len(refs)}] = {{{items}}};"
    return decl, ConstRef(f"{name}[{SELECTED}]", first.c_type)


def _selected_call(calls: list[KernelCall], prefix: str) -> tuple[KernelCall | None, list[str]]:
    """One call for all variants with per-variant constants picked from tables, when the
    calls differ only in which constants they name; else (None, [])."""
    first = calls[0]
    if any((c.function, c.scratch_bytes, len(c.args), c.sources) != (first.function, first.scratch_bytes,
                                                                      len(first.args), first.sources)
           or (c.buffer_size_check is None) != (first.buffer_size_check is None) for c in calls):
        return None, []
    tables: dict[str, str] = {}
    picked: dict[tuple, object] = {}

    def pick(refs: list):
        if all(r == refs[0] for r in refs):
            return refs[0]
        if not all(type(r) is type(refs[0]) and isinstance(r, (StructRef, ConstRef, StructArrayRef)) for r in refs):
            return None
        key = tuple(r.name for r in refs)
        if key not in picked:
            name = f"{prefix}_sel{len(picked)}"
            if isinstance(refs[0], StructArrayRef):
                decl, arg = _table_declaration(name, [ConstRef(r.name, r.c_type) for r in refs])
            else:
                decl, arg = _table_declaration(name, refs)
            tables[name] = decl
            picked[key] = arg
        return picked[key]

    args = []
    for slot in range(len(first.args)):
        arg = pick([c.args[slot] for c in calls])
        if arg is None:
            return None, []
        args.append(arg)
    check = first.buffer_size_check
    if check is not None:
        if check.function != calls[-1].buffer_size_check.function:
            return None, []
        check_args = []
        for slot in range(len(check.args)):
            arg = pick([c.buffer_size_check.args[slot] for c in calls])
            if arg is None or not isinstance(arg, StructRef):
                return None, []
            check_args.append(arg)
        check = dataclasses.replace(check, args=tuple(check_args))
    return dataclasses.replace(first, args=tuple(args), buffer_size_check=check), list(tables.values())


def lower_variants(graphs: list[Graph], names: list[str]) -> LoweredVariants:
    """Lower every variant, check they share one structure and one plan, pool the constants."""
    check_same_structure(graphs, names)
    layer_sets = [lower_graph(g) for g in graphs]
    schedules = [plan(g, layers) for g, layers in zip(graphs, layer_sets)]
    _check_same_plan(schedules, layer_sets, graphs, names)
    schedule, n = schedules[0], len(graphs)
    pool = ConstantPool()
    kept: dict[int, dict[tuple, str]] = {k: {} for k in range(n)}
    per_layer: list[list[str]] = []
    calls: list[list[KernelCall | None]] = []
    selected: list[KernelCall | None] = []
    for i in range(len(graphs[0].ops)):
        start = len(pool.declarations)
        array_names: list[dict[str, str]] = []
        keys = [{a.name: _array_key(a) for a in layer_sets[k][i].arrays} for k in range(n)]
        for k in range(n):
            renames = {}
            for a in layer_sets[k][i].arrays:
                key = keys[k][a.name]
                same = all(kk.get(a.name, key) == key for kk in keys)
                renames[a.name] = pool.add(
                    key, a.name if same else f"{a.name}_v{k}",
                    lambda nm, a=a: codegen._format_array(dataclasses.replace(a, name=nm)),
                    int(np.asarray(a.values).size) * _ITEM_BYTES[a.ctype])
                kept[k][(i, a.name)] = renames[a.name]
            array_names.append(renames)
        variant_calls: list[KernelCall | None] = []
        coded = i not in schedule.aliased_layers and layer_sets[0][i].call is not None
        for k in range(n):
            call = layer_sets[k][i].call
            if not coded or call is None:
                variant_calls.append(None)
                continue
            struct_names = {}
            for ref in call.declarations():
                renamed = _renamed_arg(ref, array_names[k], {})
                text = declare(dataclasses.replace(renamed, name="@"))
                same = all(declare(dataclasses.replace(_renamed_arg(r, array_names[j], {}), name="@")) == text
                           for j in range(n) for r in layer_sets[j][i].call.declarations() if r.name == ref.name)
                struct_names[ref.name] = pool.add(
                    ("struct", text), ref.name if same else f"{ref.name}_v{k}",
                    lambda nm, renamed=renamed: declare(dataclasses.replace(renamed, name=nm)), 0)
            variant_calls.append(_renamed_call(call, array_names[k], struct_names))
        decls = list(pool.declarations.values())[start:]
        pick = None
        if variant_calls[0] is not None and any(c != variant_calls[0] for c in variant_calls):
            pick, tables = _selected_call(variant_calls, f"op{i}")
            decls += tables
        per_layer.append(decls)
        calls.append(variant_calls)
        selected.append(pick)
    functions = {f for k in range(n) for c in calls for f in ([] if c[k] is None else c[k].functions)}
    extra = sorted({Path(p) for c in calls for call in c if call is not None for p in call.sources})
    sources = codegen.kernel_sources(functions, None, extra) if functions else []
    return LoweredVariants(graphs[0], schedule, layer_sets[0], names, per_layer, calls, selected, functions,
                           sources, _sharing(layer_sets, kept))


# ---- model.c / model.h / main.c -------------------------------------------------------------

def _call_block(lv: LoweredVariants, i: int, ptr, ctx: str, scratch: int) -> list[str]:
    variant_calls = lv.calls[i]
    if all(c == variant_calls[0] for c in variant_calls):
        return codegen.call_lines(variant_calls[0], ptr, ctx, scratch, i)
    if lv.selected_calls[i] is not None:
        return codegen.call_lines(lv.selected_calls[i], ptr, ctx, scratch, i)
    # The kernel itself differs per variant (a wrapper's pick depends on the constants).
    out = [f"switch ({SELECTED}) {{"]
    for k, call in enumerate(variant_calls):
        out.append(f"case {k}:" if k < len(variant_calls) - 1 else "default:")
        out += ["    " + line for line in codegen.call_lines(call, ptr, ctx, scratch, i)]
        out.append("    break;")
    return out + ["}"]


def model_c(lv: LoweredVariants, model_names: list[str]) -> str:
    graph, layers, schedule = lv.graph, lv.layers, lv.schedule
    ptr = codegen._pointer(schedule, graph)
    n = len(lv.names)
    out = [f"/* Generated by edgereid build-firmware from {n} variants of one graph: "
           + ", ".join(f"{name} = {m}" for name, m in zip(lv.names, model_names)) + ". Do not edit. */",
           "/* Constants equal across variants are stored once; the rest once per variant "
           "(edgereid.firmware.variants). */",
           "#include <stddef.h>", "#include <stdint.h>", "", '#include "ereid_nn.h"', '#include "model.h"', ""]
    if schedule.arena_bytes:
        out += ["/* Every intermediate activation; offsets from the static plan in layers.json. */",
                "static int8_t ereid_arena[EREID_MODEL_ARENA_BYTES] __attribute__((aligned(16)));"]
    out += ["/* The variant whose constants run; ereid_model_set_variant keeps it in range. */",
            f"static int {SELECTED};", ""]
    coded = [i for i, c in enumerate(lv.calls) if c[0] is not None]
    prototypes: dict[str, None] = {}
    for call in (c for i in coded for c in lv.calls[i] if c.sources):
        prototypes[f"ereid_status {call.function}({', '.join(a.c_type for a in call.args)});"] = None
        if call.buffer_size_check is not None:
            check = call.buffer_size_check
            prototypes[f"int32_t {check.function}({', '.join(a.c_type for a in check.args)});"] = None
    if prototypes:
        out += ["/* Extension kernels (not in ereid_nn.h). */", *prototypes]
    if any(codegen._context_name(schedule, i) == codegen.NO_SCRATCH
           and any(isinstance(a, ScratchContext) for c in lv.calls[i] for a in c.args) for i in coded):
        out.append(declare(StructRef(codegen.NO_SCRATCH, Context(None, 0))))
    out.append("")
    for i in range(len(layers)):
        decls = list(lv.per_layer[i])
        if i in coded and i in schedule.scratch_group_of:
            decls.append(codegen._context_declaration(schedule, i))
        if decls:
            out += [f"/* op {i}: {layers[i].op.kind} */", *decls, ""]
    names = ", ".join(f'"{l.op.kind}"' for l in layers) or '""'
    vnames = ", ".join(f'"{v}"' for v in lv.names)
    out += [f"const char *const ereid_model_layer_names[{max(1, len(layers))}] = {{{names}}};",
            f"const char *const ereid_model_variant_names[EREID_MODEL_NUM_VARIANTS] = {{{vnames}}};", "",
            "int ereid_model_set_variant(int index)", "{",
            "    if (index < 0 || index >= EREID_MODEL_NUM_VARIANTS) {", "        return -1;", "    }",
            f"    {SELECTED} = index;", "    return 0;", "}", "",
            "int ereid_model_get_variant(void)", "{", f"    return {SELECTED};", "}", "",
            "#ifdef EREID_LAYER_HOOK",
            "#define EREID_HOOK(layer, after) ereid_layer_hook((layer), (after))",
            "#else",
            "#define EREID_HOOK(layer, after) ((void)0)",
            "#endif", "",
            "int ereid_model_invoke(const void *input, void *output)",
            "{",
            "    ereid_status status = EREID_OK;",
            "    if (input == NULL || output == NULL) {",
            "        return -1;",
            "    }"]
    for i, layer in enumerate(layers):
        out.append(f"    /* op {i}: {layer.op.kind} */")
        out.append(f"    EREID_HOOK({i}, 0);")
        if i in coded:
            scratch = schedule.groups[schedule.scratch_group_of[i]].size if i in schedule.scratch_group_of else 0
            out += ["    " + line for line in _call_block(lv, i, ptr, codegen._context_name(schedule, i), scratch)]
        out.append(f"    EREID_HOOK({i}, 1);")
        if i not in schedule.aliased_layers:
            out.append(f"    if (status != EREID_OK) {{\n        return {i + 1};\n    }}")
    out += ["    (void)status;", "    return 0;", "}", ""]
    out += codegen.layer_output_table(graph, layers, schedule)
    return "\n".join(out)


def _io_quant_macros(graphs: list[Graph], names: list[str]) -> list[str]:
    out = []
    for g, name in zip(graphs, names):
        for role, t in (("INPUT", g.tensors[g.inputs[0]]), ("OUTPUT", g.tensors[g.outputs[0]])):
            if t.scales:
                out += [f"#define EREID_MODEL_VARIANT_{name.upper()}_{role}_SCALE {float(np.float32(t.scale)):.9g}f",
                        f"#define EREID_MODEL_VARIANT_{name.upper()}_{role}_ZERO_POINT {t.zero_point}"]
    return out


def model_h(lv: LoweredVariants, graphs: list[Graph]) -> str:
    base = codegen.model_h(lv.graph, lv.layers, lv.schedule)
    anchor = "/* Runs the model: 0 = ok"
    if anchor not in base:
        raise FirmwareError("codegen.model_h changed: no place for the variant API in model.h")
    block = "\n".join([
        "/* Variants (edgereid build-firmware --variant): one graph, per-variant constants where they",
        " * differ. ereid_model_set_variant(index) selects whose constants ereid_model_invoke uses",
        " * (variant 0 until called); 0 = ok, -1 = no such index (the selection is unchanged).",
        " * The unqualified INPUT/OUTPUT scale and zero point above are variant 0's. */",
        f"#define EREID_MODEL_NUM_VARIANTS {len(lv.names)}",
        *[f"#define EREID_MODEL_VARIANT_{n.upper()} {k}" for k, n in enumerate(lv.names)],
        *_io_quant_macros(graphs, lv.names),
        "int ereid_model_set_variant(int index);",
        "int ereid_model_get_variant(void);",
        "extern const char *const ereid_model_variant_names[EREID_MODEL_NUM_VARIANTS];", "", ""])
    return base.replace(anchor, block + anchor, 1)


MAIN_C = r"""/* Default app of a multi-variant image (generated): `firmware VARIANT in.bin out.bin` runs
 * variant VARIANT (an index, or a name of ereid_model_variant_names) once. On a Cortex-M
 * target without a file system it runs every variant once on a zero input and returns the
 * first non-zero status (no stdio, so the image size is the model's). */
#include <stdint.h>
#include "model.h"

static uint8_t input_buf[EREID_MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t output_buf[EREID_MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));

#ifdef EREID_LAYER_HOOK
void ereid_layer_hook(int layer, int after)
{
    (void)layer;
    (void)after;
}
#endif

#if defined(__arm__) && !defined(EREID_HOSTED)
int main(void)
{
    int v;
    for (v = 0; v < EREID_MODEL_NUM_VARIANTS; v++) {
        int rc = ereid_model_set_variant(v);
        if (rc == 0) {
            rc = ereid_model_invoke(input_buf, output_buf);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
#else
#include <stdio.h>
#include <string.h>

static int variant_index(const char *arg)
{
    int v;
    for (v = 0; v < EREID_MODEL_NUM_VARIANTS; v++) {
        char digits[12];
        snprintf(digits, sizeof digits, "%d", v);
        if (strcmp(arg, ereid_model_variant_names[v]) == 0 || strcmp(arg, digits) == 0) {
            return v;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    FILE *f;
    int rc;
    int v;
    if (argc != 4) {
        fprintf(stderr, "usage: %s VARIANT INPUT.bin OUTPUT.bin (input %d bytes, %d variants)\n", argv[0],
                EREID_MODEL_INPUT_BYTES, EREID_MODEL_NUM_VARIANTS);
        return 2;
    }
    v = variant_index(argv[1]);
    if (v < 0 || ereid_model_set_variant(v) != 0) {
        fprintf(stderr, "error: no variant %s (an index below %d or one of the names)\n", argv[1],
                EREID_MODEL_NUM_VARIANTS);
        return 2;
    }
    f = fopen(argv[2], "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\n", argv[2]);
        return 2;
    }
    if (fread(input_buf, 1, sizeof input_buf, f) != sizeof input_buf || fgetc(f) != EOF) {
        fprintf(stderr, "error: %s must hold exactly %d bytes\n", argv[2], EREID_MODEL_INPUT_BYTES);
        fclose(f);
        return 2;
    }
    fclose(f);
    rc = ereid_model_invoke(input_buf, output_buf);
    if (rc != 0) {
        fprintf(stderr, "error: ereid_model_invoke returned %d\n", rc);
        return 1;
    }
    f = fopen(argv[3], "wb");
    if (f == NULL || fwrite(output_buf, 1, sizeof output_buf, f) != sizeof output_buf) {
        fprintf(stderr, "error: cannot write %s\n", argv[3]);
        return 2;
    }
    return fclose(f) == 0 ? 0 : 2;
}
#endif
"""


# ---- the whole build ------------------------------------------------------------------------

@dataclass
class VariantBuildResult:
    out_dir: Path
    executable: Path
    board: BoardSpec
    size: SizeReport
    schedule: Schedule
    variants: list[Variant]
    sharing: SharingReport
    tables: int                    # layers whose call picks constants from per-variant tables
    switches: int                  # layers whose kernel differs per variant (a switch)


def _write(project: Path, lv: LoweredVariants, graphs: list[Graph], variants: list[Variant], spec: BoardSpec,
           hil: bool, dsp: bool) -> None:
    # The project around model.c is the single-model one (kernels, board, HIL app, Makefile),
    # written for the first variant; then model.c, model.h and main.c are replaced and any kernel
    # only another variant calls is added.
    model_bytes = variants[0].model.read_bytes()
    codegen.write_project(lv.graph, lv.layers, lv.schedule, spec, project, model_bytes, variants[0].model.name,
                          hil=hil, dsp=dsp)
    kernels_dir = firmware_dir() / "kernels"
    mk = project / "Makefile"
    text = mk.read_text(encoding="utf-8")
    line = next(l for l in text.splitlines() if l.startswith("MODEL_SRCS = "))
    have = set(line.split()[2:])
    extra = []
    for p in lv.sources:
        rel = f"kernels/{codegen._kernel_rel(p, kernels_dir).as_posix()}"
        if rel not in have:
            codegen._copy(p, project / rel)
            extra.append(rel)
    if extra:
        mk.write_text(text.replace(line, " ".join([line, *extra]), 1), encoding="utf-8")
    (project / "model.c").write_text(model_c(lv, [v.model.name for v in variants]), encoding="utf-8")
    (project / "model.h").write_text(model_h(lv, graphs), encoding="utf-8")
    (project / "main.c").write_text(MAIN_C, encoding="utf-8")
    report = json.loads((project / "layers.json").read_text(encoding="utf-8"))
    report["variants"] = {"names": lv.names, "models": [v.model.name for v in variants],
                          "constants": lv.sharing.to_dict()}
    (project / "layers.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


def build_variant_firmware(variants, board, out_dir, *, hil: bool = False, sanitize: bool = False,
                           dsp: bool = True, object_cache: Path | None = None) -> VariantBuildResult:
    """One image for all `variants` ([(name, .tflite)] or ["name=path"], at least 2, one graph
    structure): generate, compile, size-check against `board`. Same contract as
    edgereid.firmware.build_firmware for `out_dir` (replaced as a whole, never half-written),
    `hil`, `sanitize`, `dsp` and `object_cache`."""
    variants = parse_variants(variants)
    spec = board_spec(board)
    if sanitize and spec.is_cortex_m:
        raise FirmwareError(f"sanitize=True builds run on the host only, board {spec.name} is {spec.core}")
    graphs = [read_tflite(v.model) for v in variants]
    names = [v.name for v in variants]
    lv = lower_variants(graphs, names)
    out_dir = Path(out_dir)
    with output_dir(out_dir, FirmwareError, what="firmware output folder") as project:
        _write(project, lv, graphs, variants, spec, hil, dsp)
        if sanitize:
            mk = project / "Makefile"
            mk.write_text(mk.read_text().replace("EXTRA_CFLAGS =\n", f"EXTRA_CFLAGS = {SANITIZE_FLAGS}\n")
                          .replace("EXTRA_LDFLAGS =\n", f"EXTRA_LDFLAGS = {SANITIZE_FLAGS}\n"))
        _run_make(project, spec, "", object_cache)
        exe_name = Toolchain.of(spec).target
        size = measure_size(project / exe_name, spec, lv.schedule.arena_bytes)
        check_fit(size, spec)
    tables = sum(1 for c in lv.selected_calls if c is not None)
    switches = sum(1 for i, c in enumerate(lv.calls) if c[0] is not None and lv.selected_calls[i] is None
                   and any(x != c[0] for x in c))
    return VariantBuildResult(out_dir, out_dir / exe_name, spec, size, lv.schedule, variants, lv.sharing,
                              tables, switches)


def format_variant_report(result: VariantBuildResult) -> str:
    s, sh = result.size, result.sharing
    n = len(result.variants)
    lines = [f"variants: {', '.join(f'{k} {v.name} ({v.model.name})' for k, v in enumerate(result.variants))}",
             f"constants: one variant {sh.variant_bytes[0]:,} B; stored once {sh.shared_bytes:,} B, per variant "
             f"{sh.per_variant_bytes:,} B in all ({n} variants: {sum(sh.variant_bytes):,} B if stored apart)",
             f"int8 weights: one variant {sh.weights_variant_bytes[0]:,} B, stored once {sh.weights_shared_bytes:,} B "
             f"({100.0 * sh.weights_shared_bytes / max(1, sh.weights_variant_bytes[0]):.1f}%)",
             f"layers picking per-variant constants: {result.tables} by table, {result.switches} by switch"]
    spec = result.board
    budget = (lambda have: f" of {have:,}" if have else "")
    lines += [f"flash {s.flash_bytes:,} B{budget(spec.flash_bytes)} (text {s.text:,} + data {s.data:,})",
              f"RAM {s.ram_bytes:,} B{budget(spec.ram_bytes)} (data {s.data:,} + bss {s.bss:,} "
              f"[arena {s.arena_bytes:,}] + stack {s.stack_bytes:,})"]
    return "\n".join(lines)


__all__ = ["ConstantPool", "LoweredVariants", "SharingReport", "Variant", "VariantBuildResult",
           "build_variant_firmware", "check_same_structure", "format_variant_report", "lower_variants",
           "parse_variants"]
