"""Binary (1-bit) layers in Larq Compute Engine's format on the firmware: LceQuantize,
LceBconv2d, LceBMaxPool2d and LceDequantize models written with edgereid.tflite's
ModelBuilder, built for the host under ASan/UBSan and compared byte for byte with LCE's
interpreter (reference bconv kernel; float outputs by bit pattern, -0.0 == +0.0); the
wrapper's dispatch against its Python mirror; one clear error per unsupported option or
inconsistent bitpacked shape; and (target tier) the Cortex-M4 (asm), portable and
Cortex-M55 (Helium) paths in QEMU against the same oracle."""
from __future__ import annotations

import ctypes as C
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import FirmwareError
from edgereid.firmware import kernel_abi as abi
from edgereid.firmware import kernel_registry as kr
from edgereid.tflite.builder import ModelBuilder, out_size
from edgereid.tflite.ir import pack_bits
from edgereid.tflite.reference import LceRunner, lce_available, reference_runner, seeded_inputs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

needs_lce = pytest.mark.skipif(not lce_available(), reason="Larq Compute Engine runtime not installed (tools/setup.sh)")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc / make not installed")
_MISSING_ARM = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc", "make") if shutil.which(t) is None]
needs_cortex_m = pytest.mark.skipif(bool(_MISSING_ARM), reason=f"{', '.join(_MISSING_ARM)} not installed")

ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


# ---- models ------------------------------------------------------------------------------------

def _pair(v, default):
    if v is None:
        return tuple(default)
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def lce_model(spec: dict) -> bytes:
    """A model from a spec: {"seed", "input": {"shape", "dtype", "scale", "zero_point"}, "ops": [...]}.

    ops (each reads the previous output): quantize; bconv {filters, kernel, stride, dilation,
    padding, pad_values, activation, groups, output: float32 | int8 | bitpacked, scale,
    zero_point, mult, bias, threshold}; bmaxpool {kernel, stride, padding}; dequantize
    {output, scale, zero_point}; int8 builtins maxpool / avgpool {kernel, stride, padding}."""
    rng = np.random.default_rng(spec.get("seed", 0))
    b = ModelBuilder(spec.get("seed", 0))
    inp = spec["input"]
    dtype = inp.get("dtype", "float32")
    q = {"scale": inp.get("scale", 0.05), "zero_point": inp.get("zero_point", 0)} if dtype == "int8" else {}
    x = b.tensor("x", inp["shape"], dtype, **q)
    cur, channels = b.tensors[x.index], int(inp["shape"][-1])
    for k, op in enumerate(spec["ops"]):
        kind, name = op["op"], f"t{k}"
        shape = tuple(cur.shape)
        if kind == "quantize":
            y = b.tensor(name, shape[:-1] + ((channels + 31) // 32,), "int32")
            b.op("CUSTOM:LceQuantize", [cur.index], [y.index])
        elif kind == "dequantize":
            out = op.get("output", "float32")
            q = {"scale": op.get("scale", 0.25), "zero_point": op.get("zero_point", 3)} if out == "int8" else {}
            y = b.tensor(name, shape[:-1] + (channels,), out, **q)
            b.op("CUSTOM:LceDequantize", [cur.index], [y.index])
        elif kind == "bconv":
            n, h, w, _ = shape
            cin, cout, groups = channels, int(op["filters"]), int(op.get("groups", 1))
            kh, kw = _pair(op.get("kernel"), (3, 3))
            sh, sw = _pair(op.get("stride"), (1, 1))
            dh, dw = _pair(op.get("dilation"), (1, 1))
            padding = op.get("padding", "SAME")
            signs = np.where(rng.integers(0, 2, (cout, kh, kw, cin // groups)) == 1, -1.0, 1.0)
            if op.get("filter_signs") == "plus":     # every weight +1: the count is the input's -1s
                signs = np.ones_like(signs)
            f = b.tensor(f"{name}_filter", (cout, kh, kw, (cin // groups + 31) // 32), "int32", data=pack_bits(signs))
            oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, w, kw, sw, dw)
            depth = kh * kw * cin // groups
            out = op.get("output", "float32")
            if out == "bitpacked":
                thr = op.get("threshold", rng.integers(depth // 2 - depth // 6, depth // 2 + depth // 6 + 1, cout))
                t = b.tensor(f"{name}_threshold", (cout,), "int32", data=thr)
                inputs = [cur.index, f.index, -1, -1, t.index]
                y = b.tensor(name, (n, oh, ow, (cout + 31) // 32), "int32")
            else:
                mult = np.asarray(op.get("mult", rng.uniform(0.05, 1.0, cout) * rng.choice([-1.0, 1.0], cout)))
                bias = np.asarray(op.get("bias", rng.uniform(-3.0, 3.0, cout)))
                m = b.tensor(f"{name}_mult", (cout,), "float32", data=mult)
                c = b.tensor(f"{name}_bias", (cout,), "float32", data=bias)
                inputs = [cur.index, f.index, m.index, c.index, -1]
                q = {}
                if out == "int8":
                    q = {"scale": op.get("scale", float(np.mean(np.abs(mult))) * np.sqrt(depth) / 25),
                         "zero_point": op.get("zero_point", -5)}
                y = b.tensor(name, (n, oh, ow, cout), out, **q)
            b.op("CUSTOM:LceBconv2d", inputs, [y.index], {
                "channels_in": cin, "dilation_height_factor": dh, "dilation_width_factor": dw,
                "fused_activation_function": ACTIVATIONS[op.get("activation", "NONE")],
                "pad_values": int(op.get("pad_values", 1)), "padding": 0 if padding == "SAME" else 1,
                "stride_height": sh, "stride_width": sw})
            channels = cout
        elif kind == "conv":   # int8 CONV_2D, per-channel weights, SAME
            n, h, w, c = shape
            cout, (kh, kw) = int(op["filters"]), _pair(op.get("kernel"), (3, 3))
            w_scale = rng.uniform(0.005, 0.015, cout).astype(np.float32)
            wt = b.tensor(f"{name}_w", (cout, kh, kw, c), "int8", scale=w_scale, zero_point=np.zeros(cout, np.int64),
                          data=rng.integers(-127, 128, (cout, kh, kw, c)), quantized_dimension=0)
            bt = b.tensor(f"{name}_b", (cout,), "int32", scale=(np.float32(cur.scales[0]) * w_scale).astype(np.float32),
                          zero_point=np.zeros(cout, np.int64), data=rng.integers(-3000, 3000, cout))
            y = b.tensor(name, (n, h, w, cout), "int8", scale=float(cur.scales[0]) * 0.01 * np.sqrt(kh * kw * c) * 2,
                         zero_point=op.get("zero_point", -10))
            b.op("CONV_2D", [cur.index, wt.index, bt.index], [y.index], {
                "padding": "SAME", "stride_h": 1, "stride_w": 1, "dilation_h_factor": 1, "dilation_w_factor": 1,
                "fused_activation_function": op.get("activation", "NONE")}, version=3)
            channels = cout
        elif kind in ("bmaxpool", "maxpool", "avgpool"):
            n, h, w, c = shape
            kh, kw = _pair(op.get("kernel"), (2, 2))
            sh, sw = _pair(op.get("stride"), (2, 2))
            padding = op.get("padding", "VALID")
            out_shape = (n, out_size(padding, h, kh, sh), out_size(padding, w, kw, sw), c)
            if kind == "bmaxpool":
                y = b.tensor(name, out_shape, "int32")
                b.op("CUSTOM:LceBMaxPool2d", [cur.index], [y.index], {
                    "padding": 0 if padding == "SAME" else 1, "filter_height": kh, "filter_width": kw,
                    "stride_height": sh, "stride_width": sw})
            else:
                y = b.tensor(name, out_shape, "int8", scale=cur.scales[0], zero_point=cur.zero_points[0])
                b.op("MAX_POOL_2D" if kind == "maxpool" else "AVERAGE_POOL_2D", [cur.index], [y.index], {
                    "padding": padding, "stride_h": sh, "stride_w": sw, "filter_height": kh, "filter_width": kw,
                    "fused_activation_function": "NONE"})
        else:
            raise ValueError(f"unknown op {kind!r}")
        cur = b.tensors[y.index]
    return b.finish([x.index], [cur.index], description=f"edgereid binary test: {spec.get('name', 'model')}")


def _f(shape):
    return {"shape": list(shape), "dtype": "float32"}


# Every option of the four ops, each model small; together they take every kernel path the
# host build has (generic, 1x1, 3x3 one word and several words per pixel; pad 0 and 1
# borders; partial last words; bconv -> bconv in bitpacked form) and both int8 edges.
SPECS = {
    "quantize_dequantize_f32": {"input": _f([1, 3, 5, 70]), "ops": [{"op": "quantize"}, {"op": "dequantize"}]},
    "quantize_dequantize_s8": {"input": {"shape": [2, 4, 40], "dtype": "int8", "scale": 0.1, "zero_point": -3},
                               "ops": [{"op": "quantize"},
                                       {"op": "dequantize", "output": "int8", "scale": 0.3, "zero_point": 2}]},
    "bconv3x3_same1_f32": {"input": _f([1, 9, 7, 24]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 37, "padding": "SAME", "pad_values": 1}]},
    "bconv3x3_same0_s8_relu_s2": {"input": _f([1, 9, 8, 32]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 20, "padding": "SAME", "pad_values": 0, "stride": 2,
                             "activation": "RELU", "output": "int8"}]},
    "bconv3x3_valid_bitpacked_then_1x1": {"input": _f([1, 7, 6, 20]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 40, "padding": "VALID", "output": "bitpacked"},
        {"op": "bconv", "filters": 9, "kernel": 1, "padding": "VALID", "activation": "RELU6"}]},
    "bconv3x3_words3_same1_relu6": {"input": _f([1, 6, 5, 72]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 11, "padding": "SAME", "activation": "RELU6"}]},
    "bconv3x3_words2_same0_s8_relu_n1": {"input": _f([1, 6, 6, 64]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 13, "padding": "SAME", "pad_values": 0, "output": "int8",
                             "activation": "RELU_N1_TO_1", "scale": 0.05, "zero_point": 1}]},
    "bconv_groups_dilation": {"input": _f([1, 8, 7, 64]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 6, "groups": 2, "dilation": 2, "padding": "SAME"}]},
    "bconv5x3_stride21_valid_s8": {"input": _f([1, 11, 9, 33]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 7, "kernel": [5, 3], "stride": [2, 1], "padding": "VALID",
                             "output": "int8", "activation": "RELU"}]},
    "bconv5x5_same0_dil_bitpacked": {"input": _f([1, 9, 9, 18]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 33, "kernel": 5, "padding": "SAME", "pad_values": 1,
                             "dilation": [1, 2], "output": "bitpacked"}, {"op": "dequantize"}]},
    # thresholds outside [0, K] (every bit 1, every bit 0) among ordinary ones
    "bconv3x3_bitpacked_extreme_thresholds": {"input": _f([1, 6, 5, 24]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 36, "output": "bitpacked",
                             "threshold": [-2**31, -1, 0, 215, 216, 2**31 - 1, 10**6, -7] + [108] * 28},
        {"op": "dequantize", "output": "int8", "scale": 0.5, "zero_point": 1}]},
    "bconv1x1_stride2": {"input": _f([1, 9, 8, 50]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 5, "kernel": 1, "stride": 2, "padding": "SAME"}]},
    # runs longer than 30 words: the byte sums are flushed before they can overflow
    "bconv1x1_long_run": {"input": _f([1, 3, 2, 1100]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 5, "kernel": 1, "padding": "VALID"}]},
    "bconv3x3_words11_same1": {"input": _f([1, 4, 3, 352]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 4, "padding": "SAME", "output": "int8"}]},
    "bmaxpool_chain": {"input": _f([1, 12, 10, 30]), "ops": [
        {"op": "quantize"}, {"op": "bmaxpool", "kernel": 3, "stride": 2, "padding": "SAME"},
        {"op": "bconv", "filters": 35, "output": "bitpacked"}, {"op": "bmaxpool", "kernel": 2, "padding": "VALID"},
        {"op": "dequantize", "output": "int8", "scale": 0.04, "zero_point": -7}]},
    "mixed_int8": {"input": {"shape": [1, 10, 8, 24], "dtype": "int8", "scale": 0.05, "zero_point": 4}, "ops": [
        {"op": "maxpool", "kernel": 2, "stride": 1, "padding": "SAME"}, {"op": "quantize"},
        {"op": "bconv", "filters": 16, "output": "int8", "zero_point": 3}, {"op": "avgpool", "kernel": 2}]},
    # int8 convs before and after the binary ones (the reference runs them on BUILTIN_REF)
    "mixed_int8_convs": {"input": {"shape": [1, 9, 8, 8], "dtype": "int8", "scale": 0.05, "zero_point": -2}, "ops": [
        {"op": "conv", "filters": 24, "activation": "RELU"}, {"op": "quantize"},
        {"op": "bconv", "filters": 20, "output": "int8", "activation": "RELU", "zero_point": -128, "scale": 0.5},
        {"op": "conv", "filters": 6}, {"op": "quantize"}, {"op": "dequantize", "output": "int8", "scale": 0.5,
                                                              "zero_point": 0}]},
    # multipliers and biases near FLT_MIN: results below it are flushed to a zero of their sign
    "bconv_denormal_flush": {"seed": 3, "input": _f([1, 5, 5, 40]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 8, "padding": "VALID",
                             "mult": np.float32(2.0 ** -126) * np.array([1.0, 1.25, -1.5, 1.75, 1.0, -1.25, 1.5, 2.0]),
                             "bias": np.float32(2.0 ** -126) * np.array([301.5, 451.25, -540.5, 630.25, 0, 12.5,
                                                                         -3.0, 720.75])}]},
    # int8 outputs far outside [-128, 127] saturate
    "bconv_s8_saturates": {"input": _f([1, 5, 5, 12]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 6, "output": "int8", "scale": 1e-4, "zero_point": 0,
                             "mult": [1e3, -1e3, 2.0, -0.5, 1e-3, 30.0]}]},
}


def _same(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Element-wise equality: bit patterns for floats (-0.0 == +0.0), values otherwise."""
    if ref.dtype.kind == "f":
        return (got.view(np.uint32) == ref.view(np.uint32)) | ((got == 0) & (ref == 0))
    return got == ref


def _check_host(tmp_path: Path, name: str, spec: dict, n: int = 3, sanitize: bool = True):
    from edgereid.firmware import build_firmware
    from edgereid.firmware.bitexact import run_firmware

    model = tmp_path / f"{name}.tflite"
    model.write_bytes(lce_model({"name": name, **spec}))
    result = build_firmware(model, "host", tmp_path / "fw", sanitize=sanitize)
    with reference_runner(model) as runner:   # LCE's interpreter; by segments when builtin ops are mixed in
        for i, xs in enumerate(seeded_inputs(runner.inputs, n, seed=11)):
            ref = runner.run(xs)[0]
            got = run_firmware(result.executable, xs[0], ref, tmp_path)
            same = _same(got, ref)
            assert same.all(), f"{name} input {i}: {int((~same).sum())} of {ref.size} elements differ"
    return result


@needs_lce
@needs_gcc
@pytest.mark.parametrize("name", sorted(SPECS))
def test_host_build_bit_exact_under_sanitizers(tmp_path, name):
    result = _check_host(tmp_path, name, SPECS[name])
    kinds = {layer.op.kind for layer in result.layers}
    assert any(k.startswith("CUSTOM:Lce") for k in kinds)


@needs_lce
@needs_gcc
def test_wrapper_paths_and_packed_planning(tmp_path):
    """The wrapper's picks (Python mirror) on the specs; bitpacked tensors take their packed size."""
    from edgereid.firmware import lower_graph, read_tflite
    from edgereid.firmware.planner import plan

    picked = {}
    for name in ("bconv3x3_same1_f32", "bconv_groups_dilation", "bconv1x1_stride2", "bmaxpool_chain"):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(lce_model({"name": name, **SPECS[name]}))
        graph = read_tflite(path)
        layers = lower_graph(graph)
        schedule = plan(graph, layers)
        for layer in layers:
            picked.setdefault(layer.op.kind, set()).add(layer.kernel)
            for t in layer.writes:
                tensor = graph.tensors[t]
                if tensor.dtype == "int32":   # bitpacked: 4 bytes per word, ceil(C / 32) words per pixel
                    assert tensor.nbytes == 4 * int(np.prod(tensor.shape))
                    assert schedule.groups[schedule.group_of[t]].size >= tensor.nbytes
    assert picked["CUSTOM:LceBconv2d"] == {"ereid_bconv2d_3x3_b1", "ereid_bconv2d_b1", "ereid_bconv2d_1x1_b1"}
    assert picked["CUSTOM:LceBMaxPool2d"] == {"ereid_bmaxpool2d_b1"}
    assert picked["CUSTOM:LceQuantize"] == {"ereid_bitpack_f32_b1"}


@needs_lce
@needs_gcc
def test_quantize_special_values(tmp_path):
    """+0, -0, NaN, +-inf, +-denormal: bit = (x < 0) as LCE's interpreter evaluates it, with
    denormals-are-zero (a negative denormal packs as +1)."""
    from edgereid.firmware import build_firmware
    from edgereid.firmware.bitexact import run_firmware

    model = tmp_path / "q.tflite"
    model.write_bytes(lce_model({"input": _f([1, 2, 3, 45]), "ops": [{"op": "quantize"}, {"op": "dequantize"}]}))
    exe = build_firmware(model, "host", tmp_path / "fw", sanitize=True).executable
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 45)).astype(np.float32)
    x.reshape(-1)[:8] = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, -1e-45, 1e-45]
    with LceRunner(model) as runner:
        ref = runner.run([x])[0]
    got = run_firmware(exe, x, ref, tmp_path)
    assert np.array_equal(got, ref)
    assert got.reshape(-1)[:8].tolist() == [1, 1, 1, 1, 1, -1, 1, 1]


@needs_lce
@needs_gcc
@pytest.mark.parametrize("cin,kernel", [(32, 3), (96, 3), (1100, 1)])
def test_extreme_counts(tmp_path, cin, kernel):
    """Filters all +1, inputs all -1 (every XOR bit set: the count is K, up to 288 for nine
    words, past a byte) and all +1 (count 0): the horizontal sums must not wrap."""
    from edgereid.firmware import build_firmware
    from edgereid.firmware.bitexact import run_firmware

    spec = {"input": _f([1, 4, 4, cin]), "ops": [
        {"op": "quantize"}, {"op": "bconv", "filters": 6, "kernel": kernel, "padding": "VALID",
                             "filter_signs": "plus", "mult": [1.0, -1.0, 0.5, 2.0, -0.25, 1.5],
                             "bias": [0.0, 1.0, -2.0, 0.5, 3.0, -1.0]}]}
    model = tmp_path / "extreme.tflite"
    model.write_bytes(lce_model(spec))
    exe = build_firmware(model, "host", tmp_path / "fw", sanitize=True).executable
    depth = kernel * kernel * cin
    with LceRunner(model) as runner:
        for value in (-1.0, 1.0):
            x = np.full((1, 4, 4, cin), value, np.float32)
            ref = runner.run([x])[0]
            got = run_firmware(exe, x, ref, tmp_path)
            assert _same(got, ref).all(), value
            count = depth if value < 0 else 0            # y = (K - 2a) * m + b
            assert ref[0, 0, 0, 0] == np.float32((depth - 2 * count) * 1.0 + 0.0)


# ---- the wrapper against its Python mirror (ctypes on the host kernel library) -----------------

@needs_gcc
def test_wrapper_dispatch_mirrors_the_c_wrapper(tmp_path):
    """Random geometries: the kernel the Python mirror names accepts the call and writes the
    wrapper's bytes; a specialised kernel called outside its constraints refuses; the Python
    get_buffer_size equals the C one."""
    import firmware_harness as fh

    lib = C.CDLL(str(fh.build_shared(tmp_path)))
    Params, Dims = abi.ctypes_struct(abi.BconvParams), abi.ctypes_struct(abi.Dims)
    rng = np.random.default_rng(4)
    picked = set()
    for case in range(80):
        kh, kw = [(1, 1), (3, 3), (3, 1), (5, 5), (3, 3)][case % 5]
        groups = 2 if case % 7 == 3 else 1
        cin = 32 * groups * int(rng.integers(1, 3)) if groups > 1 else int(rng.integers(1, 80))
        cin_g = cin // groups
        words_g = (cin_g + 31) // 32
        cout = groups * int(rng.integers(1, 12))
        sh, sw, dil = int(rng.integers(1, 3)), int(rng.integers(1, 3)), 1 if rng.integers(3) else 2
        same = bool(rng.integers(2)) and (kh, kw) != (1, 1)
        eh, ew = dil * (kh - 1) + 1, dil * (kw - 1) + 1
        ih, iw = int(rng.integers(eh, eh + 6)), int(rng.integers(ew, ew + 6))
        pad = "SAME" if same else "VALID"
        oh, ow = out_size(pad, ih, kh, sh, dil), out_size(pad, iw, kw, sw, dil)
        ph = max(0, ((oh - 1) * sh + eh - ih) // 2) if same else 0
        pw = max(0, ((ow - 1) * sw + ew - iw) // 2) if same else 0
        out_type = [abi.BCONV_OUTPUT_TYPES[t] for t in ("float32", "int8", "int32")][case % 3]
        depth = kh * kw * cin_g
        value = abi.BconvParams(cin, groups, abi.Tile(sh, sw), abi.Tile(ph, pw), abi.Tile(dil, dil), case % 2,
                                out_type, 0, 2 * depth, 0)
        if value.pad_value == 0 and cin % 2:
            value = dataclasses.replace(value, pad_value=1)
        in_d, f_d = abi.Dims(1, ih, iw, (cin + 31) // 32), abi.Dims(cout, kh, kw, words_g)
        out_d = abi.Dims(1, oh, ow, cout)
        variant = kr.BCONV2D_WRAPPER_B1.pick(value, in_d, f_d, out_d)
        picked.add(variant.kernel)
        x = pack_bits(np.where(rng.integers(0, 2, (1, ih, iw, cin)) == 1, -1.0, 1.0))
        filt = np.concatenate([pack_bits(np.where(rng.integers(0, 2, (cout // groups, kh, kw, cin_g)) == 1, -1.0, 1.0))
                               for _ in range(groups)])
        transform = (C.c_float * (2 * cout))(*rng.uniform(-2, 2, 2 * cout).astype(np.float32))
        thr = (C.c_int32 * cout)(*rng.integers(0, depth + 1, cout).astype(np.int32))
        c_params = abi.to_ctypes(value)
        nbytes = oh * ow * (4 * ((cout + 31) // 32) if case % 3 == 2 else (cout if case % 3 == 1 else 4 * cout))
        outs = []
        for fn in (kr.BCONV2D_WRAPPER_B1.name, variant.kernel):
            out = (C.c_uint8 * nbytes)()
            status = getattr(lib, fn)(None, C.byref(c_params), transform, thr, C.byref(abi.to_ctypes(in_d)),
                                      x.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(f_d)),
                                      filt.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(out_d)), out)
            assert status == 0, (fn, value, in_d, f_d, out_d)
            outs.append(bytes(out))
        assert outs[0] == outs[1], (variant.kernel, value)
        generic = (C.c_uint8 * nbytes)()
        assert lib.ereid_bconv2d_b1(None, C.byref(c_params), transform, thr, C.byref(abi.to_ctypes(in_d)),
                                    x.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(f_d)),
                                    filt.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(out_d)), generic) == 0
        assert bytes(generic) == outs[0], ("generic vs", variant.kernel, value)
        for other, applies in (("ereid_bconv2d_1x1_b1", kr.bconv_1x1_applies),
                               ("ereid_bconv2d_3x3_b1", kr.bconv_3x3_applies)):
            if not applies(value, in_d, f_d, out_d):   # outside its constraints: EREID_ARG_ERROR
                assert getattr(lib, other)(None, C.byref(c_params), transform, thr, C.byref(abi.to_ctypes(in_d)),
                                           x.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(f_d)),
                                           filt.ctypes.data_as(C.c_void_p), C.byref(abi.to_ctypes(out_d)),
                                           generic) == -1
        size = lib.ereid_bconv2d_wrapper_b1_get_buffer_size(C.byref(c_params), C.byref(abi.to_ctypes(in_d)),
                                                            C.byref(abi.to_ctypes(f_d)), C.byref(abi.to_ctypes(out_d)))
        assert size == kr.BCONV2D_WRAPPER_B1.get_buffer_size(value, in_d, f_d, out_d)
    assert picked == {"ereid_bconv2d_1x1_b1", "ereid_bconv2d_3x3_b1", "ereid_bconv2d_b1"}
    assert [v.predicate for v in kr.BCONV2D_WRAPPER_B1.variants] == ["bconv_1x1_applies", "bconv_3x3_applies",
                                                                     "otherwise"]


@needs_gcc
def test_lowered_calls_match_the_c_prototypes(tmp_path):
    from edgereid.firmware import lower_graph, read_tflite

    text = re.sub(r"/\*.*?\*/", "", (ROOT / "firmware" / "include" / "ereid_nn.h").read_text(), flags=re.S)
    protos = {name: (ret, [re.sub(r"\s+", "", re.sub(r"\b\w+\s*$", "", p.strip())) for p in params.split(",")])
              for ret, name, params in re.findall(r"^(ereid_status|int32_t)\s+(ereid_\w+)\s*\(([^;]*)\)\s*;",
                                                  text, re.M)}
    seen = set()
    for name in ("quantize_dequantize_s8", "quantize_dequantize_f32", "bconv3x3_same1_f32", "bmaxpool_chain",
                 "bconv5x3_stride21_valid_s8",
                 "mixed_int8"):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(lce_model({"name": name, **SPECS[name]}))
        for layer in lower_graph(read_tflite(path)):
            ret, params = protos[layer.call.function]
            assert ret == "ereid_status"
            assert [a.c_type.replace(" ", "") for a in layer.call.args] == params, layer.op.kind
            if layer.call.buffer_size_check:
                _, params = protos[layer.call.buffer_size_check.function]
                assert [a.c_type.replace(" ", "") for a in layer.call.buffer_size_check.args] == params
            seen.add(layer.call.function)
    assert {"ereid_bitpack_f32_b1", "ereid_bitpack_s8_b1", "ereid_unpack_b1_f32", "ereid_unpack_b1_s8",
            "ereid_bconv2d_wrapper_b1", "ereid_bmaxpool2d_b1"} <= seen


# ---- bad input: one line naming the op index and the option --------------------------------------

def _bconv_bytes(options=None, cin=40, words=None, filter_words=None, out="float32", cout=5, threshold=True,
                 producer_channels=None):
    """float x -> LceQuantize -> LceBconv2d 3x3 VALID, with any field overridden."""
    b = ModelBuilder(0)
    xc = producer_channels or cin
    x = b.tensor("x", (1, 6, 6, xc), "float32")
    w = (xc + 31) // 32 if words is None else words
    packed = b.tensor("packed", (1, 6, 6, w), "int32")
    fw = (cin + 31) // 32 if filter_words is None else filter_words
    f = b.tensor("filter", (cout, 3, 3, fw), "int32", data=np.zeros((cout, 3, 3, fw), np.int32))
    m = b.tensor("mult", (cout,), "float32", data=np.ones(cout))
    c = b.tensor("bias", (cout,), "float32", data=np.zeros(cout))
    t = b.tensor("thr", (cout,), "int32", data=np.zeros(cout))
    opts = {"channels_in": cin, "dilation_height_factor": 1, "dilation_width_factor": 1,
            "fused_activation_function": 0, "pad_values": 1, "padding": 1, "stride_height": 1, "stride_width": 1}
    opts.update(options or {})
    opts = {k: v for k, v in opts.items() if v is not None}
    same = opts.get("padding") == 0
    o = 6 if same else 4
    y = b.tensor("y", (1, o, o, (cout + 31) // 32 if out == "int32" else cout), out)
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    b.op("CUSTOM:LceBconv2d", [packed.index, f.index, m.index, c.index, t.index if threshold else -1], [y.index], opts)
    last = y
    if out == "int32":
        z = b.tensor("z", (1, o, o, cout), "float32")
        b.op("CUSTOM:LceDequantize", [y.index], [z.index])
        last = z
    return b.finish([x.index], [last.index])


BAD_BCONV = [
    ({"options": {"padding": 2}}, r"op 1 \(CUSTOM:LceBconv2d\) option padding is 2; expected an integer in \[0, 1\]"),
    ({"options": {"padding": "VALID"}}, r"op 1 .*option padding is 'VALID'"),
    ({"options": {"pad_values": 3}}, r"op 1 .*option pad_values is 3"),
    ({"options": {"fused_activation_function": 4}}, r"op 1 .*option fused_activation_function is 4"),
    ({"options": {"stride_height": 0}}, r"op 1 .*option stride_height is 0"),
    ({"options": {"dilation_width_factor": None}}, r"op 1 .*option dilation_width_factor is missing"),
    ({"options": {"channels_in": 33}, "producer_channels": 40},
     r"op 1 .*option channels_in is 33; input 0 tensor 1 'packed' holds 40 bitpacked channels \(written by op 0"),
    ({"producer_channels": 70},
     r"op 1 .*input 0 tensor 1 'packed': shape: \[1, 6, 6, 3\] ends in 3 words; option channels_in 40"),
    ({"cin": 64, "filter_words": 3}, r"op 1 .*input 1 tensor 2 'filter': shape: .*3 words per tap do not divide"),
    ({"cin": 40, "filter_words": 1}, r"op 1 .*option channels_in is 40 with groups 2 .*multiple of 32"),
    ({"cin": 41, "options": {"padding": 0, "pad_values": 0}}, r"op 1 .*option pad_values is 0 with SAME padding and "
                                                              r"channels_in 41; expected an even"),
    ({"out": "int32", "options": {"padding": 0, "pad_values": 0}},
     r"op 1 .*option pad_values is 0 with SAME padding and bitpacked output"),
    ({"out": "int32", "threshold": False}, r"op 1 .*input 4 \(output_threshold\) is omitted"),
    ({"options": {"channels_in": 40, "padding": 0}, "out": "float32", "words": 2, "cout": 5},
     None),   # a valid model: SAME, pad 1
]


@pytest.mark.unit
@pytest.mark.parametrize("kwargs,message", BAD_BCONV)
def test_bad_bconv_is_one_clear_line(tmp_path, kwargs, message):
    from edgereid.firmware import lower_graph, read_tflite

    path = tmp_path / "bad.tflite"
    path.write_bytes(_bconv_bytes(**kwargs))
    if message is None:
        lower_graph(read_tflite(path))
        return
    with pytest.raises(FirmwareError, match=message) as info:
        lower_graph(read_tflite(path))
    text = str(info.value)
    assert "\n" not in text and str(path) in text


@pytest.mark.unit
def test_bad_packed_shapes_and_pool_options(tmp_path):
    from edgereid.firmware import read_tflite

    def write(build):
        b = ModelBuilder(0)
        last = build(b)
        path = tmp_path / "m.tflite"
        path.write_bytes(b.finish([0], [last]))
        return path

    def quantize_wrong_words(b):
        x = b.tensor("x", (1, 4, 4, 40), "float32")
        p = b.tensor("p", (1, 4, 4, 1), "int32")
        z = b.tensor("z", (1, 4, 4, 40), "float32")
        b.op("CUSTOM:LceQuantize", [x.index], [p.index])
        b.op("CUSTOM:LceDequantize", [p.index], [z.index])
        return z.index

    with pytest.raises(FirmwareError, match=r"op 0 \(CUSTOM:LceQuantize\) output 0 tensor 1 'p': shape: \[1, 4, 4, 1\] "
                                            r"is bitpacked .* 40 channels, so it must end in 2 words"):
        read_tflite(write(quantize_wrong_words))

    def dequantize_other_count(b):
        x = b.tensor("x", (1, 4, 4, 40), "float32")
        p = b.tensor("p", (1, 4, 4, 2), "int32")
        z = b.tensor("z", (1, 4, 4, 50), "float32")
        b.op("CUSTOM:LceQuantize", [x.index], [p.index])
        b.op("CUSTOM:LceDequantize", [p.index], [z.index])
        return z.index

    with pytest.raises(FirmwareError, match=r"op 1 \(CUSTOM:LceDequantize\) output tensor 2 'z' channel count is 50; "
                                            r"input 0 tensor 1 'p' holds 40 bitpacked channels"):
        read_tflite(write(dequantize_other_count))

    def pool(options):
        def build(b):
            x = b.tensor("x", (1, 6, 6, 40), "float32")
            p = b.tensor("p", (1, 6, 6, 2), "int32")
            y = b.tensor("y", (1, 3, 3, 2), "int32")
            z = b.tensor("z", (1, 3, 3, 40), "float32")
            b.op("CUSTOM:LceQuantize", [x.index], [p.index])
            b.op("CUSTOM:LceBMaxPool2d", [p.index], [y.index], options)
            b.op("CUSTOM:LceDequantize", [y.index], [z.index])
            return z.index
        return build

    good = {"padding": 1, "filter_height": 2, "filter_width": 2, "stride_height": 2, "stride_width": 2}
    read_tflite(write(pool(good)))
    with pytest.raises(FirmwareError, match=r"op 1 \(CUSTOM:LceBMaxPool2d\) option filter_width is missing"):
        read_tflite(write(pool({k: v for k, v in good.items() if k != "filter_width"})))
    with pytest.raises(FirmwareError, match=r"op 1 \(CUSTOM:LceBMaxPool2d\) output 0 tensor 2 'y': shape: declared "
                                            r"\[1, 3, 3, 2\]; the op computes \[1, 2, 2, 2\]"):
        read_tflite(write(pool({**good, "filter_height": 3, "filter_width": 3})))


@pytest.mark.unit
def test_transform_constants_follow_lce_one_time_setup():
    """(float)(-m / s), (float)((b + K m) / s + z) in double; denormal inputs read as 0 and
    denormal results are stored as zeros (LCE runs with FTZ/DAZ); the flush flag is needed
    only for constants below 2^-100."""
    from edgereid.firmware.lowering_lce import bconv_transform, needs_flush

    mult = np.array([0.5, -3.0, 1e-39, 2.0 ** -120], np.float32)
    bias = np.array([1.25, 0.1, 7.0, -1e-40], np.float32)
    got = bconv_transform(mult, bias, 288, 0.05, -3)
    s = float(np.float32(0.05))
    for (m, b), pm, pb in zip(got, mult, bias):
        pm = 0.0 if abs(float(pm)) < 2.0 ** -126 else float(pm)     # denormals-are-zero
        pb = 0.0 if abs(float(pb)) < 2.0 ** -126 else float(pb)
        assert m.tobytes() == np.float32(-1 * pm / s).tobytes()
        assert b.tobytes() == np.float32((pb + 288 * pm) / s - 3).tobytes()
    assert got[2][0].tobytes() == np.float32(-0.0).tobytes()      # a denormal multiplier reads as 0
    assert not needs_flush([(np.float32(0.5), np.float32(0.0))])
    assert needs_flush([(np.float32(2.0 ** -110), np.float32(1.0))])


# ---- Cortex-M in QEMU: the optimised paths against the oracle (and each other) ------------------

QEMU_SPEC = {"name": "binary_qemu", "seed": 9, "input": _f([1, 9, 8, 32]), "ops": [
    {"op": "quantize"},
    {"op": "bconv", "filters": 38, "padding": "SAME", "pad_values": 1, "output": "bitpacked",
     "threshold": [-2**31, -1, 0, 287, 288, 2**31 - 1] + list(range(120, 184, 2))},
    {"op": "bconv", "filters": 30, "padding": "SAME", "pad_values": 0, "stride": 2, "output": "int8",
     "activation": "RELU"},
    {"op": "quantize"},
    {"op": "bconv", "filters": 21, "padding": "VALID", "activation": "RELU6"}]}


@pytest.mark.target
@needs_lce
@needs_cortex_m
@pytest.mark.parametrize("board,dsp", [("mps2-an386", True), ("mps2-an386", False), ("mps3-an547", True)])
def test_qemu_bit_exact(tmp_path, board, dsp):
    """M4: the Thumb-2 asm path (dsp) and the portable C (-DEREID_NO_DSP); M55: Helium. Each
    equals LCE's interpreter byte for byte, so they equal each other."""
    from edgereid.hil.runner import run_hil

    model = tmp_path / "binary_qemu.tflite"
    model.write_bytes(lce_model(QEMU_SPEC))
    result = run_hil(model, board, n=3, seed=4, out_dir=tmp_path / "fw", dsp=dsp)
    assert result.passed, result.format()
    assert result.reference.startswith("Larq Compute Engine")
    image = tmp_path / "fw" / "firmware.elf"
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(image)], capture_output=True, text=True).stdout
    if board == "mps2-an386":
        assert ("usad8" in dis) == dsp      # the asm 9-word popcount is in the DSP image only
    else:
        assert "veor" in dis


# ---- the int8 glue of a BiRe-ID network: fast ADD / PRELU / threshold kernels ----------------------

def test_glue_kernels_sanitized_portable_and_emulated_dsp(tmp_path):
    """ereid_add_elementwise_s8, ereid_prelu_channel_s8 and ereid_depthwise_conv_1x1_unit_s8 (and their
    wrappers) against the reference kernels they replace, random shapes and requantization parameters
    (tests/c/test_glue_kernels.c), under ASan+UBSan; the portable and EREID_EMULATE_DSP builds agree."""
    import firmware_harness as fh

    fh.need_tool("gcc")
    hashes = []
    for variant, defines in (("portable", []), ("emulated_dsp", ["-DEREID_EMULATE_DSP"])):
        exe = tmp_path / f"test_glue_kernels_{variant}"
        fh.run_checked(["gcc", *fh.STRICT, *fh.SANITIZE, *defines, *fh.INCLUDES,
                        f"-I{ROOT / 'firmware' / 'kernels' / 'binary'}", *fh.kernel_sources(),
                        ROOT / "tests" / "c" / "test_glue_kernels.c", "-o", exe, "-lm"])
        out = fh.run_checked([exe, "300", "5"], timeout=300).stdout
        assert "failures 0" in out, out
        hashes.append(re.search(r"hash ([0-9a-f]+)", out).group(1))
    assert hashes[0] == hashes[1]


def _bireid_export(tmp_path: Path) -> Path:
    """A tiny BiRe-ID export (width 0.125: 8 to 64 channels, so the last stage's binary convs
    count 18-word runs) with BN statistics that give negative thresholds' signs too."""
    import torch
    from torch import nn

    from edgereid.export.lce import export_lce
    from edgereid.models import build_model

    torch.manual_seed(0)
    model = build_model("bireid_resnet18", num_classes=5, width=0.125)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 2.5 - 0.8)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.6 - 0.3)
    path = tmp_path / "bireid_tiny.tflite"
    calib = torch.randn(4, 3, 32, 16, generator=torch.Generator().manual_seed(1)) * 1.3
    export_lce(model.eval(), path, calib=calib, input_size=(32, 16))
    return path


def test_bireid_export_lowers_to_the_fast_glue_kernels(tmp_path):
    """Every binarizer threshold (1x1 depthwise, rescale exactly 1.0) takes the unit kernel, PRELU and
    ADD their wrappers (whose C picks the per-channel / element-wise kernels); an ordinary 1x1
    depthwise keeps the generic wrapper."""
    from edgereid.firmware import lower_graph, read_tflite
    from edgereid.tflite.builder import build_model

    layers = lower_graph(read_tflite(_bireid_export(tmp_path)))
    picked: dict[str, set] = {}
    for layer in layers:
        picked.setdefault(layer.op.kind, set()).add(layer.kernel)
    assert picked["DEPTHWISE_CONV_2D"] == {"ereid_depthwise_conv_1x1_unit_s8"}
    assert picked["PRELU"] == {"ereid_prelu_wrapper_s8"}
    assert picked["ADD"] == {"ereid_add_wrapper_s8"}
    dw = tmp_path / "dw1x1.tflite"
    dw.write_bytes(build_model({"name": "dw1x1", "seed": 3, "inputs": [
        {"name": "x", "shape": [1, 4, 4, 8], "scale": 0.05, "zero_point": -3}],
        "ops": [{"op": "DEPTHWISE_CONV_2D", "kernel": 1}]}))
    assert {layer.kernel for layer in lower_graph(read_tflite(dw))} == {"ereid_depthwise_conv_s8"}


@needs_lce
@needs_gcc
def test_bireid_export_host_bit_exact_under_sanitizers(tmp_path):
    """The whole BiRe-ID graph (thresholds, LceQuantize, LceBconv2d int8 out, PRELU, ADD, shortcuts,
    head) on the host build under ASan+UBSan equals LCE's interpreter byte for byte."""
    from edgereid.firmware import build_firmware
    from edgereid.firmware.bitexact import run_firmware

    model = _bireid_export(tmp_path)
    result = build_firmware(model, "host", tmp_path / "fw", sanitize=True)
    with reference_runner(model) as runner:
        for i, xs in enumerate(seeded_inputs(runner.inputs, 4, seed=5)):
            ref = runner.run(xs)[0]
            got = run_firmware(result.executable, xs[0], ref, tmp_path)
            assert (got == ref).all(), f"input {i}: {int((got != ref).sum())} of {ref.size} values differ"


@pytest.mark.target
@needs_lce
@needs_cortex_m
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_bireid_export_qemu_bit_exact(tmp_path, board):
    """The same graph on M4 (DSP) and M55 (Helium: the vector ADD / PRELU / threshold loops and the
    carry-save popcount of the 18-word binary conv runs) equals LCE's interpreter byte for byte."""
    from edgereid.hil.runner import run_hil

    result = run_hil(_bireid_export(tmp_path), board, n=3, seed=6, out_dir=tmp_path / "fw")
    assert result.passed, result.format()
    assert result.reference.startswith("LiteRT BUILTIN_REF + Larq Compute Engine")
