"""Coverage of the int8 models users bring (issue 12 item 0): TRANSPOSE, ADD/MUL with a constant
operand, several inputs and outputs (build-firmware, model.h, HIL, the bit-exact checker), float32
ops at the graph's ends or in islands run as LiteRT's reference kernels do (or refused naming the
op), and int8 PRELU; each byte for byte against LiteRT BUILTIN_REF on the host build under
ASan + UBSan, and the networks in QEMU on the M4. Models: tools/corpus_coverage.py (part of the
corpus written by tools/gen_tflite_corpus.py)."""
import ctypes as C
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from corpus_coverage import NetBuilder, coverage_builders  # noqa: E402

from edgereid.errors import FirmwareError  # noqa: E402
from edgereid.firmware import kernel_abi as abi  # noqa: E402

needs_host_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                    reason="host gcc / make not installed")
MISSING = [tool for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make") if shutil.which(tool) is None]
needs_cortex_m = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed")

BUILDERS = coverage_builders()


def _model(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(BUILDERS[name](1000 + list(BUILDERS).index(name)))
    return path


# ---- every coverage model, host build under ASan + UBSan ------------------------------------------

@needs_host_gcc
@pytest.mark.integration
@pytest.mark.parametrize("name", list(BUILDERS))
def test_coverage_model_bit_exact_on_host_under_sanitizers(name, tmp_path):
    from edgereid.firmware.bitexact import check_model

    result = check_model(_model(tmp_path, name).read_bytes(), name, num_inputs=6, seed=3, sanitize=True,
                         workdir=tmp_path)
    assert result.elements > 0
    assert result.exact, f"{name}: {result.mismatched_elements} of {result.elements} elements differ"


def test_corpus_writes_the_coverage_models_deterministically(tmp_path):
    import gen_tflite_corpus

    a = gen_tflite_corpus.write_corpus(tmp_path / "a", seed=2)
    b = gen_tflite_corpus.write_corpus(tmp_path / "b", seed=2)
    for name in BUILDERS:
        assert a[name].read_bytes() == b[name].read_bytes(), name


def test_networks_hold_the_ops_they_are_named_for():
    from edgereid.tflite import parse_graph

    def kinds(name):
        return [op.kind for op in parse_graph(BUILDERS[name](0)).ops]
    mcunet = kinds("cov_net_mcunet")
    # squeeze-excite hard-sigmoid: ADD const -> RELU6 -> MUL const, then a TRANSPOSE before the MEAN
    assert "ADD" in mcunet and "RELU6" in mcunet and mcunet.count("MUL") >= 4
    assert mcunet.index("TRANSPOSE") == mcunet.index("MEAN", mcunet.index("TRANSPOSE")) - 1
    g = parse_graph(BUILDERS["cov_net_multihead_detector"](0))
    assert len(g.outputs) == 3
    assert kinds("cov_net_prelu").count("PRELU") == 2
    assert kinds("cov_net_float_tail")[-1] == "L2_NORMALIZATION"


# ---- several inputs and outputs: model.h, the host app, the HIL ------------------------------------

@needs_host_gcc
def test_multi_output_api_names_each_output_and_packs_them(tmp_path):
    """model.h: one accessor per input and output, named from the model; a C program that fills
    the input through its accessor and reads every output through its own gets LiteRT's values."""
    from edgereid.firmware import build_firmware
    from edgereid.tflite import reference_runner, seeded_inputs

    model = _model(tmp_path, "cov_net_multihead_detector")
    build_firmware(model, "host", tmp_path / "fw")
    header = (tmp_path / "fw" / "model.h").read_text()
    assert "#define EREID_MODEL_NUM_OUTPUTS 3" in header
    for accessor in ("ereid_model_input_frame", "ereid_model_output_boxes", "ereid_model_output_scores",
                     "ereid_model_output_objectness"):
        assert f" *{accessor}(" in header, accessor
    app = tmp_path / "fw" / "app.c"
    app.write_text(r"""
#include <stdio.h>
#include <string.h>
#include "model.h"
static uint8_t in[EREID_MODEL_INPUT_BYTES], out[EREID_MODEL_OUTPUT_BYTES];
int main(void)
{
    int i;
    if (fread(ereid_model_input_frame(in), 1, EREID_MODEL_INPUT_FRAME_BYTES, stdin) != EREID_MODEL_INPUT_FRAME_BYTES)
        return 3;
    if (ereid_model_invoke(in, out) != 0)
        return 4;
    fwrite(ereid_model_output_boxes(out), 1, EREID_MODEL_OUTPUT_BOXES_BYTES, stdout);
    for (i = 0; i < EREID_MODEL_OUTPUT_SCORES_BYTES / 4; i++)   /* float32 through a float pointer */
        fwrite(&ereid_model_output_scores(out)[i], 4, 1, stdout);
    fwrite(ereid_model_output_objectness(out), 1, EREID_MODEL_OUTPUT_OBJECTNESS_BYTES, stdout);
    return 0;
}
""")
    fw = tmp_path / "fw"
    kernels = sorted(str(p.relative_to(fw)) for p in fw.glob("kernels/**/*.c"))
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-Iinclude", "-I.", *[f"-I{d}" for d in ("kernels/support",)],
                    "app.c", "model.c", *kernels, "-o", "app", "-lm"], cwd=fw, check=True, capture_output=True)
    x = seeded_inputs([((1, 12, 12, 4), np.int8)], 1, seed=9)[0][0]
    got = subprocess.run([str(fw / "app")], input=x.tobytes(), capture_output=True, check=True).stdout
    with reference_runner(model) as runner:
        want = b"".join(y.tobytes() for y in runner.run([x]))
    assert got == want


@needs_host_gcc
def test_edgereid_hil_on_host_runs_two_inputs_two_outputs(tmp_path):
    """The host HIL (the HIL image as a child process on pipes) carries the packed outputs."""
    from edgereid.hil import run_hil
    from edgereid.hil.runner import Reference

    model = _model(tmp_path, "cov_net_two_inputs_two_outputs")
    reference = Reference(model)
    assert len(reference.outputs) == 2
    first = reference.outputs[0].nbytes
    assert reference.output_offsets == [0, (first + 3) // 4 * 4]
    assert reference.output_bytes == reference.output_offsets[1] + reference.outputs[1].nbytes
    result = run_hil(model, "host", n=4, seed=1)
    assert result.passed, result.format()
    assert result.output_bytes == reference.output_bytes


@needs_cortex_m
@pytest.mark.target
@pytest.mark.parametrize("name", ["cov_net_mcunet", "cov_net_multihead_detector", "cov_net_float_tail"])
def test_coverage_networks_bit_exact_on_m4_in_qemu(name, tmp_path):
    from edgereid.hil import run_hil

    result = run_hil(_model(tmp_path, name), "mps2-an386", n=4, seed=5)
    assert result.passed, result.format()


# ---- refusals: one line naming the op, its index and why ------------------------------------------

def _refused(tmp_path: Path, net: NetBuilder, inputs, outputs, match: str):
    from edgereid.firmware.frontend import read_tflite

    path = tmp_path / "refused.tflite"
    path.write_bytes(net.finish(inputs, outputs, "refused"))
    with pytest.raises(FirmwareError, match=match):
        read_tflite(path)


def test_float_logistic_is_refused_naming_op_and_reason(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 8), "int8")
    y = net.unary("LOGISTIC", net.dequantize(x))
    _refused(tmp_path, net, [x], [y], r"op 1 \(LOGISTIC\) on float32 is not run: .*expf")


def test_float_conv_island_is_refused_naming_the_op(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 4, 4, 3), "float32")
    w = net.b.tensor("w", (2, 1, 1, 3), "float32", data=np.ones((2, 1, 1, 3), np.float32))
    y = net.float32("y", (1, 4, 4, 2))
    net.b.op("CONV_2D", [x.index, w.index, -1], [y.index], {"padding": "VALID", "stride_h": 1, "stride_w": 1})
    _refused(tmp_path, net, [x], [y], r"op 0 \(CONV_2D\) on float32 is not run: only these float32 ops")


def test_transpose_with_a_repeated_axis_is_refused(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 2, 3, 4), "int8")
    p = net.b.const_i32("perm", np.asarray([0, 1, 1, 3], np.int32))
    y = net.int8("y", (1, 2, 2, 4), 0.05, 0)
    net.b.op("TRANSPOSE", [x.index, p.index], [y.index], {})
    _refused(tmp_path, net, [x], [y], r"op 0 \(TRANSPOSE\) input 1 .*expected a permutation of 0..3")


def test_transpose_declared_shape_must_match_the_permutation(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 2, 3, 4), "int8")
    p = net.b.const_i32("perm", np.asarray([0, 3, 1, 2], np.int32))
    y = net.int8("y", (1, 2, 3, 4), 0.05, 0)
    net.b.op("TRANSPOSE", [x.index, p.index], [y.index], {})
    _refused(tmp_path, net, [x], [y], r"declared \[1, 2, 3, 4\]; the op computes \[1, 4, 2, 3\]")


def test_add_of_two_constants_is_refused(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 4), "int8")
    a, b = net.const_int8((1, 4), [1.0] * 4, 0.05), net.const_int8((1, 4), [2.0] * 4, 0.05)
    y = net.binary("ADD", a, b, 0.1, 0)
    z = net.binary("ADD", x, y, 0.1, 0)
    _refused(tmp_path, net, [x], [z], r"op 0 \(ADD\) has two constant operands")


def test_int8_add_with_an_int32_constant_is_refused(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 4), "int8")
    c = net.b.const_i32("c", np.arange(4, dtype=np.int32).reshape(1, 4))
    y = net.binary("ADD", x, c, 0.1, 0)
    _refused(tmp_path, net, [x], [y], r"op 0 \(ADD\) input 1 .*dtype: is int32; expected int8")


def test_prelu_alpha_quantized_per_channel_is_refused(tmp_path):
    net = NetBuilder(0)
    x = net.input("x", (1, 2, 2, 3), "int8")
    alpha = net.b.tensor("alpha", (3,), "int8", scale=[0.01, 0.02, 0.03], zero_point=[0, 0, 0],
                         data=np.array([1, 2, 3], np.int8))
    y = net.int8("y", (1, 2, 2, 3), 0.05, 0)
    net.b.op("PRELU", [x.index, alpha.index], [y.index], {})
    _refused(tmp_path, net, [x], [y], r"op 0 \(PRELU\) input 1 .*3 scales; expected one")


# ---- the kernels' own argument checks (ctypes) ------------------------------------------------------

@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed")
    out = tmp_path_factory.mktemp("lib") / "libcoverage.so"
    fw = REPO / "firmware"
    sources = [fw / "kernels/misc/ereid_transpose_s8.c", fw / "kernels/activation/ereid_relu_s8.c",
               fw / "kernels/activation/ereid_prelu_s8.c", fw / "kernels/activation/ereid_relu_f32.c"]
    subprocess.run(["gcc", "-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-Wshadow",
                    f"-I{fw / 'include'}", f"-I{fw / 'kernels' / 'support'}", *map(str, sources), "-o", str(out)],
                   check=True, capture_output=True)
    return C.CDLL(str(out))


def _ptr(a):
    return a.ctypes.data_as(C.c_void_p)


def test_transpose_kernel_checks_its_permutation(lib):
    x = np.arange(24, dtype=np.int8).reshape(1, 2, 3, 4)
    y = np.zeros(24, np.int8)
    in_d = abi.to_ctypes(abi.Dims(1, 2, 3, 4))
    ok = abi.to_ctypes(abi.TransposeParams(abi.Dims(0, 3, 1, 2)))
    assert lib.ereid_transpose_s8(C.byref(ok), C.byref(in_d), _ptr(x), C.byref(abi.to_ctypes(abi.Dims(1, 4, 2, 3))),
                                  _ptr(y)) == 0
    assert np.array_equal(y.reshape(1, 4, 2, 3), x.transpose(0, 3, 1, 2))
    for perm, out in (((0, 3, 3, 2), (1, 4, 4, 3)), ((0, 3, 1, 4), (1, 4, 2, 3)), ((0, 3, 1, 2), (1, 4, 3, 2))):
        bad = abi.to_ctypes(abi.TransposeParams(abi.Dims(*perm)))
        assert lib.ereid_transpose_s8(C.byref(bad), C.byref(in_d), _ptr(x),
                                      C.byref(abi.to_ctypes(abi.Dims(*out))), _ptr(y)) == -1, perm
    assert lib.ereid_transpose_s8(C.byref(ok), C.byref(in_d), None, C.byref(abi.to_ctypes(abi.Dims(1, 4, 2, 3))),
                                  _ptr(y)) == -1


def test_relu_and_prelu_kernels_refuse_out_of_range_parameters(lib):
    x = np.zeros(6, np.int8)
    y = np.zeros(6, np.int8)
    good = abi.ReluParams(input_offset=3, output_offset=-2, quant=abi.PerTensorQuant(1 << 30, 1),
                          activation=abi.Activation(-128, 127))
    assert lib.ereid_relu_s8(C.byref(abi.to_ctypes(good)), 6, _ptr(x), _ptr(y)) == 0
    for bad in (abi.ReluParams(3, -2, abi.PerTensorQuant(1 << 30, 31), abi.Activation(-128, 127)),
                abi.ReluParams(300, -2, abi.PerTensorQuant(1 << 30, 1), abi.Activation(-128, 127)),
                abi.ReluParams(3, -2, abi.PerTensorQuant(1 << 30, 1), abi.Activation(10, 5))):
        assert lib.ereid_relu_s8(C.byref(abi.to_ctypes(bad)), 6, _ptr(x), _ptr(y)) == -1, bad
    d = C.byref(abi.to_ctypes(abi.Dims(1, 1, 2, 3)))
    alpha = np.ones(3, np.int8)
    ad = C.byref(abi.to_ctypes(abi.Dims(1, 1, 1, 3)))
    p = abi.PreluParams(input_offset=1, alpha_offset=0, output_offset=0, positive_quant=abi.PerTensorQuant(1 << 30, 0),
                        negative_quant=abi.PerTensorQuant(1 << 30, -3))
    assert lib.ereid_prelu_s8(C.byref(abi.to_ctypes(p)), d, _ptr(x), ad, _ptr(alpha), d, _ptr(y)) == 0
    bad_alpha = C.byref(abi.to_ctypes(abi.Dims(1, 1, 1, 2)))   # does not broadcast to 3 channels
    assert lib.ereid_prelu_s8(C.byref(abi.to_ctypes(p)), d, _ptr(x), bad_alpha, _ptr(alpha), d, _ptr(y)) == -1
    p_bad = abi.PreluParams(1, 400, 0, abi.PerTensorQuant(1 << 30, 0), abi.PerTensorQuant(1 << 30, -3))
    assert lib.ereid_prelu_s8(C.byref(abi.to_ctypes(p_bad)), d, _ptr(x), ad, _ptr(alpha), d, _ptr(y)) == -1


def test_float_relu_kernel_keeps_negative_zero_and_nan_like_litert(lib):
    """LiteRT's float RELU/RELU6 pass -0.0 and NaN through (checked against the interpreter by
    test_coverage_model_bit_exact_on_host_under_sanitizers's float models and here directly)."""
    from edgereid.tflite import reference_runner

    values = np.array([-0.0, np.nan, -3.0, 7.0, 0.5, -0.5, 6.0, np.inf], np.float32)
    for kind, params in (("RELU", abi.FloatClampParams(0.0, 0.0, 0)), ("RELU6", abi.FloatClampParams(0.0, 6.0, 1)),
                         ("RELU_N1_TO_1", abi.FloatClampParams(-1.0, 1.0, 1))):
        net = NetBuilder(0)
        x = net.input("x", (8,), "float32")
        with reference_runner(net.finish([x], [net.unary(kind, x)], kind)) as runner:
            want = runner.run([values])[0]
        got = np.zeros(8, np.float32)
        assert lib.ereid_relu_f32(C.byref(abi.to_ctypes(params)), 8, _ptr(values), _ptr(got)) == 0
        assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist(), kind


@needs_host_gcc
@pytest.mark.parametrize("kind", ["ADD", "MUL"])
def test_float_add_mul_clamp_overflow_to_flt_max_like_litert(kind, tmp_path):
    """With no fused activation LiteRT still clamps a float ADD/MUL to [-FLT_MAX, FLT_MAX]: an
    overflow or an infinite input gives FLT_MAX, not inf; -0.0 keeps its sign."""
    from edgereid.firmware import build_firmware
    from edgereid.firmware.bitexact import run_firmware
    from edgereid.tflite import reference_runner

    net = NetBuilder(0)
    x = net.input("x", (4,), "float32")
    c = net.b.tensor("c", (4,), "float32", data=np.array([3e38, -3e38, 1.0, 2.0], np.float32))
    path = tmp_path / "m.tflite"
    path.write_bytes(net.finish([x], [net.binary(kind, x, c, None)], kind))
    values = np.array([3e38, -3e38, np.inf, -0.0], np.float32)
    with reference_runner(path) as runner:
        want = runner.run([values])[0]
    assert np.isfinite(want[:3]).all()
    exe = build_firmware(path, "host", tmp_path / "fw").executable
    got = run_firmware(exe, values, want, tmp_path)
    assert got.view(np.uint32).tolist() == want.view(np.uint32).tolist()
