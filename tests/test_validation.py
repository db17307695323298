"""A validated IR: what the reader (edgereid.tflite.reader) and the firmware front end
(edgereid.firmware.frontend, lowering.check_op) refuse, each as one line naming the file,
the op, the tensor and the field. Regression tests for issue 15: shape-inconsistent
outputs per op, out-of-range zero points, the 0-byte size wrap, negative indices, a
constant graph input, the resize size tensor, extreme biases and multipliers."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import FirmwareError, TFLiteError
from edgereid.firmware import lower_graph, lowering, plan, read_tflite
from edgereid.tflite import parse_graph, write_graph
from edgereid.tflite.builder import build_model
from edgereid.tflite.ir import MAX_TENSOR_BYTES, Tensor

pytestmark = pytest.mark.unit

X = {"name": "x", "shape": [1, 9, 8, 5], "scale": 0.04, "zero_point": -5}


def _spec(ops, inputs=None, **extra) -> dict:
    return {"name": "m", "seed": 1, "inputs": inputs or [dict(X)], "ops": ops, **extra}


SPECS = {
    "CONV_2D": _spec([{"op": "CONV_2D", "filters": 6, "kernel": 3, "stride": 2, "padding": "SAME"}]),
    "DEPTHWISE_CONV_2D": _spec([{"op": "DEPTHWISE_CONV_2D", "depth_multiplier": 2, "kernel": 3, "padding": "VALID"}]),
    "FULLY_CONNECTED": _spec([{"op": "FULLY_CONNECTED", "units": 9}], [dict(X, shape=[2, 37])]),
    "ADD": _spec([{"op": "ADD", "inputs": ["a", "b"]}],
                 [dict(X, name="a"), dict(X, name="b", shape=[1, 1, 1, 5], zero_point=3)]),
    "MUL": _spec([{"op": "MUL", "inputs": ["a", "b"]}], [dict(X, name="a"), dict(X, name="b", zero_point=3)]),
    "MAX_POOL_2D": _spec([{"op": "MAX_POOL_2D", "kernel": 3, "stride": 2, "padding": "SAME"}]),
    "AVERAGE_POOL_2D": _spec([{"op": "AVERAGE_POOL_2D", "kernel": 3, "stride": 2, "padding": "VALID"}]),
    "MEAN": _spec([{"op": "MEAN", "axis": [1, 2], "keep_dims": False}]),
    "PAD": _spec([{"op": "PAD", "paddings": [[0, 0], [1, 2], [2, 1], [0, 0]]}]),
    "CONCATENATION": _spec([{"op": "CONCATENATION", "inputs": ["a", "b"], "axis": 3}],
                           [dict(X, name="a"), dict(X, name="b", shape=[1, 9, 8, 2])]),
    "RESIZE_NEAREST_NEIGHBOR": _spec([{"op": "RESIZE_NEAREST_NEIGHBOR", "size": [7, 9]}], [dict(X, shape=[1, 3, 4, 5])]),
    "SOFTMAX": _spec([{"op": "SOFTMAX", "beta": 1.0}], [dict(X, shape=[2, 21], scale=0.1)]),
    "L2_NORMALIZATION": _spec([{"op": "L2_NORMALIZATION"}], [dict(X, shape=[3, 32])]),
    "RESHAPE": _spec([{"op": "RESHAPE", "shape": [1, -1]}]),
    "QUANTIZE": _spec([{"op": "MAX_POOL_2D", "kernel": 1, "stride": 1}], [dict(X, dtype="float32")]),
    "DEQUANTIZE": _spec([{"op": "MAX_POOL_2D", "kernel": 1, "stride": 1}], float_output=True),
}


def _graph(kind: str):
    return parse_graph(build_model(SPECS[kind]), "m.tflite")


def _op(graph, kind: str):
    return next(op for op in graph.ops if op.kind == kind)


def _set_tensor(graph, index: int, **changes):
    graph.tensors[index] = dataclasses.replace(graph.tensors[index], **changes)


def _set_op(graph, op, **changes):
    graph.ops[op.index] = dataclasses.replace(op, **changes)


def _write(tmp_path: Path, graph, name: str = "m.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(write_graph(graph))
    return path


def _refused(tmp_path: Path, graph, pattern: str, error=FirmwareError) -> str:
    """read_tflite of `graph` must fail with one line that names the file and matches `pattern`."""
    path = _write(tmp_path, graph)
    with pytest.raises(error) as err:
        g = read_tflite(path)
        plan(g, lower_graph(g))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    assert re.search(pattern, msg), msg
    return msg


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_spec_is_accepted_as_built(kind, tmp_path):
    g = read_tflite(_write(tmp_path, _graph(kind)))
    plan(g, lower_graph(g))


# ---- shape-inconsistent outputs, per op -------------------------------------------------

def _bigger(shape):
    shape = list(shape)
    shape[-1] += 1
    return tuple(shape)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_declared_output_shape_must_equal_what_the_op_computes(kind, tmp_path):
    """One more element in the declared output: the generated C wrote past the output
    buffer (MEAN, SOFTMAX, FULLY_CONNECTED, L2_NORMALIZATION, DEQUANTIZE) or QUANTIZE read
    past its input; now every op's output shape is computed and compared."""
    g = _graph(kind)
    op = _op(g, kind)
    y = g.tensors[op.outputs[0]]
    _set_tensor(g, y.index, shape=_bigger(y.shape))
    msg = _refused(tmp_path, g, rf"op {op.index} \({kind}\) output 0 tensor {y.index} .*shape: (declared "
                                rf"\[.*\]; the op computes \[.*\]|\[.*\] holds \d+ values; the input .* holds)")
    assert y.name in msg


def test_add_broadcast_output_must_be_the_broadcast_shape(tmp_path):
    g = _graph("ADD")
    op = _op(g, "ADD")
    _set_tensor(g, op.outputs[0], shape=(1, 1, 1, 5))      # the smaller input's shape
    _refused(tmp_path, g, r"broadcast of \[1, 9, 8, 5\] and \[1, 1, 1, 5\]")
    g = _graph("ADD")
    _set_tensor(g, g.inputs[1], shape=(1, 1, 2, 5))       # does not broadcast against [1, 9, 8, 5]
    _refused(tmp_path, g, r"input 1 tensor .*: shape: \[1, 1, 2, 5\] does not broadcast with \[1, 9, 8, 5\]")


def test_reshape_element_count_and_target_shape(tmp_path):
    g = _graph("RESHAPE")
    op = _op(g, "RESHAPE")
    _set_tensor(g, op.outputs[0], shape=(1, 359))
    _refused(tmp_path, g, r"output 0 tensor .*shape: \[1, 359\] holds 359 values; the input \[1, 9, 8, 5\] holds 360")
    g = _graph("RESHAPE")
    op = _op(g, "RESHAPE")
    _set_tensor(g, op.outputs[0], shape=(360, 1))           # same count, not the target [1, 360]
    _refused(tmp_path, g, r"declared \[360, 1\]; the op computes \[1, 360\]")


def test_concatenation_inputs_must_agree_off_axis(tmp_path):
    g = _graph("CONCATENATION")
    _set_tensor(g, g.inputs[1], shape=(1, 9, 7, 2))
    _refused(tmp_path, g, r"input 1 tensor .*: shape: \[1, 9, 7, 2\]; expected the dims of \[1, 9, 8, 5\] except "
                          r"along axis 3")


# ---- RESIZE_NEAREST_NEIGHBOR honours its size tensor ------------------------------------

def test_resize_output_must_follow_the_size_tensor(tmp_path):
    g = _graph("RESIZE_NEAREST_NEIGHBOR")
    op = _op(g, "RESIZE_NEAREST_NEIGHBOR")
    size = g.tensors[op.inputs[1]]
    _set_tensor(g, size.index, data=np.array([5, 9], dtype=np.int32).tobytes())   # declared output stays 7x9
    _refused(tmp_path, g, r"op 0 \(RESIZE_NEAREST_NEIGHBOR\) output 0 .*declared \[1, 7, 9, 5\]; the op computes "
                          r"\[1, 5, 9, 5\] \(the size tensor \[5, 9\]\)")


@pytest.mark.parametrize("case, pattern", [
    ("activation", r"input 1 tensor .*: size: is an activation; expected a constant"),
    ("three_values", r"input 1 tensor .*: shape: \[3\]; expected \[2\]"),
    ("zero", r"size: \[0, 9\]; expected sizes >= 1"),
])
def test_resize_size_tensor_must_be_a_constant_pair(case, pattern, tmp_path):
    g = _graph("RESIZE_NEAREST_NEIGHBOR")
    size = g.tensors[_op(g, "RESIZE_NEAREST_NEIGHBOR").inputs[1]]
    if case == "activation":
        _set_tensor(g, size.index, data=None, is_const=False)
        g.inputs = tuple(g.inputs) + (size.index,)
        g.tensors[size.index] = dataclasses.replace(g.tensors[size.index], dtype="int8", scales=(0.1,),
                                                    zero_points=(0,))
    elif case == "three_values":
        _set_tensor(g, size.index, shape=(3,), data=np.array([7, 9, 1], dtype=np.int32).tobytes())
    else:
        _set_tensor(g, size.index, data=np.array([0, 9], dtype=np.int32).tobytes())
    _refused(tmp_path, g, pattern)


# ---- quantization --------------------------------------------------------------------------

@pytest.mark.parametrize("zero_point", [128, -129, 2**31 - 1, -2**31])
def test_activation_zero_point_outside_int8_is_refused(zero_point, tmp_path):
    g = _graph("L2_NORMALIZATION")
    x = g.tensors[g.inputs[0]]
    _set_tensor(g, x.index, zero_points=(zero_point,))
    _refused(tmp_path, g, rf"tensor {x.index} 'x': quantization zero_point\[0\] is {zero_point}; expected a value "
                          r"in \[-128, 127\] \(int8\)")


@pytest.mark.parametrize("scale", [0.0, -0.5, math.inf, math.nan])
def test_scales_must_be_finite_and_positive(scale, tmp_path):
    g = _graph("CONV_2D")
    w = g.tensors[_op(g, "CONV_2D").inputs[1]]
    scales = list(w.scales)
    scales[2] = scale
    _set_tensor(g, w.index, scales=tuple(scales))
    _refused(tmp_path, g, rf"tensor {w.index} .*: quantization scale\[2\] is .*; expected a finite value > 0")


def test_per_channel_scales_must_match_the_quantized_dimension(tmp_path):
    g = _graph("CONV_2D")
    w = g.tensors[_op(g, "CONV_2D").inputs[1]]
    _set_tensor(g, w.index, scales=w.scales[:5], zero_points=w.zero_points[:5])
    _refused(tmp_path, g, r"5 per-channel scales along quantized_dimension 0 of shape \[6, 3, 3, 5\]; expected 6")
    g = _graph("CONV_2D")
    _set_tensor(g, w.index, quantized_dimension=4)
    _refused(tmp_path, g, r"quantized_dimension is 4; expected an axis of shape \[6, 3, 3, 5\]")


def test_int8_activation_without_quantization_is_refused(tmp_path):
    g = _graph("CONV_2D")
    _set_tensor(g, g.inputs[0], scales=(), zero_points=())
    _refused(tmp_path, g, r"uses tensor 0 'x': quantization has 0 scales; expected one")


# ---- sizes in checked arithmetic -------------------------------------------------------------

def test_sizes_do_not_wrap_to_zero_bytes(tmp_path):
    t = Tensor(index=0, name="big", shape=(65536,) * 4, dtype="int8")
    assert t.num_elements == 2**64 and t.nbytes == 2**64        # int64 np.prod gave 0
    g = _graph("RESHAPE")
    _set_tensor(g, g.inputs[0], shape=(65536,) * 4)
    msg = _refused(tmp_path, g, rf"tensor 0 'x': shape \[65536, 65536, 65536, 65536\] int8 needs {2**64} bytes; "
                                rf"expected at most {MAX_TENSOR_BYTES} bytes per tensor")
    assert "op" not in msg.split(":", 1)[1].split("tensor")[0]


@pytest.mark.parametrize("dim", [-1, 0])
def test_dims_must_be_sizes(dim, tmp_path):
    g = _graph("SOFTMAX")
    _set_tensor(g, g.inputs[0], shape=(2, dim))
    pattern = r"dimension 1 is -1; expected a size >= 0" if dim < 0 else r"expected rank <= 4 and every dimension >= 1"
    _refused(tmp_path, g, pattern)


# ---- indices and graph inputs/outputs ----------------------------------------------------------

def _raw_edit(model_bytes: bytes, edit) -> bytes:
    """The model with `edit(ModelT)` applied through the schema's object API (what the writer refuses)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    edit(model)
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


@pytest.mark.parametrize("index", [-2, -7, 10**6])
def test_negative_or_out_of_range_op_input_is_refused(index, tmp_path):
    def edit(model):
        op = model.subgraphs[0].operators[0]
        op.inputs = [index] + [int(i) for i in op.inputs[1:]]

    path = tmp_path / "m.tflite"
    path.write_bytes(_raw_edit(build_model(SPECS["CONV_2D"]), edit))
    with pytest.raises(FirmwareError) as err:
        read_tflite(path)
    assert re.search(rf"^{re.escape(str(path))}: op 0 \(CONV_2D\) input 0 is tensor index {index}; expected -1 "
                     rf"\(omitted\) or an index in \[0, 3\] \(the model has 4 tensors\)$", str(err.value)), err.value


def test_omitted_required_input_is_refused(tmp_path):
    g = _graph("CONV_2D")
    op = _op(g, "CONV_2D")
    _set_op(g, op, inputs=(op.inputs[0], -1, op.inputs[2]))   # -1 used to index the last tensor
    _refused(tmp_path, g, r"op 0 \(CONV_2D\) input 1 \(filter\) is omitted; expected a tensor")


@pytest.mark.parametrize("role", ["inputs", "outputs"])
def test_negative_graph_io_index_is_refused(role, tmp_path):
    g = _graph("CONV_2D")
    setattr(g, role, (-1,))
    _refused(tmp_path, g, rf"graph {role[:-1]} 0 is tensor index -1; expected an index in \[0, ")


def test_constant_graph_input_is_refused_by_the_reader(tmp_path):
    """LiteRT segfaulted on this (edgereid hil died with rc 139)."""
    g = _graph("CONV_2D")
    w = g.tensors[_op(g, "CONV_2D").inputs[1]]
    g.inputs = (g.inputs[0], w.index)
    path = _write(tmp_path, g)
    with pytest.raises(TFLiteError, match=rf"graph input 1 is tensor {w.index} .*a constant"):
        parse_graph(path.read_bytes(), str(path))
    _refused(tmp_path, g, rf"graph input 1 is tensor {w.index} .*a constant")


def test_int32_graph_output_is_a_clear_error(tmp_path):
    g = _graph("MEAN")
    axis = g.tensors[_op(g, "MEAN").inputs[1]]
    _set_tensor(g, g.outputs[0], dtype="int32", scales=(), zero_points=())
    _refused(tmp_path, g, r"(graph output 0|output 0) .*int32")
    g = _graph("MEAN")
    g.outputs = (axis.index,)
    _refused(tmp_path, g, rf"graph output 0 is tensor {axis.index} .* of dtype int32; expected int8 or float32")


def test_unknown_tensor_type_is_a_clear_error(tmp_path):
    def edit(model):
        model.subgraphs[0].tensors[0].type = 99

    path = tmp_path / "t.tflite"
    path.write_bytes(_raw_edit(build_model(SPECS["CONV_2D"]), edit))
    with pytest.raises(FirmwareError, match=r"tensor 0 'x': type code 99 is not a TFLite tensor type"):
        read_tflite(path)


def test_op_reading_a_tensor_no_earlier_op_writes_is_refused(tmp_path):
    g = parse_graph(build_model(_spec([{"op": "CONV_2D", "filters": 4, "kernel": 1, "name": "c"},
                                       {"op": "MAX_POOL_2D", "kernel": 1, "stride": 1}])), "m.tflite")
    g.ops = [dataclasses.replace(g.ops[1], index=0), dataclasses.replace(g.ops[0], index=1)]
    _refused(tmp_path, g, r"op 0 \(MAX_POOL_2D\) input 0 is tensor .*'c', which no earlier op writes")


# ---- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, key, value, pattern", [
    ("CONV_2D", "stride_h", 0, r"option stride_h is 0; expected an integer in \[1, "),
    ("CONV_2D", "dilation_w_factor", -1, r"option dilation_w_factor is -1; expected an integer in \[1, "),
    ("CONV_2D", "padding", 7, r"option padding is '7'; expected one of SAME, VALID"),
    ("CONV_2D", "fused_activation_function", "TANH", r"option fused_activation_function is 'TANH'"),
    ("DEPTHWISE_CONV_2D", "depth_multiplier", 3, r"option depth_multiplier is 3; expected 2"),
    ("MAX_POOL_2D", "filter_width", 0, r"option filter_width is 0; expected an integer in \[1, "),
    ("AVERAGE_POOL_2D", "stride_w", 0, r"option stride_w is 0"),
    ("SOFTMAX", "beta", float("nan"), r"option beta is nan; expected a finite value > 0"),
    ("SOFTMAX", "beta", 1e-12, r".*beta \* scale \* 2\^26 = .*; expected > 1"),
    ("CONCATENATION", "axis", 4, r"option axis is 4; expected an integer in \[-4, 3\]"),
    ("RESIZE_NEAREST_NEIGHBOR", "half_pixel_centers", True, None),
])
def test_options_are_checked(kind, key, value, pattern, tmp_path):
    g = _graph(kind)
    op = _op(g, kind)
    options = dict(op.options, **{key: value})
    if pattern is None:   # both resize corner modes at once
        options["align_corners"] = True
        pattern = r"options align_corners and half_pixel_centers are both set"
    _set_op(g, op, options=options)
    _refused(tmp_path, g, rf"op {op.index} \({kind}\) " + pattern)


# ---- int32 ranges the kernels compute exactly ------------------------------------------------

@pytest.mark.parametrize("kind", ["CONV_2D", "FULLY_CONNECTED"])
def test_extreme_bias_that_overflows_the_accumulator_is_refused(kind, tmp_path):
    g = _graph(kind)
    b = g.tensors[_op(g, kind).inputs[2]]
    values = np.frombuffer(b.data, dtype=np.int32).copy()
    values[1] = 2**31 - 1
    _set_tensor(g, b.index, data=values.tobytes())
    _refused(tmp_path, g, rf"op 0 \({kind}\) output channel 1: bias\[1\] = 2147483647 with \|sum \(x - zero point\) "
                          r"\* w\| up to \d+ overflows the int32 accumulator")


def test_bias_within_range_is_kept(tmp_path):
    g = _graph("CONV_2D")
    op = _op(g, "CONV_2D")
    b, w = g.tensors[op.inputs[2]], g.tensors[op.inputs[1]]
    x = g.tensors[op.inputs[0]]
    bound = int(np.abs(w.array().astype(np.int64)).reshape(6, -1).sum(axis=1)[1]) * max(127 - x.zero_point,
                                                                                           x.zero_point + 128)
    values = np.frombuffer(b.data, dtype=np.int32).copy()
    values[1] = -(2**31 - 1 - bound)            # exactly at the edge: accepted
    _set_tensor(g, b.index, data=values.tobytes())
    _, shift = lowering.qm.quantize_multiplier(float(x.scale) * float(w.scales[1]) / float(g.tensors[op.outputs[0]].scale))
    assert shift < 0
    read_tflite(_write(tmp_path, g))
    values[1] -= 1
    _set_tensor(g, b.index, data=values.tobytes())
    _refused(tmp_path, g, r"output channel 1: bias\[1\] = -")


def test_multiplier_that_needs_a_shift_past_31_bits_is_refused(tmp_path):
    g = _graph("CONV_2D")
    y = g.tensors[_op(g, "CONV_2D").outputs[0]]
    _set_tensor(g, y.index, scales=(1e-30,))
    _refused(tmp_path, g, r"(multiplier from the scales of .* expected less than 2\^30|too small to express)")


def test_mul_product_that_overflows_after_the_left_shift_is_refused(tmp_path):
    g = _graph("MUL")
    _set_tensor(g, _op(g, "MUL").outputs[0], scales=(1e-9,))
    _refused(tmp_path, g, r"op 0 \(MUL\) product: values up to \d+ scaled by 2\^\d+ .* overflow int32")


def test_l2_normalization_row_too_long_for_the_int32_sum_of_squares(tmp_path):
    g = parse_graph(build_model(_spec([{"op": "L2_NORMALIZATION"}], [dict(X, shape=[1, 33100], zero_point=127)])),
                    "m.tflite")
    _refused(tmp_path, g, r"op 0 \(L2_NORMALIZATION\) input 0 tensor 0 'x': shape: last dimension 33100 with zero "
                          r"point 127: the int32 sum of squares overflows; expected at most 33025")
    g = parse_graph(build_model(_spec([{"op": "L2_NORMALIZATION"}], [dict(X, shape=[1, 33025], zero_point=127)])),
                    "m.tflite")
    read_tflite(_write(tmp_path, g))


def test_add_output_scale_that_breaks_the_smaller_than_one_rescale_is_refused(tmp_path):
    g = _graph("ADD")
    _set_tensor(g, _op(g, "ADD").outputs[0], scales=(1e-9,))
    _refused(tmp_path, g, r"op 0 \(ADD\) output 0 tensor .*quantization.scale: .*ADD needs 2 \* max\(input scales\)")


# ---- registry, planner, flatbuffer verification -------------------------------------------------

def test_every_registered_lowering_has_a_check():
    missing = sorted(kind for kind in lowering.supported_ops() if not lowering.has_check(kind))
    assert not missing, f"register a check (lowering.register_check) for {missing}"


def test_a_lowering_without_a_check_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(lowering._CHECKS, "SOFTMAX", None)
    monkeypatch.delitem(lowering._CHECKS, "SOFTMAX")
    g = _graph("SOFTMAX")
    _refused(tmp_path, g, r"op 0 \(SOFTMAX\) has a lowering but no registered check")


def test_planner_refuses_layers_with_bad_tensor_indices(tmp_path):
    g = read_tflite(_write(tmp_path, _graph("CONV_2D")))
    layers = lower_graph(g)
    layers[0] = dataclasses.replace(layers[0], writes=(-1,))
    with pytest.raises(FirmwareError, match=r"op 0 \(CONV_2D\) writes tensor index -1; expected one in \[0, "):
        plan(g, layers)


def test_int32_kernel_arguments_are_range_checked(tmp_path):
    g = read_tflite(_write(tmp_path, _graph("PAD")))
    layer = lower_graph(g)[0]
    bad = dataclasses.replace(layer, arrays=[dataclasses.replace(layer.arrays[0], ctype="int32_t",
                                                                 values=np.array([2**31], dtype=np.int64))]
                              if layer.arrays else [lowering.CArray("op0_x", "int32_t", np.array([2**31]))])
    with pytest.raises(FirmwareError, match=r"op 0 \(PAD\) kernel argument op0_\w+\[m..\] is 2147483648; "
                                            r"expected an int32"):
        lowering.check_int32_args(g, bad)


def test_flatbuffer_rules_litert_verifies_are_verified(tmp_path):
    """A string without its NUL terminator: Python's flatbuffers reads it, LiteRT's verifier refuses it."""
    data = bytearray(build_model(SPECS["SOFTMAX"]))
    name = b"main\x00"
    at = bytes(data).rindex(name)
    data[at + 4] = ord("X")
    path = tmp_path / "s.tflite"
    path.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match=r"not a valid TFLite flatbuffer \(string at byte \d+ is not NUL terminated\)"):
        read_tflite(path)
    from edgereid.tflite.reference import LiteRTRunner
    with pytest.raises(TFLiteError, match="not a valid Flatbuffer"):
        LiteRTRunner(path)


def test_misaligned_scalar_is_refused(tmp_path):
    from edgereid.tflite.reader import _Invalid, _need
    with pytest.raises(_Invalid, match="not aligned to 4 bytes"):
        _need(bytes(16), 2, 4, 4, "scalar")
    with pytest.raises(_Invalid, match="outside the 16-byte buffer"):
        _need(bytes(16), 14, 4, 2, "scalar")


def test_control_characters_in_names_keep_errors_on_one_line(tmp_path):
    g = _graph("CONV_2D")
    _set_tensor(g, g.inputs[0], name="x\nINJECTED", zero_points=(300,))
    msg = _refused(tmp_path, g, r"tensor 0 'x\\nINJECTED': quantization zero_point")
    assert "INJECTED" in msg


# ---- what LiteRT's Prepare refuses is refused too --------------------------------------------

def test_int8_convolution_without_bias_is_refused(tmp_path):
    g = _graph("CONV_2D")
    op = _op(g, "CONV_2D")
    _set_op(g, op, inputs=op.inputs[:2])
    _refused(tmp_path, g, r"op 0 \(CONV_2D\) has 2 inputs; expected 3")


@pytest.mark.parametrize("key, value, pattern", [
    ("dilation_h_factor", 40000, r"option dilation_h_factor is 40000; expected an integer in \[1, 32767\]"),
    ("quantized_bias_type", 4, r"option quantized_bias_type is 4; expected 0 \(unset\) or 2 \(INT32\)"),
])
def test_conv_options_litert_refuses(key, value, pattern, tmp_path):
    g = _graph("CONV_2D")
    op = _op(g, "CONV_2D")
    _set_op(g, op, options=dict(op.options, **{key: value}))
    _refused(tmp_path, g, pattern)


def test_schema_version_other_than_3_is_refused(tmp_path):
    def edit(model):
        model.version = 4

    path = tmp_path / "v.tflite"
    path.write_bytes(_raw_edit(build_model(SPECS["CONV_2D"]), edit))
    with pytest.raises(FirmwareError, match=r"v.tflite: schema version 4; expected 3"):
        read_tflite(path)


@pytest.mark.parametrize("kind, options, axis, good, bad", [
    ("SQUEEZE", {"squeeze_dims": (0,)}, None, (9, 8, 5), (1, 360)),
    ("SQUEEZE", {}, None, (9, 8, 5), (9, 40)),
    ("EXPAND_DIMS", {}, 1, (9, 1, 8, 5), (9, 8, 1, 5)),
    ("EXPAND_DIMS", {}, -1, (9, 8, 5, 1), (1, 9, 8, 5)),
])
def test_squeeze_and_expand_dims_output_shapes(kind, options, axis, good, bad, tmp_path):
    def graph(shape):
        g = parse_graph(build_model(_spec([{"op": "RESHAPE", "shape": [1, -1]}],
                                          [dict(X, shape=[1, 9, 8, 5] if axis is None else [9, 8, 5])])), "m.tflite")
        op = _op(g, "RESHAPE")
        shape_t = g.tensors[op.inputs[1]]
        if axis is None:
            _set_op(g, op, kind=kind, options=options, inputs=op.inputs[:1])
        else:
            _set_tensor(g, shape_t.index, shape=(1,), data=np.array([axis], dtype=np.int32).tobytes())
            _set_op(g, op, kind=kind, options=options)
        _set_tensor(g, op.outputs[0], shape=shape)
        return g

    from edgereid.firmware.frontend import read_tflite as front
    g = front(_write(tmp_path, graph(good), "good.tflite"))
    assert tuple(g.tensors[g.outputs[0]].shape) == good
    _refused(tmp_path, graph(bad), rf"op 0 \({kind}\) output 0 .*shape: (declared|\[)")


@pytest.mark.parametrize("kind, version", [("AVERAGE_POOL_2D", 515), ("RESHAPE", 2), ("CONV_2D", 0)])
def test_operator_versions_litert_does_not_implement_are_refused(kind, version, tmp_path):
    g = _graph(kind)
    op = _op(g, kind)
    _set_op(g, op, version=version)
    _refused(tmp_path, g, rf"op {op.index} \({kind}\) has operator version {version}; expected 1 to "
                          rf"{lowering.MAX_OP_VERSIONS[kind]}")


def test_fully_connected_bias_scale_must_match_input_times_weight_scale(tmp_path):
    """LiteRT's Prepare refuses per-tensor FULLY_CONNECTED whose bias scale drifts from s_in * s_w."""
    g = _graph("FULLY_CONNECTED")
    b = g.tensors[_op(g, "FULLY_CONNECTED").inputs[2]]
    _set_tensor(g, b.index, scales=(b.scales[0] * 3,))          # drift 0.003 of the output scale: accepted
    read_tflite(_write(tmp_path, g))
    _set_tensor(g, b.index, scales=(b.scales[0] * 1000 / 3,))
    _refused(tmp_path, g, r"op 0 \(FULLY_CONNECTED\) input 2 tensor .*: quantization.scale: .*expected about input "
                          r"scale \* weight scale")
