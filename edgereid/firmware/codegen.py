"""Write the self-contained C project for one model and one board.

Layout and Makefile variables: docs/architecture.md, "firmware project layout".
Output is a pure function of (model bytes, board, hil, dsp): no timestamps, no absolute paths.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgereid.errors import FirmwareError
from edgereid.firmware import toolchain as tc
from edgereid.firmware.kernel_abi import (Address, ConstRef, Context, KernelCall, Scalar, ScratchContext,
                                          StructArrayRef, StructRef, TensorList, TensorRef, c_int, declare)
from edgereid.firmware.lowering import CArray, Layer
from edgereid.firmware.planner import EXTERNAL_INPUT, EXTERNAL_OUTPUT, PATCHED, Schedule, packed_input_offsets
from edgereid.resources import firmware_dir
from edgereid.tflite.ir import Graph

_DEFINITION = re.compile(r"^(?!static\b)[A-Za-z_][\w \t\*]*?\b(ereid_[a-z0-9_]+)\s*\(([^;{}]*)\)\s*\{", re.M)
_CALL = re.compile(r"\b(ereid_[a-z0-9_]+)\s*\(")


@dataclass(frozen=True)
class BoardSpec:
    """What code generation and the size check need from a board."""
    name: str
    core: str
    cc: str
    cflags: tuple[str, ...]
    ldscript: Path | None
    startup: Path | None
    flash_bytes: int | None
    ram_bytes: int | None
    stack_bytes: int | None

    @property
    def is_cortex_m(self) -> bool:
        return self.core.startswith("cortex-m")


def kernel_index(kernels_dir: Path | None = None, extra_sources=()) -> dict[str, Path]:
    """Function name -> the kernel .c file that defines it (firmware/kernels, then `extra_sources`)."""
    kernels_dir = kernels_dir or firmware_dir() / "kernels"
    index: dict[str, Path] = {}
    for path in [*sorted(kernels_dir.rglob("*.c")), *map(Path, extra_sources)]:
        for m in _DEFINITION.finditer(path.read_text(encoding="utf-8")):
            index.setdefault(m.group(1), path)
    return index


def kernel_sources(functions: set[str], kernels_dir: Path | None = None, extra_sources=()) -> list[Path]:
    """The .c files defining `functions` and, transitively, what they call."""
    kernels_dir = kernels_dir or firmware_dir() / "kernels"
    index = kernel_index(kernels_dir, extra_sources)
    missing = sorted(f for f in functions if f not in index)
    if missing:
        raise FirmwareError(f"no kernel in {kernels_dir} defines {', '.join(missing)} "
                            "(expected by firmware/include/ereid_nn.h)")
    chosen: set[Path] = set()
    todo = sorted(functions)
    while todo:
        path = index[todo.pop()]
        if path in chosen:
            continue
        chosen.add(path)
        for called in _CALL.findall(path.read_text(encoding="utf-8")):
            if called in index and index[called] not in chosen:
                todo.append(called)
    return sorted(chosen)


# ---- model.c ---------------------------------------------------------------------

def _format_array(a: CArray) -> str:
    if a.ctype == "float":  # float32 constants (float ADD/MUL operands) as exact hex-float literals
        values = [float(v) for v in np.asarray(a.values, dtype=np.float32).reshape(-1).tolist()]
        if not all(np.isfinite(values)):
            raise FirmwareError(f"{a.name}: non-finite float constant")
        lines = ["    " + ", ".join(v.hex() + "f" for v in values[i:i + 4]) + "," for i in range(0, len(values), 4)]
        body = "\n".join(lines) if lines else "    0.0f,"
        return f"static const float {a.name}[{max(1, len(values))}] = {{\n{body}\n}};"
    if a.ctype == "double":  # hex float literals (C99) carry the exact bits
        values = [float(v) for v in np.asarray(a.values, dtype=np.float64).reshape(-1).tolist()]
        if not all(np.isfinite(values)):
            raise FirmwareError(f"{a.name}: non-finite double constant")
        lines = ["    " + ", ".join(v.hex() for v in values[i:i + 4]) + "," for i in range(0, len(values), 4)]
        body = "\n".join(lines) if lines else "    0.0,"
        return f"static const double {a.name}[{max(1, len(values))}] = {{\n{body}\n}};"
    values = [int(v) for v in np.asarray(a.values).reshape(-1).tolist()]
    per_line = 16 if a.ctype == "int8_t" else 8
    width = 4 if a.ctype == "int8_t" else 11
    lines = []
    for i in range(0, len(values), per_line):
        chunk = values[i:i + per_line]
        # INT32_MIN cannot be written as a literal: -2147483647 - 1.
        lines.append("    " + ", ".join(f"{v:>{width}d}" if v != -2**31 else "(-2147483647 - 1)" for v in chunk) + ",")
    body = "\n".join(lines) if lines else "    0,"
    return f"static const {a.ctype} {a.name}[{max(1, len(values))}] = {{\n{body}\n}};"


def output_offset_of(schedule: Schedule, graph: Graph, tensor: int) -> int:
    """Where the graph output stored in `tensor`'s group starts in the packed output buffer."""
    offsets, _ = packed_input_offsets([graph.tensors[t].nbytes for t in graph.outputs])
    members = set(schedule.groups[schedule.group_of[tensor]].tensors)
    slot = next(k for k, t in enumerate(graph.outputs) if t in members)
    return offsets[slot]


def _pointer(schedule: Schedule, graph: Graph):
    def ptr(t: int) -> str:
        place, offset = schedule.location(t)
        if place == EXTERNAL_INPUT:  # offset: where this input starts in the packed input buffer
            return f"((const int8_t *)input + {offset})" if offset else "((const int8_t *)input)"
        if place == EXTERNAL_OUTPUT:  # several outputs are packed like the inputs
            offset = output_offset_of(schedule, graph, t)
            return f"((int8_t *)output + {offset})" if offset else "((int8_t *)output)"
        return f"(ereid_arena + {offset})"
    return ptr


NO_SCRATCH = "ereid_no_scratch"


def _context_name(schedule: Schedule, index: int) -> str:
    """The ereid_context a layer's kernel gets: its planned scratch, or {NULL, 0}."""
    return f"op{index}_ctx" if index in schedule.scratch_group_of else NO_SCRATCH


def _context_declaration(schedule: Schedule, index: int) -> str:
    g = schedule.groups[schedule.scratch_group_of[index]]
    return declare(StructRef(_context_name(schedule, index), Context(Address("ereid_arena", g.offset), g.size)))


def _arg_expr(arg, ptr, ctx: str) -> str:
    if isinstance(arg, ScratchContext):
        return f"&{ctx}"
    if isinstance(arg, StructRef):
        return f"&{arg.name}"
    if isinstance(arg, (StructArrayRef, TensorList)):
        return arg.name
    if isinstance(arg, ConstRef):
        return arg.name or "NULL"
    if isinstance(arg, TensorRef):
        p = ptr(arg.tensor)
        return p if arg.c_type in ("const int8_t *", "int8_t *") else f"({arg.c_type}){p}"
    if isinstance(arg, Scalar):
        return c_int(arg.value)
    raise FirmwareError(f"cannot pass a {type(arg).__name__} to a kernel")


def call_lines(call: KernelCall, ptr, ctx: str, scratch_bytes: int, layer: int) -> list[str]:
    """The C statements of one typed kernel call; every call assigns `status`."""
    lines = []
    if call.buffer_size_check is not None:
        # The kernel's own get_buffer_size must not want more than the plan reserved.
        check = call.buffer_size_check
        lines.append(f"if ({check.function}({', '.join(f'&{a.name}' for a in check.args)}) > {scratch_bytes}) "
                     f"return {layer + 1};")
    statement = f"status = {call.function}({', '.join(_arg_expr(a, ptr, ctx) for a in call.args)});"
    lists = [a for a in call.args if isinstance(a, TensorList)]
    if lists:
        locals_ = " ".join(f"const int8_t *const {a.name}[{len(a.tensors)}] = {{{', '.join(ptr(t) for t in a.tensors)}}};"
                           for a in lists)
        lines += [f"{{ {locals_}", f"  {statement} }}"]
    else:
        lines.append(statement)
    return lines


def model_c(graph: Graph, layers: list[Layer], schedule: Schedule, model_name: str, digest: str) -> str:
    ptr = _pointer(schedule, graph)
    out = [f"/* Generated by edgereid build-firmware from {model_name} (sha256 {digest}). Do not edit. */",
           "#include <stddef.h>", "#include <stdint.h>", "", '#include "ereid_nn.h"', '#include "model.h"', ""]
    if schedule.arena_bytes:
        out += ["/* Every intermediate activation; offsets from the static plan in layers.json. */",
                "static int8_t ereid_arena[EREID_MODEL_ARENA_BYTES] __attribute__((aligned(16)));"]
    coded = [i for i, layer in enumerate(layers) if i not in schedule.aliased_layers and layer.call is not None]
    # Extension kernels (sources outside firmware/kernels) are not in ereid_nn.h: declare them
    # from the typed call, whose argument types are the prototype's.
    prototypes: dict[str, None] = {}
    for call in (layers[i].call for i in coded if layers[i].call.sources):
        prototypes[f"ereid_status {call.function}({', '.join(a.c_type for a in call.args)});"] = None
        if call.buffer_size_check is not None:
            check = call.buffer_size_check
            prototypes[f"int32_t {check.function}({', '.join(a.c_type for a in check.args)});"] = None
    if prototypes:
        out += ["/* Extension kernels (not in ereid_nn.h). */", *prototypes]
    if any(_context_name(schedule, i) == NO_SCRATCH and any(isinstance(a, ScratchContext) for a in layers[i].call.args)
           and not in_patch_stage(schedule, i) for i in coded):
        out.append(declare(StructRef(NO_SCRATCH, Context(None, 0))))
    out.append("")
    for i in coded:
        layer = layers[i]
        if in_patch_stage(schedule, i):
            out += patch_stage_declarations(layers, schedule, i)
            continue
        decls = [declare(ref) for ref in layer.call.declarations()]
        if i in schedule.scratch_group_of:
            decls.append(_context_declaration(schedule, i))
        if not layer.arrays and not decls:
            continue
        out.append(f"/* op {i}: {layer.op.kind} */")
        out += [_format_array(a) for a in layer.arrays]
        out += decls
        out.append("")
    names = ", ".join(f'"{l.op.kind}"' for l in layers) or '""'
    out += [f"const char *const ereid_model_layer_names[{max(1, len(layers))}] = {{{names}}};", "",
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
        if in_patch_stage(schedule, i):
            out += patch_stage_lines(graph, layers, schedule, i, ptr)
            continue
        out.append(f"    /* op {i}: {layer.op.kind} */")
        out.append(f"    EREID_HOOK({i}, 0);")
        if i not in schedule.aliased_layers and layer.call is not None:
            scratch = schedule.groups[schedule.scratch_group_of[i]].size if i in schedule.scratch_group_of else 0
            out += ["    " + line for line in call_lines(layer.call, ptr, _context_name(schedule, i), scratch, i)]
        out.append(f"    EREID_HOOK({i}, 1);")
        if i not in schedule.aliased_layers:
            out.append(f"    if (status != EREID_OK) {{\n        return {i + 1};\n    }}")
    out += ["    (void)status;", "    return 0;", "}", ""]
    out += layer_output_table(graph, layers, schedule)
    return "\n".join(out)


# ---- patch-based stage (edgereid.firmware.patches): the leading layers stripe by stripe ----

def _patch_split(schedule: Schedule, index: int):
    """The PatchSplit whose stage holds layer `index`, or None."""
    return next((sp for sp in schedule.patches or () if sp.start <= index < sp.end), None)


def in_patch_stage(schedule: Schedule, index: int) -> bool:
    return _patch_split(schedule, index) is not None


def _patch_context(split) -> str:
    return f"ereid_patch{split.start}_ctx"


def patch_stage_declarations(layers: list[Layer], schedule: Schedule, index: int) -> list[str]:
    """Layer `index`'s constant arrays; after the stage's last layer, the stripe calls'
    structs (each distinct one once) and the kernels' scratch context."""
    split = _patch_split(schedule, index)
    layer = layers[index]
    out = [f"/* op {index}: {layer.op.kind} (patch-based stage) */", *(_format_array(a) for a in layer.arrays)]
    if index == split.end - 1:
        seen: dict[str, None] = {}
        for sc in split.calls:
            for ref in sc.call.declarations():
                if ref.name not in seen:
                    seen[ref.name] = None
                    out.append(declare(ref))
        if any(isinstance(a, ScratchContext) for sc in split.calls for a in sc.call.args):
            base = schedule.groups[schedule.scratch_group_of[split.start]].offset + split.kernel_scratch_offset
            buf = Address("ereid_arena", base) if split.kernel_scratch_bytes else None
            out.append(declare(StructRef(_patch_context(split), Context(buf, split.kernel_scratch_bytes))))
    out.append("")
    return out


def patch_stage_lines(graph: Graph, layers: list[Layer], schedule: Schedule, index: int, ptr) -> list[str]:
    """The invoke body of stage layer `index`: the whole stage at its first layer (every
    stripe, each layer's call on its rows), only the hooks at the others."""
    split = _patch_split(schedule, index)
    out = [f"    /* op {index}: {layers[index].op.kind} */", f"    EREID_HOOK({index}, 0);"]
    if index == split.start:
        scratch_base = schedule.groups[schedule.scratch_group_of[split.start]].offset

        def where(place) -> str:
            kind, t, offset = place
            if kind == "buffer":  # the stripe buffer of inner tensor t, `offset` bytes in
                return f"(ereid_arena + {scratch_base + split.buffer_offset[t] + offset})"
            return f"({ptr(t)} + {offset})" if offset else ptr(t)

        out.append(f"    /* ops {split.start}..{split.end - 1} run on {split.patches} stripes of the output rows of "
                   f"op {split.end - 1} (edgereid.firmware.patches; layers.json \"patches\") */")
        for sc in split.calls:
            exprs = {t: where(place) for t, place in sc.places.items()}
            out += ["    " + line for line in call_lines(sc.call, exprs.__getitem__, _patch_context(split),
                                                          split.kernel_scratch_bytes, sc.layer)]
            out.append(f"    if (status != EREID_OK) {{\n        return {sc.layer + 1};\n    }}")
    out.append(f"    EREID_HOOK({index}, 1);")
    return out


# ---- per-layer dump table (edgereid diff; compiled only with -DEREID_LAYER_DUMP) ----------

def layer_output_table(graph: Graph, layers: list[Layer], schedule: Schedule) -> list[str]:
    """C lines of `ereid_model_layer_output(layer, k, input, output, &bytes)`: where output k
    of `layer` lives once the layer ran (arena, or the caller's buffers), NULL past the
    last. The HIL app's layer hook streams it before a later layer reuses the bytes."""
    ptr = _pointer(schedule, graph)
    out = ["#ifdef EREID_LAYER_DUMP",
           "const int8_t *ereid_model_layer_output(int layer, int k, const void *input, void *output, "
           "uint32_t *bytes);",
           "const int8_t *ereid_model_layer_output(int layer, int k, const void *input, void *output, "
           "uint32_t *bytes)",
           "{",
           "    (void)input;",
           "    (void)output;",
           "    *bytes = 0u;",
           "    switch (layer * 256 + k) {"]
    for i, layer in enumerate(layers):
        for k, t in enumerate(layer.writes[:256]):
            if schedule.location(t)[0] == PATCHED:  # a patch-based stage never holds it whole
                continue
            out += [f"    case {i * 256 + k}:",
                    f"        *bytes = {graph.tensors[t].nbytes}u;",
                    f"        return (const int8_t *){ptr(t)};"]
    out += ["    default:", "        return NULL;", "    }", "}", "#endif", ""]
    return out


def _dtype_macro(dtype: str) -> str:
    return {"int8": "EREID_DTYPE_INT8", "float32": "EREID_DTYPE_FLOAT32"}[dtype]


def io_names(graph: Graph, indices, role: str) -> list[str]:
    """C identifiers for the graph inputs or outputs: the tensor names from the model, lowercased,
    every other character '_', made unique (a clash or an empty name falls back to <role><k>)."""
    names: list[str] = []
    for k, t in enumerate(indices):
        base = re.sub(r"[^0-9a-z]+", "_", graph.tensors[t].name.lower()).strip("_")
        if not base or base[0].isdigit():
            base = f"{role}{k}" + (f"_{base}" if base else "")
        name = base
        if name in names:
            name = f"{base}_{role}{k}"
        names.append(name)
    return names


def io_api(graph: Graph) -> list[str]:
    """model.h's per-input and per-output description and accessors (several inputs and outputs
    are packed into one buffer each, at the offsets of planner.packed_input_offsets)."""
    out = []
    for role, indices in (("input", graph.inputs), ("output", graph.outputs)):
        offsets, _ = packed_input_offsets([graph.tensors[t].nbytes for t in indices])
        for k, (t, name, off) in enumerate(zip(indices, io_names(graph, indices, role), offsets)):
            tensor = graph.tensors[t]
            macro = f"EREID_MODEL_{role.upper()}_{name.upper()}"
            ctype = "float" if tensor.dtype == "float32" else "int8_t"
            out += [f"/* {role} {k}: tensor {t} '{tensor.name}', {tensor.dtype} {list(tensor.shape)} */",
                    f"#define {macro}_INDEX {k}",
                    f"#define {macro}_OFFSET {off}",
                    f"#define {macro}_BYTES {tensor.nbytes}",
                    f"#define {macro}_DTYPE {_dtype_macro(tensor.dtype)}"]
            if tensor.scales:
                out += [f"#define {macro}_SCALE {float(np.float32(tensor.scale)):.9g}f",
                        f"#define {macro}_ZERO_POINT {tensor.zero_point}"]
            out += [f"static inline {ctype} *ereid_model_{role}_{name}(void *{role}_buffer)",
                    f"{{\n    return ({ctype} *)(void *)((uint8_t *){role}_buffer + {off});\n}}", ""]
    return out


def model_h(graph: Graph, layers: list[Layer], schedule: Schedule) -> str:
    x, y = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    offsets, input_bytes = packed_input_offsets([graph.tensors[t].nbytes for t in graph.inputs])
    out_offsets, output_bytes = packed_input_offsets([graph.tensors[t].nbytes for t in graph.outputs])
    packing = ([f"/* {len(offsets)} inputs packed into one buffer, starting at bytes {', '.join(map(str, offsets))}; "
                "INPUT_DTYPE/SCALE/ZERO_POINT describe the first. */"] if len(offsets) > 1 else [])
    if len(out_offsets) > 1:
        packing.append(f"/* {len(out_offsets)} outputs packed into one buffer, starting at bytes "
                       f"{', '.join(map(str, out_offsets))}; OUTPUT_DTYPE/SCALE/ZERO_POINT describe the first. */")
    return "\n".join([
        "/* Generated by edgereid build-firmware. Do not edit. */",
        "#ifndef EREID_MODEL_H", "#define EREID_MODEL_H", "", "#include <stdint.h>", "",
        "#define EREID_DTYPE_INT8 1", "#define EREID_DTYPE_FLOAT32 2", "", *packing,
        f"#define EREID_MODEL_NUM_INPUTS {len(offsets)}",
        f"#define EREID_MODEL_NUM_OUTPUTS {len(out_offsets)}",
        f"#define EREID_MODEL_INPUT_BYTES {input_bytes}",
        f"#define EREID_MODEL_OUTPUT_BYTES {output_bytes}",
        f"#define EREID_MODEL_NUM_LAYERS {len(layers)}",
        f"#define EREID_MODEL_ARENA_BYTES {schedule.arena_bytes}",
        f"#define EREID_MODEL_INPUT_DTYPE {_dtype_macro(x.dtype)}",
        f"#define EREID_MODEL_OUTPUT_DTYPE {_dtype_macro(y.dtype)}",
        f"#define EREID_MODEL_INPUT_SCALE {float(np.float32(x.scale)):.9g}f",
        f"#define EREID_MODEL_INPUT_ZERO_POINT {x.zero_point}",
        f"#define EREID_MODEL_OUTPUT_SCALE {float(np.float32(y.scale)):.9g}f",
        f"#define EREID_MODEL_OUTPUT_ZERO_POINT {y.zero_point}", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        "/* Each input and output by its name in the model: where it sits in the packed buffer. */",
        *io_api(graph),
        "/* Runs the model: 0 = ok, -1 = null pointer, k > 0 = layer k-1 failed. */",
        "int ereid_model_invoke(const void *input, void *output);", "",
        "/* Called before (after = 0) and after (after = 1) each layer when EREID_LAYER_HOOK is defined. */",
        "void ereid_layer_hook(int layer, int after);", "",
        "/* Op name of each layer, for per-layer reports. */",
        f"extern const char *const ereid_model_layer_names[{max(1, len(layers))}];", "",
        "#ifdef __cplusplus", "}", "#endif", "", "#endif", ""])


MAIN_C = r"""/* Default app (generated): `firmware in.bin out.bin` runs the model once.
 * On a Cortex-M target without a file system it runs once on a zero input and
 * returns the status (no stdio, so the image size is the model's). */
#include <stdint.h>
#include "model.h"

static uint8_t input_buf[EREID_MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t output_buf[EREID_MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));

#ifdef EREID_LAYER_HOOK
static int hook_calls;
void ereid_layer_hook(int layer, int after)
{
    (void)layer;
    (void)after;
    hook_calls++;
}
#endif

#if defined(__arm__) && !defined(EREID_HOSTED)
int main(void)
{
    return ereid_model_invoke(input_buf, output_buf);
}
#else
#include <stdio.h>

int main(int argc, char **argv)
{
    FILE *f;
    int rc;
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin (input %d bytes)\n", argv[0], EREID_MODEL_INPUT_BYTES);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\n", argv[1]);
        return 2;
    }
    if (fread(input_buf, 1, sizeof input_buf, f) != sizeof input_buf || fgetc(f) != EOF) {
        fprintf(stderr, "error: %s must hold exactly %d bytes\n", argv[1], EREID_MODEL_INPUT_BYTES);
        fclose(f);
        return 2;
    }
    fclose(f);
    rc = ereid_model_invoke(input_buf, output_buf);
    if (rc != 0) {
        fprintf(stderr, "error: ereid_model_invoke returned %d\n", rc);
        return 1;
    }
#ifdef EREID_LAYER_HOOK
    fprintf(stderr, "layer hook calls: %d\n", hook_calls);
#endif
    f = fopen(argv[2], "wb");
    if (f == NULL || fwrite(output_buf, 1, sizeof output_buf, f) != sizeof output_buf) {
        fprintf(stderr, "error: cannot write %s\n", argv[2]);
        return 2;
    }
    return fclose(f) == 0 ? 0 : 2;
}
#endif
"""


def project_defines(hil: bool, dsp: bool) -> list[str]:
    """Macros baked into the generated Makefile's DEFINES (toolchain.defines, as -D flags)."""
    return [f"-D{m}" for m in tc.defines(hil, dsp)]


def _make_literal(text: str) -> str:
    """Board-supplied text as a literal make value: `$` doubled, so no expansion can run.

    Board files are validated on load (edgereid.boards.trust); this is the second line."""
    return text.replace("$", "$$")


def makefile(board: BoardSpec, model_srcs: list[str], app_srcs: list[str], startup_srcs: list[str],
             include_dirs: list[str], defines: list[str] = ()) -> str:
    """The project's Makefile: the toolchain description (toolchain.Toolchain) as make variables."""
    chain = tc.Toolchain.of(board)
    cortex_m = chain.bare_metal
    board_var = ["$(BOARD_CFLAGS)"]
    ldflags = " ".join([*chain.ldflags("$(LDSCRIPT)", board=board_var), "$(EXTRA_LDFLAGS)"])
    cflags = chain.cflags(include_dirs, extra=["$(DEFINES)", "$(EXTRA_CFLAGS)"], board=board_var)
    return "\n".join([
        f"# Generated by edgereid build-firmware for board {board.name}. Variables: docs/architecture.md.",
        f"CC = {_make_literal(chain.cc)}",
        f"SIZE = {_make_literal(chain.size_tool)}",
        f"BOARD_CFLAGS = {_make_literal(' '.join(chain.board_cflags))}",
        f"DEFINES = {' '.join(defines)}".rstrip(" "),
        "EXTRA_CFLAGS =",
        "EXTRA_LDFLAGS =",
        f"CFLAGS = {' '.join(cflags)}",
        f"LDSCRIPT = {'board/link.ld' if cortex_m else ''}",
        f"LDFLAGS = {ldflags}",
        f"LDLIBS = {' '.join(tc.LDLIBS)}",
        f"MODEL_SRCS = {' '.join(model_srcs)}",
        f"APP_SRCS = {' '.join(app_srcs)}",
        f"STARTUP_SRCS = {' '.join(startup_srcs)}",
        f"TARGET = {chain.target}",
        "OBJS = $(patsubst %.c,build/%.o,$(MODEL_SRCS) $(APP_SRCS) $(STARTUP_SRCS))",
        "HEADERS = $(wildcard *.h include/*.h kernels/*/*.h board/*.h runtime/*.h hil/*.h)",
        "",
        "all: $(TARGET)",
        "",
        "$(TARGET): $(OBJS) $(LDSCRIPT)",
        "\t$(CC) $(CFLAGS) $(OBJS) $(LDFLAGS) -o $@ $(LDLIBS)",
        "",
        "build/%.o: %.c $(HEADERS) Makefile",
        "\t@mkdir -p $(dir $@)",
        "\t$(CC) $(CFLAGS) -c $< -o $@",
        "",
        "size: $(TARGET)",
        "\t$(SIZE) $(TARGET)",
        "",
        "clean:",
        "\trm -rf build $(TARGET)",
        "",
        ".PHONY: all size clean",
        ""])


# ---- the whole project ---------------------------------------------------------------

def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _scratch_report(schedule: Schedule, index: int) -> dict | None:
    if index not in schedule.scratch_group_of:
        return None
    g = schedule.groups[schedule.scratch_group_of[index]]
    return {"offset": g.offset, "bytes": g.size}


def layers_report(graph: Graph, layers: list[Layer], schedule: Schedule) -> dict:
    return {
        "arena_bytes": schedule.arena_bytes,
        "sum_activation_bytes": schedule.sum_activation_bytes,
        **({"patches": [sp.report(schedule.arena_bytes) for sp in schedule.patches]} if schedule.patches else {}),
        "lower_bound_bytes": schedule.lower_bound_bytes,
        "weight_bytes": sum(l.weight_bytes for l in layers),
        "macs": sum(l.macs for l in layers),
        "inputs": [{"tensor": t, "offset": schedule.location(t)[1], "bytes": graph.tensors[t].nbytes}
                   for t in graph.inputs],
        "layers": [{"index": r.index, "op": r.kind, "macs": r.macs, "weight_bytes": r.weight_bytes,
                    "live_arena_bytes": r.live_bytes, "io_bytes": r.io_bytes,
                    "aliased": r.index in schedule.aliased_layers,
                    "kernel": None if r.index in schedule.aliased_layers else layers[r.index].kernel,
                    "scratch": _scratch_report(schedule, r.index),
                    "outputs": [{"tensor": t, "place": schedule.location(t)[0],
                                 "offset": schedule.location(t)[1], "bytes": graph.tensors[t].nbytes}
                                for t in layers[r.index].writes]}
                   for r in schedule.layers],
    }


def _kernel_rel(path: Path, kernels_dir: Path) -> Path:
    """Where a kernel source goes under the project's kernels/ (extension kernels: kernels/ext/)."""
    try:
        return path.relative_to(kernels_dir)
    except ValueError:
        return Path("ext") / path.name


def write_project(graph: Graph, layers: list[Layer], schedule: Schedule, board: BoardSpec, out_dir: Path,
                  model_bytes: bytes, model_name: str, hil: bool = False, dsp: bool = True) -> None:
    """Fill the (empty) folder `out_dir` with the C project."""
    out_dir = Path(out_dir)
    fw = firmware_dir()
    digest = hashlib.sha256(model_bytes).hexdigest()
    coded = [l for i, l in enumerate(layers) if i not in schedule.aliased_layers and l.call is not None]
    functions = {f for l in coded for f in l.functions}
    extra = sorted({Path(p) for l in coded for p in l.call.sources})
    kernels_dir = fw / "kernels"
    sources = kernel_sources(functions, kernels_dir, extra) if functions else []
    model_srcs = ["model.c"] + [f"kernels/{_kernel_rel(p, kernels_dir).as_posix()}" for p in sources]
    for p in sources:
        _copy(p, out_dir / "kernels" / _kernel_rel(p, kernels_dir))
    for h in sorted((fw / "include").glob("*.h")):
        _copy(h, out_dir / "include" / h.name)
    for h in sorted(kernels_dir.rglob("*.h")):
        _copy(h, out_dir / "kernels" / h.relative_to(kernels_dir))

    startup_srcs: list[str] = []
    runtime = fw / "runtime"
    if board.is_cortex_m:
        if board.ldscript is None or board.startup is None:
            raise FirmwareError(f"board {board.name}: a Cortex-M board needs toolchain.ldscript and toolchain.startup")
        for src, name in ((board.startup, "startup.c"), (board.ldscript, "link.ld")):
            if not src.is_file():
                raise FirmwareError(f"board {board.name}: {src} does not exist")
            _copy(src, out_dir / "board" / name)
        for h in sorted(board.startup.parent.glob("*.h")):
            _copy(h, out_dir / "board" / h.name)
        startup_srcs = ["board/startup.c"]
        for f in sorted(runtime.glob("*.[ch]")):
            _copy(f, out_dir / "runtime" / f.name)
    include_dirs = tc.include_dirs(tc.kernel_header_dirs(kernels_dir), board.is_cortex_m,
                                   (runtime / "ereid_startup.h").exists(), hil)
    app_srcs = ["main.c"]
    if hil:
        hil_files = sorted((fw / "hil").glob("*.[ch]"))
        if not any(f.suffix == ".c" for f in hil_files):
            raise FirmwareError(f"no HIL sources in {fw / 'hil'}")
        for f in hil_files:
            _copy(f, out_dir / "hil" / f.name)
        app_srcs = [f"hil/{f.name}" for f in hil_files if f.suffix == ".c"]
        if board.is_cortex_m:
            app_srcs += [f"runtime/{f.name}" for f in sorted(runtime.glob("*.c"))]
        else:  # hosted HIL build: the board layer on stdin/stdout (runtime/host)
            host_srcs = sorted((runtime / "host").glob("*.c"))
            if not host_srcs:
                raise FirmwareError(f"no host board layer in {runtime / 'host'}")
            for f in [runtime / "ereid_board.h", *host_srcs]:
                _copy(f, out_dir / "runtime" / f.relative_to(runtime))
            app_srcs += [f"runtime/{f.relative_to(runtime).as_posix()}" for f in host_srcs]
    (out_dir / "main.c").write_text(MAIN_C, encoding="utf-8")
    (out_dir / "model.h").write_text(model_h(graph, layers, schedule), encoding="utf-8")
    (out_dir / "model.c").write_text(model_c(graph, layers, schedule, model_name, digest), encoding="utf-8")
    (out_dir / "Makefile").write_text(makefile(board, model_srcs, app_srcs, startup_srcs, include_dirs,
                                               project_defines(hil, dsp)), encoding="utf-8")
    (out_dir / "layers.json").write_text(json.dumps(layers_report(graph, layers, schedule), indent=1) + "\n",
                                         encoding="utf-8")
