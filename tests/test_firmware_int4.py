"""int4-weight (_s4) firmware: the C kernels under sanitizers (portable and emulated-DSP
paths) against a naive reference, warning-free Cortex-M builds, the lowering of TFLite
INT4 filters (kernel choice, packed const arrays, scratch), and byte equality with LiteRT
BUILTIN_REF on int4 corpus models (host under ASan+UBSan; QEMU in the target tier)."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

import firmware_harness as fh  # noqa: E402
from gen_tflite_corpus import corpus_specs, int4_corpus_names, int4_even_specs, int4_filters  # noqa: E402

from edgereid.errors import FirmwareError  # noqa: E402
from edgereid.firmware import kernel_registry as kr  # noqa: E402
from edgereid.firmware.kernel_abi import Activation, ConvParams, Dims, Tile  # noqa: E402
from edgereid.firmware.lowering import check_op, lower_graph  # noqa: E402
from edgereid.tflite.builder import build_model  # noqa: E402
from edgereid.tflite.ir import pack_int4  # noqa: E402
from edgereid.tflite.reader import parse_graph  # noqa: E402
from edgereid.tflite.writer import write_graph  # noqa: E402

INCLUDES, STRICT, SANITIZE, ARM_TARGETS = fh.INCLUDES, fh.STRICT, fh.SANITIZE, fh.ARM_TARGETS
S4_SOURCES = sorted((ROOT / "firmware" / "kernels").rglob("*_s4.c"))
_need, _run = fh.need_tool, fh.run_checked


# ---- the C kernels -------------------------------------------------------------------------

def test_s4_kernels_sanitized_portable_and_emulated_dsp(tmp_path):
    """Random shapes (odd channels: rows starting mid-byte; even K: the im2col path; an FC depth
    past the DSP chunk), every s4 kernel equal to the naive reference / the int8 FC, argument
    checks; both builds under ASan+UBSan, and their output hashes agree byte for byte."""
    _need("gcc")
    hashes = []
    for variant, defines in (("portable", []), ("emulated_dsp", ["-DEREID_EMULATE_DSP"])):
        exe = tmp_path / f"test_kernels_s4_{variant}"
        _run(["gcc", *STRICT, *SANITIZE, *defines, *INCLUDES, *fh.kernel_sources(),
              ROOT / "tests" / "c" / "test_kernels_s4.c", "-o", exe, "-lm"])
        out = _run([exe, "300", "13"], timeout=300).stdout
        assert "failures 0" in out, out
        hashes.append(re.search(r"hash ([0-9a-f]+)", out).group(1))
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize("target", sorted(ARM_TARGETS))
def test_s4_arm_cross_compile_clean(tmp_path, target):
    _need("arm-none-eabi-gcc")
    _need("arm-none-eabi-objdump")
    assert len(S4_SOURCES) == 8
    for src in S4_SOURCES:
        _run(["arm-none-eabi-gcc", *STRICT, "-O2", *ARM_TARGETS[target], *INCLUDES, "-c", src,
              "-o", tmp_path / (src.stem + ".o")])
    conv = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_convolve_3x3_s4.o"]).stdout
    dw = _run(["arm-none-eabi-objdump", "-d", tmp_path / "ereid_depthwise_conv_3x3_s4.o"]).stdout
    if target in ("cortex-m4", "cortex-m7"):
        # the DSP paths are compiled in: SMLAD over SXTB16-split nibbles, PKHBT regrouping the input
        assert all(i in conv for i in ("smlad", "sxtb16", "pkhbt", "ldrd"))
        assert "smlabb" in dw and "smlatt" in dw
    if target == "cortex-m3":
        assert "smlad" not in conv and "smlabb" not in dw


# ---- lowering -------------------------------------------------------------------------------

def _int4_model(spec: dict) -> bytes:
    return int4_filters(build_model(spec))


def _x(shape, zp=-5, scale=0.04):
    return {"name": "x", "shape": shape, "scale": scale, "zero_point": zp}


NET_SPEC = {"name": "int4_net", "seed": 3, "inputs": [_x([1, 6, 5, 8], zp=4)], "ops": [
    {"op": "CONV_2D", "filters": 6, "kernel": 3, "activation": "RELU"},        # K = 72: im2col path
    {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "depth_multiplier": 1},
    {"op": "CONV_2D", "filters": 4, "kernel": 1},
    {"op": "RESHAPE", "shape": [1, -1]},
    {"op": "FULLY_CONNECTED", "units": 7}]}


def test_int4_filters_lower_to_s4_kernels_with_packed_arrays():
    data = _int4_model(NET_SPEC)
    graph = parse_graph(data)
    layers = lower_graph(graph)
    kernels = [layer.call.function for layer in layers if layer.call is not None]
    assert kernels == ["ereid_convolve_wrapper_s4", "ereid_depthwise_conv_wrapper_s4", "ereid_convolve_wrapper_s4",
                       "ereid_reshape_s8", "ereid_fully_connected_s4"]
    assert [layers[i].call.variant for i in (0, 1, 2)] == ["ereid_convolve_3x3_s4", "ereid_depthwise_conv_3x3_s4",
                                                           "ereid_convolve_1x1_s4"]
    for i in (0, 1, 2, 4):
        w = graph.tensors[graph.ops[i].inputs[1]]
        assert w.dtype == "int4"
        filt = next(a for a in layers[i].arrays if a.name.endswith("_filter"))
        assert filt.ctype == "int8_t" and filt.values.size == (w.num_elements + 1) // 2
        assert filt.values.tobytes() == pack_int4(w.array().reshape(-1))   # the file's packing, kept packed
    # scratch: the im2col columns for an even K (3x3x8 = 72, 6 channels: the larger of the DSP
    # path's 5 * 72 + 16 * 6 + 4 and the Helium path's 15 + 3 * 96 + 96 * 2), none for the depthwise
    assert layers[0].call.scratch_bytes == max(5 * 72 + 16 * 6 + 4, 15 + 3 * 96 + 96 * 2)
    assert layers[1].call.scratch_bytes == 0
    int8_layers = lower_graph(parse_graph(build_model(NET_SPEC)))
    assert sum(layer.weight_bytes for layer in layers) < sum(layer.weight_bytes for layer in int8_layers)


def test_s4_dispatch_mirrors_and_scratch_rule():
    wrapper = kr.select_kernel("CONV_2D", "int8", "int4", "int8")
    assert wrapper is kr.CONVOLVE_WRAPPER_S4
    p = ConvParams(input_offset=0, output_offset=0, stride=Tile(1, 1), padding=Tile(0, 0), dilation=Tile(1, 1),
                   activation=Activation(-128, 127))
    assert wrapper.pick(p, Dims(1, 4, 4, 6), Dims(3, 1, 1, 6), Dims(1, 4, 4, 3)).kernel == "ereid_convolve_1x1_s4"
    # the larger of the DSP scratch (5 * K8 + 16 per output channel + 4) and the Helium one
    # (15 + 3 * K32 + 96 per 4 output channels)
    assert wrapper.get_buffer_size(p, Dims(1, 4, 4, 6), Dims(3, 1, 1, 6), Dims(1, 4, 4, 3)) == 15 + 3 * 32 + 96
    assert wrapper.get_buffer_size(p, Dims(1, 4, 4, 96), Dims(3, 1, 1, 96), Dims(1, 4, 4, 3)) == 5 * 96 + 48 + 4
    assert wrapper.get_buffer_size(p, Dims(1, 4, 4, 5), Dims(3, 1, 1, 5), Dims(1, 4, 4, 3)) == 0  # odd K
    p3 = ConvParams(input_offset=0, output_offset=0, stride=Tile(1, 1), padding=Tile(1, 1), dilation=Tile(1, 1),
                    activation=Activation(-128, 127))
    assert wrapper.pick(p3, Dims(1, 4, 4, 6), Dims(3, 3, 3, 6), Dims(1, 4, 4, 3)).kernel == "ereid_convolve_3x3_s4"
    assert kr.select_kernel("DEPTHWISE_CONV_2D", "int8", "int4", "int8") is kr.DEPTHWISE_CONV_WRAPPER_S4
    assert kr.select_kernel("FULLY_CONNECTED", "int8", "int4", "int8").name == "ereid_fully_connected_s4"


def _with_filter(data: bytes, op_index: int, **changes) -> bytes:
    import dataclasses

    g = parse_graph(data)
    w = g.tensors[g.ops[op_index].inputs[1]]
    g.tensors[w.index] = dataclasses.replace(w, **changes)
    return write_graph(g)


def test_int4_filter_checks_refuse_what_the_kernels_cannot_run():
    data = _int4_model({"name": "c", "seed": 1, "inputs": [_x([1, 5, 5, 4])],
                        "ops": [{"op": "CONV_2D", "filters": 3, "kernel": 3}]})
    g = parse_graph(data)
    check_op(g, g.ops[0])  # the unmodified model passes
    bad_zp = parse_graph(_with_filter(data, 0, zero_points=(1, 0, 0)))
    with pytest.raises(FirmwareError, match="zero_point.*symmetric int4"):
        check_op(bad_zp, bad_zp.ops[0])
    dw = parse_graph(_int4_model({"name": "d", "seed": 2, "inputs": [_x([1, 5, 5, 4])],
                                  "ops": [{"op": "DEPTHWISE_CONV_2D", "kernel": 3}]}))
    check_op(dw, dw.ops[0])
    import dataclasses
    dw.ops[0] = dataclasses.replace(dw.ops[0], version=7)   # BUILTIN_REF registers DEPTHWISE_CONV_2D up to 6
    with pytest.raises(FirmwareError, match="operator version 7"):
        check_op(dw, dw.ops[0])


# ---- byte equality with LiteRT BUILTIN_REF (host, ASan+UBSan) ---------------------------------

def _int4_corpus_model(name: str) -> bytes:
    even = int4_even_specs()
    if name in even:
        return _int4_model(dict(even[name], seed=1000 + list(even).index(name)))
    specs = corpus_specs()
    src = int4_corpus_names()[name]
    return int4_filters(build_model(dict(specs[src], seed=list(specs).index(src))))


HOST_MODELS = ["conv4_1x1_s2_valid_relu", "conv4_3x3_s1_same_relu6", "conv4_5x5_s2_same_none", "conv4_3x3_dilation2",
               "conv4_3x1_s2x1", "dwconv4_3x3_m1_s2", "dwconv4_5x5_m3_s1", "fc4_relu", "fc4_per_channel",
               "conv4_even_3x3_s1_same", "conv4_even_1x1_s2_valid", "dwconv4_even_3x3_m1_s1", "net4_even_block"]


@pytest.mark.parametrize("name", HOST_MODELS)
def test_int4_model_bit_exact_on_host_under_sanitizers(tmp_path, name):
    _need("gcc")
    from edgereid.firmware.bitexact import check_model

    result = check_model(_int4_corpus_model(name), name, num_inputs=4, seed=5, sanitize=True, workdir=tmp_path)
    assert result.elements > 0 and result.mismatched_elements == 0, result


def test_int4_corpus_twins_match_int8_corpus_values():
    """Each int4 corpus model is its int8 twin with filters w -> clip(round(w / 16), -7, 7) and scales x 16."""
    specs = corpus_specs()
    name = "dwconv4_3x3_m2_s1"
    src = int4_corpus_names()[name]
    g8 = parse_graph(build_model(dict(specs[src], seed=list(specs).index(src))))
    g4 = parse_graph(_int4_corpus_model(name))
    w8, w4 = (g.tensors[g.ops[0].inputs[1]] for g in (g8, g4))
    assert w4.dtype == "int4" and w4.nbytes == (w8.num_elements + 1) // 2
    np.testing.assert_array_equal(w4.array(), np.clip(np.round(w8.array() / 16.0), -7, 7))
    np.testing.assert_allclose(np.array(w4.scales), np.array(w8.scales) * 16, rtol=1e-6)
    assert g4.ops[0].version <= 6   # BUILTIN_REF registers DEPTHWISE_CONV_2D up to version 6


# ---- QEMU (target tier) ------------------------------------------------------------------------

_MISSING_ARM = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc", "make") if shutil.which(t) is None]


@pytest.mark.target
@pytest.mark.skipif(bool(_MISSING_ARM), reason=f"{', '.join(_MISSING_ARM)} not installed")
@pytest.mark.parametrize("board,dsp", [("mps2-an386", True), ("mps2-an386", False), ("mps2-an500", True),
                                       ("mps3-an547", True)])
def test_int4_net_bit_exact_in_qemu(tmp_path, board, dsp):
    """The DSP paths (im2col conv, SMLAD FC, SMLABB depthwise) and the portable loops on Cortex-M."""
    from edgereid.hil.runner import run_hil

    model = tmp_path / "net4_even_block.tflite"
    model.write_bytes(_int4_corpus_model("net4_even_block"))
    result = run_hil(model, board, n=3, seed=4, out_dir=tmp_path / "fw", dsp=dsp)
    assert result.passed, result.format()


# Shapes for the Helium paths (ereid_conv_mve_s4.h, ereid_dot_s4_mve, the 3x3 depthwise's
# ereid_dw3x3_s4_mve_pixel): depthwise over 42 channels (16 + 16 + a partial group of 10, SAME
# borders) and 64 (stride 2); conv K = 378 (11 chunks of 32 taps, an odd count, + a 26-tap tail),
# K = 64 (2 chunks, no tail), 7 output channels (a partial block of 4); FC depths 42 (1 chunk +
# 10) and 140 (4 chunks + 12). Each also runs on the DSP path (M4), the portable loops
# (M55 without DSP/MVE) and on the host under sanitizers.
MVE_NET_SPEC = {"name": "int4_mve_net", "seed": 11, "inputs": [_x([1, 5, 4, 42], zp=-3)], "ops": [
    {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "depth_multiplier": 1, "activation": "RELU"},
    {"op": "CONV_2D", "filters": 64, "kernel": 3, "activation": "RELU"},
    {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "depth_multiplier": 1, "stride": 2},
    {"op": "CONV_2D", "filters": 7, "kernel": 1},
    {"op": "RESHAPE", "shape": [1, -1]},
    {"op": "FULLY_CONNECTED", "units": 140},
    {"op": "FULLY_CONNECTED", "units": 5}]}


def test_int4_mve_shapes_bit_exact_on_host_under_sanitizers(tmp_path):
    _need("gcc")
    from edgereid.firmware.bitexact import check_model

    result = check_model(_int4_model(MVE_NET_SPEC), "int4_mve_net", num_inputs=4, seed=6, sanitize=True,
                         workdir=tmp_path)
    assert result.elements > 0 and result.mismatched_elements == 0, result


@pytest.mark.target
@pytest.mark.skipif(bool(_MISSING_ARM), reason=f"{', '.join(_MISSING_ARM)} not installed")
@pytest.mark.parametrize("board,dsp", [("mps3-an547", True), ("mps3-an547", False), ("mps2-an386", True)])
def test_int4_mve_shapes_bit_exact_in_qemu(tmp_path, board, dsp):
    """mps3-an547 with dsp: the Helium conv and FC paths; without: the portable loops on the same core."""
    from edgereid.hil.runner import run_hil

    model = tmp_path / "int4_mve_net.tflite"
    model.write_bytes(_int4_model(MVE_NET_SPEC))
    result = run_hil(model, board, n=3, seed=7, out_dir=tmp_path / "fw", dsp=dsp)
    assert result.passed, result.format()
