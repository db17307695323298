"""edgereid.tflite: IR round trip (custom ops, INT4, bitpacked int32), op naming, metadata,
float audit, seeded inputs, and the reference runners (LiteRT BUILTIN_REF, Larq Compute Engine)."""
import ast
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from edgereid.errors import TFLiteError  # noqa: E402
from edgereid.tflite import (LceRunner, LiteRTRunner, check_no_float_ops, custom_codes, lce_available,  # noqa: E402
                             pack_bits, pack_int4, parse_graph, read_graph, read_metadata, reference_runner,
                             seeded_inputs, unpack_bits, unpack_int4, write_graph)
from edgereid.tflite import flatbuf  # noqa: E402
from edgereid.tflite.builder import ModelBuilder, build_model  # noqa: E402
from edgereid.tflite.schema import S, options_type  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
needs_lce = pytest.mark.skipif(not lce_available(), reason="Larq Compute Engine runtime not installed (tools/setup.sh)")

BCONV_OPTIONS = {"channels_in": 40, "dilation_height_factor": 1, "dilation_width_factor": 1,
                 "fused_activation_function": 0, "pad_values": 0, "padding": 1, "stride_height": 1,
                 "stride_width": 1}


def _binary_conv_model(seed: int = 0, cin: int = 40, cout: int = 5, k: int = 3, hw: int = 6):
    """float x -> LceQuantize -> LceBconv2d (VALID, float out); also an INT4 constant riding along."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder(seed)
    x = b.tensor("x", (1, hw, hw, cin), "float32")
    packed = b.tensor("x_packed", (1, hw, hw, (cin + 31) // 32), "int32")
    weights = np.where(rng.integers(0, 2, (cout, k, k, cin)) == 1, -1.0, 1.0).astype(np.float32)
    filt = b.tensor("filter", (cout, k, k, (cin + 31) // 32), "int32", data=pack_bits(weights))
    mult = b.tensor("mult", (cout,), "float32", data=rng.uniform(0.1, 2.0, cout))
    bias = b.tensor("bias", (cout,), "float32", data=rng.uniform(-3, 3, cout))
    y = b.tensor("y", (1, hw - k + 1, hw - k + 1, cout), "float32")
    b.tensor("w4", (2, 3), "int4", scale=[0.5, 0.25], zero_point=0, data=[[1, -2, 3], [-8, 7, 0]],
             quantized_dimension=0)
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    b.op("CUSTOM:LceBconv2d", [packed.index, filt.index, mult.index, bias.index, -1], [y.index],  # no threshold
         dict(BCONV_OPTIONS, channels_in=cin))
    graph = b.graph([x.index], [y.index], description="binary conv test")
    graph.metadata["notes"] = b'{"a": 1}'
    return graph, weights


# ---- IR, writer, reader ------------------------------------------------------------------

def test_int4_packs_two_per_byte_low_nibble_first():
    assert pack_int4([1, -2, 3]) == bytes([0xE1, 0x03])
    values = np.arange(-8, 8).repeat(3)[:47]
    np.testing.assert_array_equal(unpack_int4(pack_int4(values), values.size), values)
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        pack_int4([8])


def test_bitpacking_follows_lce_layout():
    x = np.ones((2, 40), np.float32)
    x[0, 0] = x[0, 33] = -1.0
    x[1, 31] = -0.5
    x[1, 1] = -0.0                       # LceQuantize: -0 counts as +1 (bit = x < 0)
    packed = pack_bits(x)
    assert packed.dtype == np.int32 and packed.shape == (2, 2)
    assert packed[0].tolist() == [1, 2]                          # channel 33 -> word 1, bit 1
    assert packed[1].tolist() == [np.int32(-2 ** 31), 0]         # bit 31 set, unused bits of word 1 zero
    np.testing.assert_array_equal(unpack_bits(packed, 40), np.where(x < 0, -1.0, 1.0))


def test_round_trip_custom_ops_int4_bitpacked_and_metadata():
    graph, weights = _binary_conv_model()
    data = write_graph(graph)
    back = parse_graph(data, "rt.tflite")
    assert [op.kind for op in back.ops] == ["CUSTOM:LceQuantize", "CUSTOM:LceBconv2d"]
    assert back.ops[0].options == {} and back.ops[1].options == BCONV_OPTIONS
    assert back.ops[1].is_custom and back.ops[1].custom_code == "LceBconv2d" and back.ops[1].version == 1
    assert back.metadata == {"notes": b'{"a": 1}'} and back.description == "binary conv test"
    for old, new in zip(graph.tensors, back.tensors):
        assert (new.name, new.shape, new.dtype, new.data, new.scales, new.zero_points, new.quantized_dimension) == \
            (old.name, old.shape, old.dtype, old.data, old.scales, old.zero_points, old.quantized_dimension)
    w4 = next(t for t in back.tensors if t.name == "w4")
    assert w4.dtype == "int4" and len(w4.data) == 3 and w4.nbytes == 3
    assert w4.array().tolist() == [[1, -2, 3], [-8, 7, 0]] and w4.scales == (0.5, 0.25)
    filt = next(t for t in back.tensors if t.name == "filter")
    np.testing.assert_array_equal(unpack_bits(filt.array(), 40), weights)
    assert write_graph(back) == data                         # the same graph gives the same bytes
    # What other tools see in the file: the schema's own INT4 type and FlexBuffer custom options.
    model = flatbuf.load(data)
    sg = model.subgraphs[0]
    assert sg.tensors[w4.index].type == S.TensorType.INT4
    bconv = sg.operators[1]
    assert bconv.customOptionsFormat == S.CustomOptionsFormat.FLEXBUFFERS
    from flatbuffers import flexbuffers

    assert flexbuffers.Loads(bytes(bconv.customOptions)) == BCONV_OPTIONS
    assert flatbuf.op_name(model, bconv) == "CUSTOM:LceBconv2d"
    assert custom_codes(data) == {"LceQuantize", "LceBconv2d"}


def test_builtin_round_trip_keeps_options_and_versions():
    spec = {"name": "mix", "seed": 2, "inputs": [{"name": "x", "shape": [1, 8, 8, 3], "dtype": "float32"}],
            "ops": [{"op": "CONV_2D", "filters": 4, "stride": [2, 1], "activation": "RELU6"},
                    {"op": "MAX_POOL_2D", "kernel": [2, 2], "stride": [2, 2]},
                    {"op": "RESHAPE", "shape": [1, -1]}], "float_output": True}
    data = build_model(spec)
    graph = parse_graph(data)
    assert [op.kind for op in graph.ops] == ["QUANTIZE", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "DEQUANTIZE"]
    conv, pool, reshape = graph.ops[1:4]
    assert conv.version == 3 and conv.options["stride_h"] == 2 and conv.options["stride_w"] == 1
    assert conv.options["fused_activation_function"] == "RELU6" and conv.options["padding"] == "SAME"
    assert pool.options["filter_height"] == 2 and reshape.options["new_shape"] == (1, 32)
    assert write_graph(graph) == data
    assert options_type("MAX_POOL_2D") == "Pool2DOptions" and options_type("MEAN") == "ReducerOptions"
    assert options_type("CONV_2D") == "Conv2DOptions" and options_type("LOGISTIC") is None


def test_writer_refuses_what_the_schema_cannot_hold():
    b = ModelBuilder(0)
    x = b.tensor("x", (1, 4), "int8", scale=0.1)
    y = b.tensor("y", (1, 4), "int8", scale=0.1)
    b.op("SOFTMAX", [x.index], [y.index], {"betta": 1.0})
    with pytest.raises(TFLiteError, match=r"op 0: SOFTMAX option 'betta' is not a field of SoftmaxOptions"):
        b.finish([x.index], [y.index])
    b.ops[0] = b.ops[0].__class__(0, "NOT_AN_OP", (x.index,), (y.index,))
    with pytest.raises(TFLiteError, match="unknown builtin op 'NOT_AN_OP'"):
        b.finish([x.index], [y.index])


def test_reader_refuses_damaged_files(tmp_path):
    data = build_model({"name": "m", "inputs": [{"name": "x", "shape": [1, 4]}],
                        "ops": [{"op": "FULLY_CONNECTED", "units": 3}]})
    with pytest.raises(TFLiteError, match="not a TFLite model"):
        parse_graph(b"PK\x03\x04" + bytes(64), "zip.tflite")
    with pytest.raises(TFLiteError, match="half.tflite"):
        parse_graph(data[: len(data) // 2], "half.tflite")
    with pytest.raises(TFLiteError, match="no such file"):
        read_graph(tmp_path / "missing.tflite")


# ---- metadata and the float-op audit --------------------------------------------------------------

def test_metadata_round_trip(tmp_path):
    data = build_model({"name": "m", "inputs": [{"name": "x", "shape": [1, 4]}],
                        "ops": [{"op": "FULLY_CONNECTED", "units": 3}]})
    model = flatbuf.load(data)
    flatbuf.set_metadata(model, flatbuf.METADATA_NAME, b'{"model_name": "m", "input_size": [4, 2]}')
    flatbuf.set_metadata(model, flatbuf.METADATA_NAME, b'{"model_name": "m2", "input_size": [4, 2]}')  # replaces
    path = tmp_path / "m.tflite"
    path.write_bytes(flatbuf.dump(model))
    assert read_metadata(path) == {"model_name": "m2", "input_size": [4, 2]}
    assert list(read_graph(path).metadata) == ["edgereid"]
    with pytest.raises(TFLiteError, match="no 'other' metadata entry"):
        read_metadata(path, "other")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(data)
    with pytest.raises(TFLiteError, match="no 'edgereid' metadata entry"):
        read_metadata(plain)


def test_float_audit_names_each_float_op(tmp_path):
    int8_only = tmp_path / "int8.tflite"
    int8_only.write_bytes(build_model({"name": "q", "inputs": [{"name": "x", "shape": [1, 4, 4, 2]}],
                                       "ops": [{"op": "CONV_2D", "filters": 2}]}))
    check_no_float_ops(int8_only)
    mixed = tmp_path / "mixed.tflite"
    mixed.write_bytes(build_model({"name": "f", "inputs": [{"name": "x", "shape": [1, 4, 4, 2], "dtype": "float32"}],
                                   "ops": [{"op": "CONV_2D", "filters": 2}], "float_output": True}))
    floats = flatbuf.float_ops(flatbuf.load(mixed.read_bytes()))
    assert floats == ["op 0 QUANTIZE runs in float32: input tensor 0 'x' is float32",
                      "op 2 DEQUANTIZE runs in float32: output tensor 5 't0_f' is float32"]
    with pytest.raises(TFLiteError, match=r"mixed.tflite: 2 float op\(s\): op 0 QUANTIZE"):
        check_no_float_ops(mixed)


# ---- seeded inputs ------------------------------------------------------------------------------

def test_seeded_inputs_are_one_fixed_stream():
    specs = [((1, 3, 4), np.int8), ((2, 5), "float32"), ((7,), np.uint8), ((3,), np.bool_)]
    a, b = seeded_inputs(specs, 3, seed=4), seeded_inputs(specs, 3, seed=4)
    assert len(a) == 3 and all(len(s) == 4 for s in a)
    for sa, sb in zip(a, b):
        for x, y in zip(sa, sb):
            np.testing.assert_array_equal(x, y)
    assert [x.dtype for x in a[0]] == [np.int8, np.float32, np.uint8, np.bool_]
    assert not np.array_equal(seeded_inputs(specs, 1, seed=5)[0][0], a[0][0])
    # The stream HIL and the bit-exact checks compare on: set by set, input by input.
    rng = np.random.default_rng(4)
    first = rng.integers(-128, 127, size=(1, 3, 4), dtype=np.int8, endpoint=True)
    second = rng.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_array_equal(a[0][0], first)
    np.testing.assert_array_equal(a[0][1], second)
    wide = seeded_inputs([((4096,), np.int8)], 1, seed=0)[0][0]
    assert wide.min() == -128 and wide.max() == 127
    with pytest.raises(TFLiteError, match="cannot draw seeded inputs of dtype"):
        seeded_inputs([((2,), np.complex64)], 1)


# ---- reference runners ----------------------------------------------------------------------------

def test_litert_reference_runner_on_a_builder_model():
    data = build_model({"name": "pool", "inputs": [{"name": "x", "shape": [1, 4, 6, 3], "scale": 0.1,
                                                    "zero_point": -5}],
                        "ops": [{"op": "MAX_POOL_2D", "kernel": [2, 3], "stride": [2, 3], "padding": "VALID"}]})
    runner = reference_runner(data)
    assert isinstance(runner, LiteRTRunner) and runner.name == "LiteRT BUILTIN_REF"
    (spec,), (out,) = runner.inputs, runner.outputs
    assert spec.shape == (1, 4, 6, 3) and spec.dtype == np.int8 and spec.zero_point == -5
    assert spec.scale == pytest.approx(0.1) and out.shape == (1, 2, 2, 3)
    (x,) = seeded_inputs(runner.inputs, 1, seed=0)[0]
    y = runner.run([x])[0]
    np.testing.assert_array_equal(y, x.reshape(1, 2, 2, 2, 3, 3).max(axis=(2, 4)))
    with pytest.raises(TFLiteError, match="input 0"):
        runner.run([x.astype(np.float32)])
    with pytest.raises(TFLiteError, match="LiteRT cannot load"):
        LiteRTRunner(b"not a model at all, but long enough")


def _quantize_dequantize(input_dtype: str, zero_point: int = 0) -> bytes:
    b = ModelBuilder(0)
    x = b.tensor("x", (1, 3, 5, 40), input_dtype, **({"scale": 0.5, "zero_point": zero_point}
                                                     if input_dtype == "int8" else {}))
    packed = b.tensor("packed", (1, 3, 5, 2), "int32")
    y = b.tensor("y", (1, 3, 5, 40), "float32")
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    b.op("CUSTOM:LceDequantize", [packed.index], [y.index])
    return b.finish([x.index], [y.index])


def test_lce_model_without_runtime_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEREID_LCE_RUNTIME", str(tmp_path))
    assert not lce_available()
    with pytest.raises(TFLiteError, match=r"holds Larq Compute Engine ops \(LceDequantize, LceQuantize\).*"
                                          r"pip install --no-deps"):
        reference_runner(_quantize_dequantize("float32"))


@needs_lce
def test_lce_runner_quantize_dequantize_float():
    x = np.random.default_rng(3).standard_normal((1, 3, 5, 40)).astype(np.float32)
    x[0, 0, 0, :5] = [0.0, -0.0, np.nan, -1e-30, np.inf]
    with reference_runner(_quantize_dequantize("float32")) as runner:
        assert isinstance(runner, LceRunner) and runner.inputs[0].dtype == np.float32
        y = runner.run([x])[0]
    expected = np.where(x < 0, -1.0, 1.0).astype(np.float32)      # bit = x < 0: +0, -0 and NaN give +1
    np.testing.assert_array_equal(y, expected)


@needs_lce
def test_lce_runner_quantize_int8_and_packed_output():
    (q,) = seeded_inputs([((1, 3, 5, 40), np.int8)], 1, seed=1)[0]
    with LceRunner(_quantize_dequantize("int8", zero_point=-3)) as runner:
        y = runner.run([q])[0]
        with pytest.raises(TFLiteError, match="input 0: float32"):
            runner.run([q.astype(np.float32)])
    np.testing.assert_array_equal(y, np.where(q < -3, -1.0, 1.0).astype(np.float32))   # bit = q < zero point
    b = ModelBuilder(0)
    x = b.tensor("x", (1, 3, 5, 40), "float32")
    packed = b.tensor("packed", (1, 3, 5, 2), "int32")
    b.op("CUSTOM:LceQuantize", [x.index], [packed.index])
    xs = np.random.default_rng(2).standard_normal((1, 3, 5, 40)).astype(np.float32)
    with LceRunner(b.finish([x.index], [packed.index])) as runner:
        np.testing.assert_array_equal(runner.run([xs])[0], pack_bits(xs))


@needs_lce
def test_lce_runner_binary_conv_matches_design_semantics():
    graph, weights = _binary_conv_model(seed=5)
    x = np.random.default_rng(6).standard_normal((1, 6, 6, 40)).astype(np.float32)
    with reference_runner(write_graph(graph)) as runner:
        y = runner.run([x])[0]
    tensors = {t.name: t for t in graph.tensors}
    mult, bias = tensors["mult"].array(), tensors["bias"].array()
    signs = np.where(x < 0, -1.0, 1.0)
    kh = kw = 3
    k_taps = kh * kw * 40
    out = np.empty((1, 4, 4, 5), np.float32)
    for i in range(4):
        for j in range(4):
            window = signs[0, i:i + kh, j:j + kw, :]
            a = (window[None] != weights).sum(axis=(1, 2, 3))        # popcount of in XOR filter
            m = np.float32(-np.float64(mult))
            b = np.float32(np.float64(bias) + k_taps * np.float64(mult))
            out[0, i, j] = np.float32(np.float32(2 * a) * m) + b
    np.testing.assert_array_equal(y, out)


# ---- the package's place at the bottom --------------------------------------------------------------

def test_tflite_package_imports_no_stage():
    allowed = {"edgereid.errors", "edgereid.atomic"}
    for path in sorted((REPO / "edgereid" / "tflite").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("edgereid"):
                    assert name in allowed or name.startswith("edgereid.tflite"), f"{path.name} imports {name}"
