"""4-bit weights: int4 fake-quant math, the flash-budget choice, the INT4 TFLite export round trip."""
import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from edgereid.compress.int4 import EdgeMixedQuantizer, fake_quantize_int4, int4_codes, int4_scales
from edgereid.compress.mixed_precision import (FlashBudgetError, LayerCost, choose_int4_layers, int4_candidates,
                                              layer_sensitivity)
from edgereid.compress.quantize import quantize
from edgereid.errors import EdgereidError
from edgereid.export.int4 import export_int4_tflite, int4_weights
from edgereid.tflite import LiteRTRunner, read_graph, seeded_inputs, write_graph

pytestmark = pytest.mark.unit


def test_int4_fake_quant_is_per_channel_symmetric_seven_levels():
    # Row 0: max 1.75 -> scale 0.25; row 1: max 3.5 -> scale 0.5 (powers of two: exact in float32).
    w = torch.tensor([[1.75, -0.625, 0.375, 0.0],
                      [-3.5, 0.75, 0.25, 1.25]])
    scales = int4_scales(w)
    assert scales.tolist() == [0.25, 0.5]
    # -2.5 -> -2, 1.5 -> 2, 0.5 -> 0, 2.5 -> 2: round half to even, as TFLite's converter and torch do.
    assert int4_codes(w, scales).tolist() == [[7, -2, 2, 0], [-7, 2, 0, 2]]
    expected = torch.tensor([[1.75, -0.5, 0.5, 0.0], [-3.5, 1.0, 0.0, 1.0]])
    w.requires_grad_(True)
    fq = fake_quantize_int4(w)
    assert torch.equal(fq.detach(), expected)
    fq.sum().backward()          # straight-through: every element is inside the clamp range
    assert torch.equal(w.grad, torch.ones_like(w))


def test_int4_scales_follow_the_output_channel_of_a_conv_weight():
    w = torch.zeros(3, 2, 1, 1)
    w[0, 0], w[1, 1], w[2, 0] = 0.7, -1.4, 0.0
    assert torch.allclose(int4_scales(w), torch.tensor([0.1, 0.2, 2**-12]))
    assert int4_codes(w, int4_scales(w))[:, :, 0, 0].tolist() == [[7, 0], [0, -7], [0, 0]]
    with pytest.raises(EdgereidError, match="rank >= 2"):
        int4_scales(torch.ones(4))


def test_flash_budget_choice_is_greedy_by_drift_per_byte_and_drops_what_is_not_needed():
    layers = [LayerCost("a", "conv", 1000), LayerCost("b", "conv", 4000), LayerCost("c", "depthwise", 200),
              LayerCost("d", "fc", 2000)]
    # saved bytes: a 500, b 2000, c 100, d 1000; drift per saved byte: a 2e-5, b 1e-5, c 1e-6, d 5e-5
    sens = {"a": 0.01, "b": 0.02, "c": 0.0001, "d": 0.05}
    plan = choose_int4_layers(layers, sens, int8_flash_bytes=10_000, flash_budget=8_000)
    # greedy order c, b (saved 2100 >= 2000), then c is dropped again: b alone saves enough
    assert plan.int4_layers == ("b",)
    assert plan.saved_bytes == 2000 and plan.estimated_flash_bytes == 8000
    plan = choose_int4_layers(layers, sens, int8_flash_bytes=10_000, flash_budget=7_400)
    assert plan.int4_layers == ("a", "b", "c") and plan.estimated_flash_bytes == 7_400
    assert choose_int4_layers(layers, sens, int8_flash_bytes=10_000, flash_budget=12_000).int4_layers == ()


def test_impossible_flash_budget_names_the_shortfall():
    layers = [LayerCost("a", "conv", 1000), LayerCost("b", "fc", 3)]   # at most 500 + 1 bytes saved
    with pytest.raises(FlashBudgetError, match=r"over by 499 B"):
        choose_int4_layers(layers, {"a": 0.1, "b": 0.2}, int8_flash_bytes=2_000, flash_budget=1_000)
    with pytest.raises(EdgereidError, match="no sensitivity measured for layer"):
        choose_int4_layers(layers, {"a": 0.1}, int8_flash_bytes=2_000, flash_budget=1_900)


class TinyReid(nn.Module):
    """conv + BN + ReLU, depthwise, global mean, FC embedding: one op of each int4 kind."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.dw(x))
        return self.fc(x.mean(dim=(2, 3)))


def _tiny():
    torch.manual_seed(0)
    model = TinyReid().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
    return model, torch.randn(32, 3, 16, 8)


def test_candidates_and_sensitivity_on_a_toy_model():
    model, images = _tiny()
    layers = int4_candidates(model, images)
    assert [(c.name, c.kind, c.weight_elements) for c in layers] == [
        ("conv", "conv", 216), ("dw", "depthwise", 72), ("fc", "fc", 48)]
    sens = layer_sensitivity(model, [images], max_images=16)
    assert set(sens) == {"conv", "dw", "fc"} and all(0 < v < 0.5 for v in sens.values())
    with pytest.raises(EdgereidError, match="not conv/linear layers of the model: bn"):
        layer_sensitivity(model, [images], layers=["bn"])


def test_int4_export_round_trip_in_litert(tmp_path):
    model, images = _tiny()
    q = quantize(model, [images], method="histogram", int4_layers=["conv", "dw"])
    weights = {w.name: w for w in int4_weights(q)}
    assert set(weights) == {"conv.weight", "dw.weight"}
    path = export_int4_tflite(q, tmp_path / "m.tflite", input_size=(16, 8))
    graph = read_graph(path)
    filters = {op.kind: graph.tensors[op.inputs[1]] for op in graph.ops
               if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")}
    assert {k: t.dtype for k, t in filters.items()} == {"CONV_2D": "int4", "DEPTHWISE_CONV_2D": "int4",
                                                        "FULLY_CONNECTED": "int8"}
    assert all(op.version <= 6 for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D")
    # The INT4 values are the torch graph's fake-quantized codes (torch layout -> TFLite layout).
    assert np.array_equal(filters["CONV_2D"].array(), weights["conv.weight"].codes.transpose(0, 2, 3, 1))
    assert np.array_equal(filters["DEPTHWISE_CONV_2D"].array(), weights["dw.weight"].codes.transpose(1, 2, 3, 0))
    assert filters["CONV_2D"].nbytes == 216 // 2
    # LiteRT BUILTIN_REF: the INT4 file gives the same bytes as the same values stored as INT8.
    as_int8 = dataclasses.replace(graph, tensors=[
        dataclasses.replace(t, dtype="int8", data=t.array().astype(np.int8).tobytes()) if t.dtype == "int4" else t
        for t in graph.tensors])
    with LiteRTRunner(path) as r4, LiteRTRunner(write_graph(as_int8)) as r8:
        for inputs in seeded_inputs(r4.inputs, 8, seed=0):
            assert np.array_equal(r4.run(inputs)[0], r8.run(inputs)[0])
        # and it computes the quantized torch model (int8 input from the float images)
        spec_in, spec_out = r4.inputs[0], r4.outputs[0]
        x = images[:8].permute(0, 2, 3, 1).numpy()
        x8 = np.clip(np.round(x / spec_in.scale) + spec_in.zero_point, -128, 127).astype(np.int8)
        out = np.concatenate([r4.run([x8[i:i + 1]])[0] for i in range(8)]).astype(np.float32)
        emb = (out - spec_out.zero_point) * spec_out.scale
    cos = torch.nn.functional.cosine_similarity(torch.from_numpy(emb), q(images[:8]).detach(), dim=1)
    assert float(cos.min()) > 0.99


def test_unknown_int4_layer_and_nncf_method_are_refused():
    model, images = _tiny()
    with pytest.raises(EdgereidError, match="int4 layers not found as conv/linear weights in the graph: nope"):
        quantize(model, [images], method="histogram", int4_layers=["nope"])
    with pytest.raises(EdgereidError, match="int4 weights need method='histogram'"):
        quantize(model, [images], method="nncf", int4_layers=["conv"])
    assert EdgeMixedQuantizer(["b", "a", "a"]).int4_layers == ("a", "b")


def test_int4_qat_trains_through_fit_and_exports_int4_filters(tmp_path):
    from edgereid.compress.quantize import quantize_qat
    from edgereid.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=4, width=0.125).eval()
    g = torch.Generator().manual_seed(1)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loader = [(torch.randn(8, 3, 32, 16, generator=g), pids) for _ in range(2)]
    layers = int4_candidates(model, loader[0][0])
    chosen = [layers[1].name, layers[-2].name]
    logs = []
    q = quantize_qat(model, loader, epochs=1, num_classes=4, lr=1e-4, log=logs.append, int4_layers=chosen)
    assert q.meta["edgereid_quantized"] == "int4-int8-qat"
    assert any(line.startswith("qat epoch") for line in logs)          # the engine's loop ran
    found = int4_weights(q)
    assert len(found) == 2 and all(np.abs(w.codes).max() <= 7 for w in found)
    path = export_int4_tflite(q, tmp_path / "qat4.tflite", input_size=(32, 16))
    graph = read_graph(path)
    assert sum(t.dtype == "int4" for t in graph.tensors) == 2


@pytest.mark.parametrize("args, message", [
    (["--weights", "mixed", "--prune-macs", "0.5"], "do not combine with --prune-macs"),
    (["--weights", "int4", "--ptq-method", "nncf"], "do not combine with"),
    (["--flash-budget", "1000"], "add --weights mixed"),
    (["--weights", "mixed", "--flash-budget", "0"], "--flash-budget"),
])
def test_compress_cli_refuses_int4_options_that_do_not_apply(tmp_path, args, message):
    from click.testing import CliRunner

    from edgereid.cli import cli

    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"not read: options are checked first")
    result = CliRunner().invoke(cli, ["compress", str(ckpt), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_store_int4_filters_handles_shared_constants_and_clamps_depthwise_version():
    from edgereid.errors import ExportError
    from edgereid.export.int4 import Int4Weight, store_int4_filters
    from edgereid.tflite import Graph, Op, Tensor

    zeros = np.zeros((2, 1, 1, 1), np.int8)
    dw = np.array([[[[3, -7]]]], np.int8)                       # TFLite [1, kH, kW, C]
    t = [Tensor(0, "x", (1, 1, 1, 1), "int8", (0.1,), (0,)),
         Tensor(1, "shared", (2, 1, 1, 1), "int8", (2**-12, 2**-12), (0, 0), 0, zeros.tobytes(), True),
         Tensor(2, "dw", (1, 1, 1, 2), "int8", (0.5, 0.25), (0, 0), 3, dw.tobytes(), True),
         Tensor(3, "y", (1, 1, 1, 2), "int8", (0.1,), (0,))]
    ops = [Op(0, "CONV_2D", (0, 1, -1), (3,)), Op(1, "CONV_2D", (0, 1, -1), (3,)),
           Op(2, "DEPTHWISE_CONV_2D", (3, 2, -1), (3,), version=7)]
    graph = Graph(t, ops, (0,), (3,))
    eps = np.full(2, 2**-12, np.float32)
    weights = [Int4Weight("a.weight", zeros, eps), Int4Weight("b.weight", zeros, eps),   # one shared tensor
               Int4Weight("d.weight", dw.transpose(3, 0, 1, 2).copy(), np.array([0.5, 0.25], np.float32))]
    out, kinds = store_int4_filters(graph, weights)
    assert [out.tensors[i].dtype for i in (1, 2)] == ["int4", "int4"]
    assert out.tensors[2].array().tolist() == dw.tolist() and out.tensors[2].nbytes == 1
    assert kinds == ["CONV_2D", "DEPTHWISE_CONV_2D"] and out.ops[2].version == 6 and out.ops[0].version == 1
    with pytest.raises(ExportError, match="holds the codes and scales of the fake-quantized weight d.weight"):
        store_int4_filters(graph, [dataclasses.replace(weights[2], scales=np.array([0.5, 0.5], np.float32))])
