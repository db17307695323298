"""The C kernel library in firmware/: warning-free builds, self-consistency under
sanitizers (portable and emulated-DSP paths), and byte equality with LiteRT's
reference kernels (BUILTIN_REF) on randomised single-op models."""
from __future__ import annotations

import ctypes as C
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_harness as fh  # noqa: E402

ROOT = fh.ROOT
INCLUDES, STRICT, SANITIZE, ARM_TARGETS = fh.INCLUDES, fh.STRICT, fh.SANITIZE, fh.ARM_TARGETS
_need, _run = fh.need_tool, fh.run_checked


# ---- builds ------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["portable", "emulated_dsp"])
def test_host_sanitized_self_consistency(tmp_path, variant):
    """Random shapes/quant: generic == naive, specialised == generic, under ASan+UBSan."""
    _need("gcc")
    exe = tmp_path / f"test_kernels_{variant}"
    defines = ["-DEREID_EMULATE_DSP"] if variant == "emulated_dsp" else []
    _run(["gcc", *STRICT, *SANITIZE, *defines, *INCLUDES, *fh.kernel_sources(),
          ROOT / "tests" / "c" / "test_kernels.c", "-o", exe, "-lm"])
    res = _run([exe, "400", "777"], timeout=120)
    assert "failures 0" in res.stdout, res.stdout


def test_dsp_emulation_matches_portable_bytes(tmp_path):
    """Both host builds hash every kernel output; the hashes must agree."""
    _need("gcc")
    hashes = []
    for defines in ([], ["-DEREID_EMULATE_DSP"]):
        exe = tmp_path / f"tk{len(hashes)}"
        _run(["gcc", *STRICT, "-O2", *defines, *INCLUDES, *fh.kernel_sources(),
              ROOT / "tests" / "c" / "test_kernels.c", "-o", exe, "-lm"])
        out = _run([exe, "300", "4242"], timeout=120).stdout
        hashes.append(re.search(r"hash ([0-9a-f]+)", out).group(1))
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize("target", sorted(ARM_TARGETS))
def test_arm_cross_compile_clean(tmp_path, target):
    _need("arm-none-eabi-gcc")
    objs = []
    for src in fh.kernel_sources():
        obj = tmp_path / (src.stem + ".o")
        _run(["arm-none-eabi-gcc", *STRICT, "-O2", *ARM_TARGETS[target], *INCLUDES, "-c", src, "-o", obj])
        objs.append(obj)
    if target in ("cortex-m4", "cortex-m7"):
        # The DSP path must really be compiled in where the core has it.
        _need("arm-none-eabi-objdump")
        dis = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_convolve_s8.o"]).stdout
        assert "smlad" in dis and "sxtb16" in dis
    if target == "cortex-m3":
        dis = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_convolve_s8.o"]).stdout
        assert "smlad" not in dis


# ---- exactness against LiteRT BUILTIN_REF -------------------------------------

def random_single_op_spec(seed: int) -> dict:
    """A random single-op int8 model spec (shapes, options, quantization)."""
    rng = np.random.default_rng(seed)
    kinds = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "MEAN", "PAD", "CONCATENATION", "SOFTMAX", "RESIZE_NEAREST_NEIGHBOR",
             "L2_NORMALIZATION", "RESHAPE"]
    kind = kinds[seed % len(kinds)]

    def ri(lo, hi):
        return int(rng.integers(lo, hi + 1))

    def inp(name, shape):
        return {"name": name, "shape": shape, "scale": float(rng.uniform(0.005, 0.2)),
                "zero_point": ri(-60, 60)}

    act = ["NONE", "RELU", "RELU6"][ri(0, 2)]
    shape = [ri(1, 2), ri(1, 10), ri(1, 10), ri(1, 13)]
    op: dict = {"op": kind}
    inputs = [inp("x", shape)]
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        k = [1, 3, 5][ri(0, 2)]
        op.update(kernel=[k, k if ri(0, 3) else [1, 3, 5][ri(0, 2)]], stride=[ri(1, 2), ri(1, 2)],
                  padding=["SAME", "VALID"][ri(0, 1)], activation=act)
        if ri(0, 3) == 0:
            op["dilation"] = [2, 2]
            op["stride"] = [1, 1]  # TFLite allows both, keep shapes small
        if kind == "CONV_2D":
            op["filters"] = ri(1, 17)
        else:
            op["depth_multiplier"] = ri(1, 3)
        eff = [(op["kernel"][i] - 1) * op.get("dilation", [1, 1])[i] + 1 for i in range(2)]
        inputs[0]["shape"][1] = max(inputs[0]["shape"][1], eff[0])
        inputs[0]["shape"][2] = max(inputs[0]["shape"][2], eff[1])
    elif kind == "FULLY_CONNECTED":
        inputs = [inp("x", [ri(1, 3), ri(1, 80)])]
        op.update(units=ri(1, 20), activation=act, per_channel=bool(ri(0, 1)))
    elif kind in ("ADD", "MUL"):
        other = list(shape)
        if ri(0, 2) == 0:
            other = [1, 1, 1, shape[3]] if ri(0, 1) else [shape[0], shape[1], shape[2], 1]
        inputs = [inp("x", shape), inp("y", other)]
        op.update(inputs=["x", "y"], activation=act)
    elif kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        k = ri(1, 3)
        op.update(kernel=[k, ri(1, 3)], stride=[ri(1, 2), ri(1, 2)], padding=["SAME", "VALID"][ri(0, 1)],
                  activation=act)
        inputs[0]["shape"][1] = max(shape[1], op["kernel"][0])
        inputs[0]["shape"][2] = max(shape[2], op["kernel"][1])
    elif kind == "MEAN":
        axes = [[1, 2], [1, 2], [2, 1], [1], [3], [2], [1, 2, 3]][ri(0, 6)]
        op.update(axis=axes, keep_dims=bool(ri(0, 3)), same_quant=bool(ri(0, 2) == 0))
    elif kind == "PAD":
        op["paddings"] = [[0, 0], [ri(0, 2), ri(0, 2)], [ri(0, 2), ri(0, 2)], [ri(0, 1), ri(0, 1)]]
        if ri(0, 1):
            op["constant"] = ri(-128, 127)
    elif kind == "CONCATENATION":
        axis = ri(0, 3)
        n = ri(2, 3)
        shapes = []
        for _ in range(n):
            s = list(shape)
            s[axis] = ri(1, 4)
            shapes.append(s)
        q = inp("x", shapes[0])
        inputs = [dict(q, name=f"x{i}", shape=s) for i, s in enumerate(shapes)]
        op.update(inputs=[f"x{i}" for i in range(n)], axis=axis if ri(0, 1) else axis - 4)
    elif kind == "SOFTMAX":
        inputs = [inp("x", [ri(1, 3), ri(1, 40)])]
        op["beta"] = float(rng.choice([1.0, 0.5, 2.0, float(rng.uniform(0.1, 3.0))]))
    elif kind == "RESIZE_NEAREST_NEIGHBOR":
        align = bool(ri(0, 1))
        op.update(size=[ri(1, 16), ri(1, 16)], align_corners=align, half_pixel_centers=(not align) and bool(ri(0, 1)))
    elif kind == "L2_NORMALIZATION":
        inputs = [inp("x", [ri(1, 3), ri(1, 64)])]
    elif kind == "RESHAPE":
        op["shape"] = [shape[0], -1]
    return {"name": f"random_{seed}_{kind.lower()}", "seed": seed, "inputs": inputs, "ops": [op]}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    _need("gcc")
    pytest.importorskip("ai_edge_litert")
    return fh.KernelRunner(fh.build_shared(tmp_path_factory.mktemp("ereid_lib")))


def _run_litert(model: bytes, inputs):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    for det, arr in zip(it.get_input_details(), inputs):
        it.set_tensor(det["index"], arr)
    it.invoke()
    return it, it.get_tensor(it.get_output_details()[0]["index"])


N_RANDOM_CASES = 70  # 5 per op kind


@pytest.mark.parametrize("seed", range(N_RANDOM_CASES))
def test_kernel_equals_litert_reference(runner, seed):
    from edgereid.tflite.builder import build_model
    spec = random_single_op_spec(seed)
    model = build_model(spec)
    rng = np.random.default_rng(1000 + seed)
    inputs = [rng.integers(-128, 128, size=i["shape"]).astype(np.int8) for i in spec["inputs"]]
    it, expected = _run_litert(model, inputs)
    got = runner.run(spec, it, inputs).reshape(expected.shape)
    diff = np.flatnonzero(got != expected)
    assert diff.size == 0, (f"{spec['name']}: {diff.size}/{expected.size} bytes differ, e.g. at {diff[0]}: "
                            f"kernel {got.ravel()[diff[0]]} vs LiteRT {expected.ravel()[diff[0]]}; spec {spec}")


@pytest.mark.parametrize("seed", range(4))
def test_quantize_dequantize_equal_litert(runner, seed):
    from edgereid.tflite.builder import build_model
    rng = np.random.default_rng(seed)
    scale, zp = float(np.float32(rng.uniform(0.01, 0.3))), int(rng.integers(-30, 30))
    shape = [1, 3, 5, 7]
    spec = {"seed": seed, "inputs": [{"name": "x", "shape": shape, "dtype": "float32", "scale": scale,
                                      "zero_point": zp}],
            "ops": [{"op": "RESHAPE", "shape": [1, -1]}], "float_output": True}
    x = (rng.normal(size=shape) * 30 * scale).astype(np.float32)
    # exact ties (k + 0.5) * scale are where rounding rules differ; include some
    x.ravel()[:10] = (np.arange(-5, 5) + 0.5).astype(np.float32) * np.float32(scale)
    _, expected = _run_litert(build_model(spec), [x])
    q = runner.quantize(x, scale, zp)
    got = runner.dequantize(q, scale, zp).reshape(expected.shape)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


# ---- the committed-by-generator corpus ------------------------------------------

def _corpus_specs():
    sys.path.insert(0, str(ROOT / "tools"))
    from gen_tflite_corpus import corpus_specs
    return corpus_specs()


def test_corpus_is_deterministic_and_runs_in_litert(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_tflite_corpus
    assert gen_tflite_corpus.main(["--out", str(tmp_path / "a"), "--seed", "3"]) == 0
    assert gen_tflite_corpus.main(["--out", str(tmp_path / "b"), "--seed", "3"]) == 0
    models = sorted((tmp_path / "a").glob("*.tflite"))
    # corpus.json lists every model the script writes (spec models, int4 twins, tools/corpus_coverage.py)
    import json
    assert len(models) == len(json.loads((tmp_path / "a" / "corpus.json").read_text()))
    assert len(models) >= len(_corpus_specs())
    for m in models:
        assert m.read_bytes() == (tmp_path / "b" / m.name).read_bytes(), m.name
        it = Interpreter(model_path=str(m), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.ones(d["shape"], d["dtype"]))
        it.invoke()


def test_corpus_single_op_models_equal_litert(runner):
    """Every single-op, int8-in/int8-out corpus model, byte for byte."""
    from edgereid.tflite.builder import build_model
    checked = 0
    for i, (name, spec) in enumerate(_corpus_specs().items()):
        if len(spec["ops"]) != 1 or spec.get("float_output") or any(
                x.get("dtype", "int8") != "int8" for x in spec["inputs"]):
            continue
        spec = dict(spec, seed=i)
        rng = np.random.default_rng(i)
        inputs = [rng.integers(-128, 128, size=x["shape"]).astype(np.int8) for x in spec["inputs"]]
        it, expected = _run_litert(build_model(spec), inputs)
        got = runner.run(spec, it, inputs).reshape(expected.shape)
        assert np.array_equal(got, expected), name
        checked += 1
    assert checked >= 70


# ---- the one description of ereid_nn_types.h (edgereid/firmware/kernel_abi.py) ------------

def _abi():
    from edgereid.firmware import kernel_abi
    return kernel_abi


def _c_type_names(abi) -> list[str]:
    return sorted({*abi.SCALAR_CTYPES, *abi.POINTER_CTYPES, *abi.STRUCTS})


def test_struct_description_matches_the_header(tmp_path):
    """Compile the header and print, per struct of the description, its size and per field the
    offset, size and C type (_Generic); they must equal the ctypes layout built from the
    description, and the header must hold no struct or enum constant the description lacks."""
    _need("gcc")
    abi = _abi()
    header = (ROOT / "firmware" / "include" / "ereid_nn_types.h").read_text()
    declared = re.findall(r"typedef struct\s*\{[^}]*\}\s*(\w+)\s*;", header)
    assert declared == list(abi.STRUCTS), "struct typedefs of ereid_nn_types.h vs kernel_abi.STRUCTS (same order)"
    enum_bodies = re.findall(r"typedef enum\s*\{([^}]*)\}\s*(\w+)\s*;", header)
    assert {name: re.findall(r"\b(EREID_\w+)\s*=", body) for body, name in enum_bodies} == \
        {name: list(values) for name, values in abi.ENUMS.items()}
    generic = ", ".join(f"{t}: \"{t}\"" for t in _c_type_names(abi))
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "ereid_nn_types.h"',
             f"#define TYPE_NAME(x) _Generic((x), {generic}, default: \"?\")", "int main(void) {"]
    for name, cls in abi.STRUCTS.items():
        lines.append(f'    printf("S {name} %zu\\n", sizeof({name}));')
        for f in abi.struct_fields(cls):
            member = f"(({name} *)0)->{f.name}"
            lines.append(f'    printf("F {name} {f.name} %zu %zu %s\\n", offsetof({name}, {f.name}), '
                         f"sizeof({member}), TYPE_NAME({member}));")
    for values in abi.ENUMS.values():
        for const in values:
            lines.append(f'    printf("E {const} %d\\n", (int){const});')
    lines += ["    return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    _run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'firmware' / 'include'}", src, "-o", exe])
    got = _run([exe]).stdout.split("\n")
    want = []
    for name, cls in abi.STRUCTS.items():
        layout = abi.ctypes_struct(cls)
        want.append(f"S {name} {C.sizeof(layout)}")
        for f in abi.struct_fields(cls):
            desc = getattr(layout, f.name)
            want.append(f"F {name} {f.name} {desc.offset} {desc.size} {f.c_type}")
    for values in abi.ENUMS.values():
        want += [f"E {const} {value}" for const, value in values.items()]
    assert got[:-1] == want


def test_emitted_initialisers_equal_the_ctypes_bytes(tmp_path):
    """One value per struct (distinct numbers in every field): the C99 designated initialiser
    the emitter prints, compiled, has the bytes of the ctypes image of the same value."""
    _need("gcc")
    abi = _abi()
    counter = iter(range(1, 10_000))

    def sample(cls):
        kwargs = {}
        for f in abi.struct_fields(cls):
            if f.struct is not None:
                kwargs[f.name] = sample(f.struct)
            elif f.c_type in abi.POINTER_CTYPES:
                kwargs[f.name] = None
            elif f.c_type == "int32_t":
                n = next(counter)
                kwargs[f.name] = n * 7919 * (-1) ** n
            else:
                kwargs[f.name] = next(counter) / 3
        return cls(**kwargs)

    values = {name: sample(cls) for name, cls in abi.STRUCTS.items()}
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "ereid_nn_types.h"']
    lines += [abi.c_declaration(f"v_{name}", v) for name, v in values.items()]
    lines += ["static void dump(const char *name, const void *p, size_t n) {",
              "    const unsigned char *b = (const unsigned char *)p; size_t i;",
              '    printf("%s ", name); for (i = 0; i < n; i++) printf("%02x", b[i]); printf("\\n");', "}",
              "int main(void) {"]
    lines += [f'    dump("{name}", &v_{name}, sizeof v_{name});' for name in values]
    lines += ["    return 0;", "}"]
    src = tmp_path / "values.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "values"
    _run(["gcc", *STRICT, "-Wmissing-field-initializers", f"-I{ROOT / 'firmware' / 'include'}", src, "-o", exe])
    got = dict(line.split() for line in _run([exe]).stdout.splitlines())
    assert got == {name: bytes(abi.to_ctypes(v)).hex() for name, v in values.items()}


def test_wrapper_dispatch_and_buffer_size_mirror_the_c(runner):
    """For random conv / depthwise shapes: the specialised kernel the Python mirror says the
    wrapper picks accepts the arguments and gives the wrapper's bytes, and the Python
    get_buffer_size equals the C one."""
    from edgereid.firmware import kernel_registry as kr
    abi = _abi()
    lib = runner.lib
    rng = np.random.default_rng(5)
    picked = set()
    for case in range(60):
        depthwise = case % 2 == 1
        kh, kw = [(1, 1), (3, 3), (3, 1), (5, 5)][int(rng.integers(4))]
        sh, sw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        dil = 1 if rng.integers(3) else 2
        ph, pw = (0, 0) if rng.integers(2) else (kh // 2 * dil, kw // 2 * dil)
        eh, ew = dil * (kh - 1) + 1, dil * (kw - 1) + 1
        ih, iw, ic = int(rng.integers(eh, eh + 6)), int(rng.integers(ew, ew + 6)), int(rng.integers(1, 5))
        oh, ow = (ih + 2 * ph - dil * (kh - 1) - 1) // sh + 1, (iw + 2 * pw - dil * (kw - 1) - 1) // sw + 1
        mult = int(rng.integers(1, 3)) if depthwise else 1
        oc = ic * mult if depthwise else int(rng.integers(1, 6))
        tiles = dict(stride=abi.Tile(sh, sw), padding=abi.Tile(ph, pw), dilation=abi.Tile(dil, dil),
                     activation=abi.Activation(-128, 127))
        params = abi.DwConvParams(3, -2, mult, **tiles) if depthwise else abi.ConvParams(3, -2, **tiles)
        in_d, f_d, out_d = abi.Dims(1, ih, iw, ic), abi.Dims(1 if depthwise else oc, kh, kw, ic * mult if depthwise else ic), \
            abi.Dims(1, oh, ow, oc)
        wrapper = kr.DEPTHWISE_CONV_WRAPPER_S8 if depthwise else kr.CONVOLVE_WRAPPER_S8
        variant = wrapper.pick(params, in_d, f_d, out_d)
        picked.add(variant.kernel)
        x = rng.integers(-128, 128, (ih, iw, ic)).astype(np.int8)
        w = rng.integers(-127, 128, (f_d.n, kh, kw, f_d.c)).astype(np.int8)
        bias = rng.integers(-5000, 5000, oc).astype(np.int32)
        mults, shifts = fh._i32([1 << 30] * oc), fh._i32([-6] * oc)
        q = fh.PerChannelQuant(mults, shifts)
        c_params = abi.to_ctypes(params)
        args = [C.byref(c_params), C.byref(q), C.byref(abi.to_ctypes(in_d)), fh._ptr8(x), C.byref(abi.to_ctypes(f_d)),
                fh._ptr8(w), fh._ptr32(bias), C.byref(abi.to_ctypes(out_d))]
        outs = []
        for fn in (wrapper.name, variant.kernel):
            out = np.zeros((oh, ow, oc), np.int8)
            assert getattr(lib, fn)(C.byref(fh.Context(None, 0)), *args, fh._ptr8(out)) == 0, (fn, params, in_d, f_d)
            outs.append(out)
        assert np.array_equal(outs[0], outs[1]), (variant.kernel, params)
        if wrapper.buffer_size_function:
            size_fn = getattr(lib, wrapper.buffer_size_function)
            c_size = size_fn(C.byref(c_params), C.byref(abi.to_ctypes(in_d)), C.byref(abi.to_ctypes(f_d)),
                             C.byref(abi.to_ctypes(out_d)))
            assert c_size == wrapper.get_buffer_size(params, in_d, f_d, out_d)
    assert len(picked) >= 4, picked   # both wrappers' specialised paths and fallbacks were exercised
