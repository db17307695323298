"""The LCE-format export of a binary model: op list and options, a round trip torch -> LCE file ->
Larq Compute Engine's interpreter (bit for bit against the int8 emulation, close to torch), and
the one-line errors for models and checkpoints it cannot take."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from edgereid.errors import ExportError
from edgereid.export.lce import (LceEmbedder, calibration_ranges, export_lce, lce_op_counts, mbqm, quantize_image,
                                 quantize_multiplier, torch_signs)
from edgereid.models import build_model
from edgereid.tflite import (LceRunner, LiteRTRunner, lce_available, parse_graph, read_metadata, seeded_inputs,
                             unpack_bits)
from edgereid.tflite.builder import build_model as build_tflite

needs_lce = pytest.mark.skipif(not lce_available(), reason="Larq Compute Engine runtime not installed (tools/setup.sh)")
torch.set_num_threads(1)
SIZE = (32, 16)


def _model(seed=0, **kw):
    """A tiny binary model with non-trivial BN statistics (some negative BN scales)."""
    torch.manual_seed(seed)
    model = build_model("bireid_resnet18", num_classes=5, width=0.125, **kw)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 2.5 - 0.8)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.6 - 0.3)
    return model.eval()


def _images(n, seed=1):
    return torch.randn(n, 3, *SIZE, generator=torch.Generator().manual_seed(seed)) * 1.3


def test_exported_op_list_options_and_io(tmp_path):
    model = _model()
    res = export_lce(model, tmp_path / "m.tflite", calib=_images(16), input_size=SIZE, model_name="bireid_resnet18")
    assert lce_op_counts(res.data) == {"CONV_2D": 4, "MAX_POOL_2D": 1, "DEPTHWISE_CONV_2D": 16,
                                       "CUSTOM:LceQuantize": 16, "CUSTOM:LceBconv2d": 16, "PRELU": 16, "ADD": 16,
                                       "AVERAGE_POOL_2D": 3, "FULLY_CONNECTED": 1}
    graph = parse_graph((tmp_path / "m.tflite").read_bytes())
    kinds = [op.kind for op in graph.ops]
    assert kinds[:7] == ["CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "CUSTOM:LceQuantize", "CUSTOM:LceBconv2d",
                         "PRELU", "ADD"]
    bconv = graph.ops[4]
    assert bconv.options == {"channels_in": 8, "dilation_height_factor": 1, "dilation_width_factor": 1,
                             "fused_activation_function": 0, "pad_values": 1, "padding": 0, "stride_height": 1,
                             "stride_width": 1}
    t = graph.tensors
    x, filt, mult, bias = (t[i] for i in bconv.inputs[:4])
    assert bconv.inputs[4] == -1                      # no threshold: int8 output
    assert x.dtype == "int32" and x.shape == (1, 8, 4, 1)   # 8 channels in one bitpacked word
    assert filt.dtype == "int32" and filt.shape == (8, 3, 3, 1) and filt.is_const
    assert mult.dtype == bias.dtype == "float32" and mult.shape == (8,)
    assert t[bconv.outputs[0]].dtype == "int8"
    assert graph.ops[3].options == {}                 # LceQuantize: empty options
    strided = [op for op in graph.ops if op.kind == "CUSTOM:LceBconv2d" and op.options["stride_height"] == 2]
    assert len(strided) == 2 and all(op.options["padding"] == 0 for op in strided)
    # the unit's threshold: a 1x1 depthwise conv with +-1 weights of scale 1, output scale = input scale, zp 0
    dw = graph.ops[2]
    w, xin, out = t[dw.inputs[1]], t[dw.inputs[0]], t[dw.outputs[0]]
    assert set(np.unique(w.array())) <= {-1, 1} and set(w.scales) == {1.0}
    assert out.scale == xin.scale and out.zero_point == 0
    # int8 in, int8 out, metadata
    (inp,), (emb,) = graph.inputs, graph.outputs
    assert t[inp].dtype == "int8" and t[inp].shape == (1, *SIZE, 3)
    assert t[emb].dtype == "int8" and t[emb].shape == (1, model.embedding_dim)
    meta = read_metadata(tmp_path / "m.tflite")
    assert meta["model_name"] == "bireid_resnet18" and meta["runtime"] == "larq-compute-engine" and meta["int8"]
    assert meta["input_size"] == list(SIZE) and meta["inputs"][0]["scale"] == pytest.approx(t[inp].scale)


def _check_round_trip(model, res, images, min_cos):
    """Every output of the interpreter equals the int8 emulation; embeddings close to torch's."""
    signs = torch_signs(model, images)
    with torch.no_grad():
        ref = model(images).numpy()
    agree = total = 0
    with LceRunner(res.data) as runner:
        for i in range(images.shape[0]):
            q = quantize_image(images[i:i + 1].permute(0, 2, 3, 1).numpy(), res.input.scale, res.input.zero_point)
            got = runner.run([q])
            want = res.emulated_outputs(q)
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
            y = (got[0].astype(np.float32).reshape(-1) - res.output.zero_point) * res.output.scale
            cos = float(y @ ref[i] / (np.linalg.norm(y) * np.linalg.norm(ref[i])))
            assert cos >= min_cos, f"image {i}: cosine {cos}"
            for name, pos in res.debug_outputs.items():
                if name in signs:
                    c = got[pos].shape[-1] * 32
                    bits_lce = unpack_bits(got[pos], c)
                    bits_torch = unpack_bits(signs[name][i:i + 1], c)
                    agree += int((bits_lce == bits_torch).sum())
                    total += bits_lce.size
    return agree / max(total, 1)


@needs_lce
def test_round_trip_torch_lce_file_interpreter():
    model = _model()
    res = export_lce(model, None, calib=_images(16), input_size=SIZE, debug=True)
    assert len(res.debug_outputs) == 16 and all(n.endswith(".bn1") for n in res.debug_outputs)
    agreement = _check_round_trip(model, res, _images(6, seed=7), min_cos=0.95)
    assert agreement > 0.9   # the float model's signs: int8 rounding of the real-valued path flips a few


@needs_lce
def test_plain_net_uses_bitpacked_outputs_bmaxpool_and_dequantize():
    model = _model(seed=3, residual=False, binary_head=True)
    with torch.no_grad():
        model.layer1[0].bn1.weight.abs_()        # an increasing threshold after the max pool: LceBMaxPool2d
    res = export_lce(model, None, calib=_images(16), input_size=SIZE, debug=True)
    counts = lce_op_counts(res.data)
    assert counts["CUSTOM:LceBMaxPool2d"] == 1 and counts["CUSTOM:LceDequantize"] == 1
    assert counts["CUSTOM:LceBconv2d"] == 16 and "ADD" not in counts
    graph = parse_graph(res.data)
    bconvs = [op for op in graph.ops if op.kind == "CUSTOM:LceBconv2d"]
    packed_out = [op for op in bconvs if graph.tensors[op.outputs[0]].dtype == "int32"]
    assert len(packed_out) == 15                 # every binary conv but the last feeds the next one
    for op in packed_out:
        assert op.inputs[2] == op.inputs[3] == -1 and graph.tensors[op.inputs[4]].dtype == "int32"
    # some BN scales are negative: those channels' filters are flipped (all of a channel's bits inverted,
    # the unused bits of the last word stay 0), and the bits still come out exact
    flipped = 0
    for op, unit in zip(packed_out, [u for layer in (model.layer1, model.layer2, model.layer3, model.layer4)
                                     for u in layer]):
        signs = torch.where(unit.conv.weight < 0, -1.0, 1.0).permute(0, 2, 3, 1).numpy()
        stored = unpack_bits(graph.tensors[op.inputs[1]].array(), signs.shape[-1])
        same = (stored == signs).all(axis=(1, 2, 3))
        assert ((stored == -signs).all(axis=(1, 2, 3)) | same).all()
        flipped += int((~same).sum())
    assert flipped > 0
    _check_round_trip(model, res, _images(4, seed=8), min_cos=0.8)


@needs_lce
def test_float_export_has_float_bconv_outputs_and_matches_torch():
    model = _model(seed=5)
    res = export_lce(model, None, input_size=SIZE, int8=False, debug=True)
    graph = parse_graph(res.data)
    bconv = next(op for op in graph.ops if op.kind == "CUSTOM:LceBconv2d")
    assert graph.tensors[bconv.outputs[0]].dtype == "float32"
    images = _images(3, seed=9)
    signs = torch_signs(model, images)
    with torch.no_grad():
        ref = model(images).numpy()
    with LceRunner(res.data) as runner:
        for i in range(3):
            out = runner.run([images[i:i + 1].permute(0, 2, 3, 1).numpy()])
            np.testing.assert_allclose(out[0].reshape(-1), ref[i], rtol=1e-3, atol=1e-3)
            for name, pos in res.debug_outputs.items():
                mismatched = np.count_nonzero(out[pos] != signs[name][i:i + 1])
                assert mismatched <= 1, name   # float rounding may flip a value sitting on 0


@needs_lce
def test_lce_embedder_scores_images(tmp_path):
    model = _model()
    path = tmp_path / "m.tflite"
    export_lce(model, path, calib=_images(16), input_size=SIZE)
    emb = LceEmbedder(path)
    try:
        out = emb(_images(2, seed=4))
    finally:
        emb.close()
    with torch.no_grad():
        ref = model(_images(2, seed=4))
    assert out.shape == ref.shape
    assert torch.nn.functional.cosine_similarity(out, ref).min() > 0.95


# ---- what it refuses -----------------------------------------------------------------------------------

def test_a_layer_the_lce_format_cannot_express_is_named():
    model = _model()
    model.layer2[1].act = nn.GELU()
    with pytest.raises(ExportError, match=r"^layer layer2\.1\.act \(GELU\): expected a PReLU"):
        export_lce(model, None, calib=_images(4), input_size=SIZE)
    model = _model()
    model.layer3[2].conv.kernel_quantizer = None
    with pytest.raises(ExportError, match=r"^layer layer3\.2\.conv \(QuantConv2d\): binary input with a "
                                          r"real-valued kernel"):
        export_lce(model, None, calib=_images(4), input_size=SIZE)


def test_other_architectures_and_real_valued_models_are_refused():
    with pytest.raises(ExportError, match="takes a bireid_resnet18 model .*got resnet18"):
        export_lce(build_model("resnet18", 5, width=0.125).eval(), None, calib=_images(2), input_size=SIZE)
    with pytest.raises(ExportError, match=r"real-valued \(binary=False\)"):
        export_lce(_model(binary=False), None, calib=_images(2), input_size=SIZE)
    with pytest.raises(ExportError, match="needs calibration images"):
        export_lce(_model(), None, input_size=SIZE)


def test_metadata_lists_debug_outputs(tmp_path):
    res = export_lce(_model(), tmp_path / "d.tflite", calib=_images(4), input_size=SIZE, debug=True)
    meta = read_metadata(tmp_path / "d.tflite")
    assert meta["debug_outputs"] == list(res.debug_outputs)
    assert json.loads(json.dumps(meta))["outputs"][0]["dtype"] == "int8"


@needs_lce
def test_lce_interpreter_rounds_the_final_int8_shift_half_up():
    """LCE's interpreter runs TFLite's optimized int8 CONV_2D: its last rounding shift takes halves up, where
    LiteRT's reference kernel takes them away from zero. The export's emulation follows the interpreter."""
    data = build_tflite({"inputs": [{"name": "x", "shape": [1, 8, 6, 16], "scale": 0.03, "zero_point": 5}],
                         "ops": [{"op": "CONV_2D", "filters": 32, "kernel": [1, 1]}]})
    graph = parse_graph(data)
    op = graph.ops[0]
    x_t, w_t, b_t, y_t = (graph.tensors[i] for i in (*op.inputs, op.outputs[0]))
    w, b = w_t.array().astype(np.int64).reshape(32, 16), b_t.array().astype(np.int64)
    lce_vs_ref = 0
    with LceRunner(data) as lce, LiteRTRunner(data) as ref:
        for (x,) in seeded_inputs(lce.inputs, 20, seed=1):
            acc = (x.astype(np.int64).reshape(-1, 16) - x_t.zero_point) @ w.T + b
            for optimized, runner in ((True, lce), (False, ref)):
                want = np.empty_like(acc)
                for c in range(32):
                    m, shift = quantize_multiplier(float(x_t.scale) * float(w_t.scales[c]) / float(y_t.scale))
                    want[:, c] = mbqm(acc[:, c], m, shift, optimized=optimized)
                want = np.clip(want + y_t.zero_point, -128, 127).reshape(1, 8, 6, 32)
                np.testing.assert_array_equal(runner.run([x])[0], want)
            lce_vs_ref += int((lce.run([x])[0] != ref.run([x])[0]).sum())
    assert lce_vs_ref > 0   # the two roundings do differ on these inputs


def test_percentile_calibration_ignores_rare_outliers():
    net = nn.Sequential(nn.Identity())
    x = torch.zeros(4, 1, 100, 100)
    x[0, 0, 0, 0] = 50.0                      # one outlier among 40000 values
    x[1:, 0] = torch.linspace(-1, 1, 10000).view(100, 100)
    full = calibration_ranges(net, x)["0"]
    clipped = calibration_ranges(net, x, percentile=99.9)["0"]
    assert full == [-1.0, 50.0]
    assert -1.0 <= clipped[0] < -0.99 and 0.99 < clipped[1] <= 1.0
