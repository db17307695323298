"""The op registry: shapes, MACs, weight bytes per precision, builder specs, .tflite reading, layering."""
import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest

from edgereid.errors import LatencyError, ModelError, TFLiteError
from edgereid.latency.micromodels import write_model
from edgereid.latency.tflite_ops import read_kernels
from edgereid.ops import OPS, Kernel, Precision, micro_model_spec, op_kind
from edgereid.tflite.ir import Graph, Op, Tensor

ROOT = Path(__file__).resolve().parent.parent
I8, I4, B1 = Precision.INT8, Precision.INT4, Precision.BINARY


def test_precision_values_bits_and_parsing():
    assert [p.value for p in Precision] == ["int8", "int4", "binary"]
    assert [p.weight_bits for p in Precision] == [8, 4, 1]
    assert Precision.parse("int4") is I4 and Precision.parse(B1) is B1 and str(I8) == "int8"
    with pytest.raises(ModelError, match=r"^precision is 'INT8'; expected one of int8, int4, binary$"):
        Precision.parse("INT8")
    with pytest.raises(LatencyError, match=r"^blocks\.x is 8; expected one of int8, int4, binary$"):
        Precision.parse(8, "blocks.x", LatencyError)
    with pytest.raises(ModelError, match=r"kernel CONV_2D: precision is 'float32'"):
        Kernel("CONV_2D", 4, 4, 8, 8, precision="float32")


# (kernel, output shape, MACs, weight count, weight bytes at int8 / int4 / binary, bias bytes at int8 / binary)
CASES = [
    # 3x3 stride-2 stem conv, 32x16x3 -> 16: binary packs 3 input channels into one 32-bit word per tap
    (Kernel.of("CONV_2D", (32, 16, 3), 16, kernel=3, stride=2), (16, 8, 16), 16 * 8 * 16 * 9 * 3,
     432, (432, 216, 4 * 16 * 9 * 1), (64, 128)),
    # odd weight count: int4 rounds up to whole bytes
    (Kernel.of("CONV_2D", (4, 4, 3), 5), (4, 4, 5), 4 * 4 * 5 * 3, 15, (15, 8, 4 * 5 * 1), (20, 40)),
    # 1x1 conv, 64 -> 8: two words per output channel; 33 channels also need two, 32 only one
    (Kernel.of("CONV_2D", (8, 8, 64), 8), (8, 8, 8), 8 * 8 * 8 * 64, 512, (512, 256, 4 * 8 * 2), (32, 64)),
    (Kernel.of("CONV_2D", (8, 8, 33), 8), (8, 8, 8), 8 * 8 * 8 * 33, 264, (264, 132, 4 * 8 * 2), (32, 64)),
    (Kernel.of("CONV_2D", (8, 8, 32), 8), (8, 8, 8), 8 * 8 * 8 * 32, 256, (256, 128, 4 * 8 * 1), (32, 64)),
    # 5x5 depthwise, one filter per channel: binary = one word per tap and channel
    (Kernel.of("DEPTHWISE_CONV_2D", (8, 4, 48), 0, kernel=5), (8, 4, 48), 8 * 4 * 48 * 25, 1200,
     (1200, 600, 4 * 48 * 25), (192, 384)),
    # FC reads its input flattened: 4x2x24 = 192 inputs, 6 words per output
    (Kernel.of("FULLY_CONNECTED", (4, 2, 24), 64), (1, 1, 64), 192 * 64, 12288, (12288, 6144, 4 * 64 * 6),
     (256, 512)),
    # weightless ops: element operations, no weights at any precision
    (Kernel.of("ADD", (8, 4, 24), 24), (8, 4, 24), 768, 0, (0, 0, 0), (0, 0)),
    (Kernel.of("MEAN", (8, 4, 24), 24), (1, 1, 24), 768, 0, (0, 0, 0), (0, 0)),
    (Kernel.of("MAX_POOL_2D", (9, 9, 4), 4, kernel=2, stride=2), (4, 4, 4), 324, 0, (0, 0, 0), (0, 0)),
    (Kernel("AVERAGE_POOL_2D", 9, 9, 4, 4, 3, 3, 2, 2), (5, 5, 4), 324, 0, (0, 0, 0), (0, 0)),
    (Kernel("SOFTMAX", 1, 1, 10, 10), (1, 1, 10), 10, 0, (0, 0, 0), (0, 0)),   # not registered: the base kind
]


@pytest.mark.parametrize("kernel, shape, macs, count, weights, bias", CASES, ids=lambda v: getattr(v, "op", None))
def test_registry_shapes_macs_and_weight_bytes(kernel, shape, macs, count, weights, bias):
    kind = kernel.kind
    assert kernel.output_shape == shape and (kernel.out_h, kernel.out_w) == shape[:2]
    assert kernel.macs == macs and kind.weight_count(kernel) == count
    assert tuple(kind.weight_bytes(kernel, p) for p in (I8, I4, B1)) == weights
    assert weights[1] == math.ceil(count / 2)
    assert (kind.bias_bytes(kernel, I8), kind.bias_bytes(kernel, B1)) == bias
    assert kind.bias_bytes(kernel, I4) == bias[0]
    assert kernel.output_bytes == shape[0] * shape[1] * shape[2]
    # the kernel's own weight_bytes is at its own precision, bias included
    for p, w in zip((I8, I4, B1), weights):
        k = Kernel(**dict(kernel.to_dict(), precision=p))
        assert k.weight_bytes == w + kind.bias_bytes(kernel, p)
    assert kernel.input_bytes == (2 if kernel.op == "ADD" else 1) * kernel.in_h * kernel.in_w * kernel.in_c


def test_layer_configs_are_what_the_tables_key():
    assert Kernel.of("MEAN", (8, 4, 24), 99).key() == "MEAN/8x4x24/o24/k8x4/s1x1/g1/VALID/int8/NONE"
    assert Kernel.of("DEPTHWISE_CONV_2D", (16, 8, 32), 0, 5, 2).key() == \
        "DEPTHWISE_CONV_2D/16x8x32/o32/k5x5/s2x2/g32/SAME/int8/NONE"
    assert Kernel.of("FULLY_CONNECTED", (1, 1, 96), 128, precision="int4").key() == \
        "FULLY_CONNECTED/1x1x96/o128/k1x1/s1x1/g1/SAME/int4/NONE"
    assert set(OPS) >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN", "MAX_POOL_2D",
                        "AVERAGE_POOL_2D", "CUSTOM:LceBconv2d"}
    assert op_kind("SOFTMAX").name == "SOFTMAX" and not op_kind("SOFTMAX").weighted


BUILDABLE = [
    Kernel.of("CONV_2D", (9, 7, 5), 6, kernel=3, stride=2),
    Kernel("CONV_2D", 9, 7, 5, 6, 3, 1, 1, 2, padding="VALID", act="RELU6"),
    Kernel.of("DEPTHWISE_CONV_2D", (8, 8, 12), 0, kernel=5),
    Kernel("FULLY_CONNECTED", 1, 1, 40, 16, act="RELU"),
    Kernel.of("ADD", (4, 4, 8), 8),
    Kernel.of("MEAN", (6, 3, 16), 16),
    Kernel.of("MAX_POOL_2D", (9, 9, 4), 4, kernel=2, stride=2),
    Kernel("AVERAGE_POOL_2D", 9, 9, 4, 4, 3, 3, 2, 2, padding="SAME"),
]


@pytest.mark.parametrize("kernel", BUILDABLE, ids=lambda k: k.key())
def test_micro_model_reads_back_as_the_same_kernel(tmp_path, kernel):
    """builder spec -> .tflite -> reader -> registry's key fields: the kernel it was made from."""
    path = write_model(micro_model_spec(kernel, seed=1), tmp_path / "k.tflite")
    (fused,) = read_kernels(path)
    assert fused.kernel == kernel


def test_weight_precisions_have_a_builder_spec_where_a_runtime_has_the_kernel(tmp_path):
    # binary: CONV_2D only (LceQuantize + LceBconv2d), read back as the binary CONV_2D it was made from
    for k, act in ((1, "NONE"), (3, "RELU")):
        kernel = dataclasses.replace(Kernel.of("CONV_2D", (8, 4, 40), 24, kernel=k, precision=B1), act=act)
        (fused,) = read_kernels(write_model(micro_model_spec(kernel, seed=1), tmp_path / f"b{k}.tflite"))
        assert fused.kernel == kernel and fused.layers[0].endswith("CUSTOM:LceQuantize")
    for op in ("DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        with pytest.raises(ModelError, match=f"{B1} kernels cannot be built"):
            micro_model_spec(Kernel.of(op, (8, 8, 8), 8, precision=B1))
    with pytest.raises(ModelError, match=f"{I4} kernels cannot be built"):   # int4 is a weight precision
        micro_model_spec(Kernel.of("ADD", (8, 8, 8), 8, precision=I4))
    for op, k in (("CONV_2D", 3), ("DEPTHWISE_CONV_2D", 3), ("FULLY_CONNECTED", 1)):  # INT4 filters, int8 activations
        kernel = Kernel.of(op, (8, 8, 8), 8, kernel=k, precision=I4)
        (fused,) = read_kernels(write_model(micro_model_spec(kernel, seed=1), tmp_path / f"{op}.tflite"))
        assert fused.kernel == kernel
    with pytest.raises(ModelError, match="no builder for kernel RESHAPE"):
        micro_model_spec(Kernel("RESHAPE", 1, 1, 8, 8))
    with pytest.raises(ModelError, match="grouped CONV_2D"):
        micro_model_spec(Kernel("CONV_2D", 4, 4, 8, 8, groups=2))


def _graph(kind, tensors, inputs, options):
    ts = [Tensor(index=i, name=f"t{i}", shape=shape, dtype=dtype) for i, (shape, dtype) in enumerate(tensors)]
    return Graph(tensors=ts, ops=[Op(0, kind, tuple(inputs), (len(ts) - 1,), options)], inputs=(0,),
                 outputs=(len(ts) - 1,), source="m.tflite")


def _read(graph):
    op = graph.ops[0]
    return Kernel(op=op.kind, **op_kind(op.kind).read(op, graph))


def test_reading_binary_int4_and_float_ops():
    # LceBconv2d: bitpacked input (2 words = 64 channels), filter int32 [Cout, KH, KW, words]
    g = _graph("CUSTOM:LceBconv2d", [((1, 16, 16, 2), "int32"), ((8, 3, 3, 2), "int32"), ((8,), "float32"),
                                     ((8,), "float32"), ((1, 7, 7, 8), "int8")], (0, 1, 2, 3),
               {"channels_in": 64, "stride_height": 2, "stride_width": 2, "padding": 1,
                "fused_activation_function": 1})        # LCE's FlexBuffer options: enums as integers
    k = _read(g)
    assert (k.precision, k.in_c, k.groups, k.kernel_h, k.stride_h, k.padding, k.act) == \
        (B1, 64, 1, 3, 2, "VALID", "RELU")
    assert k.output_shape == (7, 7, 8) and k.kind.weight_bytes(k) == 8 * 3 * 3 * 2 * 4 == 576
    # without options the packed input bounds the channels: 32 per word
    g = _graph("CUSTOM:LceBconv2d", [((1, 8, 8, 1), "int32"), ((4, 1, 1, 1), "int32"), ((1, 8, 8, 4), "int8")],
               (0, 1), {})
    assert _read(g).in_c == 32
    # int4 weights make an int4 kernel
    g = _graph("CONV_2D", [((1, 8, 8, 16), "int8"), ((4, 1, 1, 16), "int4"), ((4,), "int32"),
                           ((1, 8, 8, 4), "int8")], (0, 1, 2),
               {"stride_h": 1, "stride_w": 1, "padding": "SAME", "fused_activation_function": "RELU"})
    k = _read(g)
    assert (k.precision, k.act, k.kind.weight_bytes(k)) == (I4, "RELU", 32)
    # float-only ops have no table precision: refused, naming the op
    g = _graph("SOFTMAX", [((1, 10), "float32"), ((1, 10), "float32")], (0,), {"beta": 1.0})
    with pytest.raises(TFLiteError, match=r"m.tflite: op 0 \(SOFTMAX\) reads and writes float32 tensors only"):
        _read(g)
    g = _graph("CONV_2D", [((1, 8, 8, 16), "float32"), ((4, 1, 1, 16), "float32"), ((1, 8, 8, 4), "float32")],
               (0, 1), {})
    with pytest.raises(TFLiteError, match=r"op 0 \(CONV_2D\) has float32 weights"):
        _read(g)
    # a QUANTIZE from a float input is an int8 kernel (its output is int8)
    g = _graph("QUANTIZE", [((1, 4, 4, 3), "float32"), ((1, 4, 4, 3), "int8")], (0,), {})
    assert _read(g).precision is I8


def _stage_imports(folder: Path) -> set[str]:
    """Every edgereid module imported anywhere in `folder`'s files (top level or not)."""
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgereid"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("edgereid"))
    return found


def test_layering_ops_at_the_bottom_search_space_below_latency():
    def stages(modules):
        return {m.split(".")[1] for m in modules if m.count(".")}

    assert stages(_stage_imports(ROOT / "edgereid" / "ops")) <= {"errors", "ops", "tflite"}
    assert stages(_stage_imports(ROOT / "edgereid" / "search_space")) <= {"errors", "atomic", "ops", "tflite",
                                                                           "search_space"}
    loaded = subprocess.run([sys.executable, "-c", "import sys, edgereid.search_space; "
                             "print(' '.join(m for m in sys.modules if m.startswith('edgereid.')))"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert "edgereid.search_space" in loaded and not [m for m in loaded if m.startswith("edgereid.latency")]
