"""int8 PTQ through NNCF, QAT, and unstructured pruning through nncf.prune (tiny models)."""
import numpy as np
import pytest
import torch
from torch import nn

torch.set_num_threads(1)
pytest.importorskip("nncf")
pytest.importorskip("litert_torch")

from edgereid.compress import (embedding_cosine, prune_unstructured, quantize, quantize_qat,  # noqa: E402
                               weight_sparsity, zlib_bytes)
from edgereid.export import export_tflite, run_tflite  # noqa: E402
from edgereid.export.prepare import DiagonalAffine  # noqa: E402
from edgereid.models import build_model  # noqa: E402

SIZE = (32, 16)


class PooledHead(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.head = head

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("head", ["diagonal_linear", "depthwise"])
def test_nncf_ptq_keeps_a_folded_bn_neck(head):
    # A folded BN-neck has one positive weight per channel. NNCF 3.4 made such channels
    # unsigned and their int8 code wrapped around (cosine 0.78 here, 0.12 on ResNet-18)
    # until edgereid.compress.nncf_int8_fixes.
    torch.manual_seed(0)
    scale, shift = torch.rand(16) + 0.5, torch.randn(16) * 0.1
    if head == "diagonal_linear":
        h = nn.Linear(16, 16)
        h.weight.data, h.bias.data = torch.diag(scale), shift
    else:
        h = DiagonalAffine(scale, shift)
    model = PooledHead(h).eval()
    calib = [torch.randn(16, 3, *SIZE) for _ in range(2)]
    q = quantize(model, calib, method="nncf")
    x = torch.randn(32, 3, *SIZE)
    with torch.no_grad():
        assert embedding_cosine(q(x), model(x)) >= 0.999
    # The first conv keeps the full int8 range (NNCF's x86 overflow fix would halve it).
    weight_scales = [n for n in q.graph.nodes if "quantize_per_channel" in str(n.target)
                     and "dequantize" not in str(n.target)]
    first = getattr(q, weight_scales[0].args[1].target)
    w = model.conv.weight.detach().abs().amax(dim=(1, 2, 3))
    torch.testing.assert_close(first, w / 127, rtol=1e-4, atol=1e-7)


def _zero_gamma_resnet():
    torch.manual_seed(0)
    # resnet18 zero-initialises the last BN gamma of each block: QAT's conv-BN simulation
    # divided by it and the first forward failed ("zero_point must be between ...").
    return build_model("resnet18", num_classes=4, width=0.125).eval()


def test_qat_trains_converts_and_the_tflite_matches(tmp_path):
    model = _zero_gamma_resnet()
    g = torch.Generator().manual_seed(1)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loader = [(torch.randn(8, 3, *SIZE, generator=g), pids) for _ in range(3)]
    logs = []
    q = quantize_qat(model, loader, epochs=2, num_classes=4, lr=1e-3, log=logs.append)
    epochs = [line for line in logs if line.startswith("qat epoch")]
    assert len(epochs) == 2 and all("loss" in line for line in epochs)
    assert q.meta["edgereid_quantized"] == "int8-qat"
    with torch.no_grad():  # training moved the weights: not the float model any more
        assert not torch.allclose(q(loader[0][0]), model(loader[0][0]))
    path = export_tflite(q, tmp_path / "qat.tflite", int8=True, input_size=SIZE)
    x = torch.randn(16, 3, *SIZE, generator=g)
    y = run_tflite(path, x.numpy(), reference_kernels=True)
    with torch.no_grad():
        assert embedding_cosine(torch.from_numpy(y), q(x)) >= 0.99


def test_nncf_unstructured_pruning_zeroes_the_ratio_and_compresses(tmp_path):
    model = _zero_gamma_resnet()
    x = torch.randn(2, 3, *SIZE)
    pruned, report = prune_unstructured(model, x, 0.6)
    assert report["sparsity"] == pytest.approx(0.6, abs=0.002)
    assert weight_sparsity(pruned)["sparsity"] == report["sparsity"]
    assert type(pruned) is type(model) and not any("nncf" in type(m).__module__ for m in pruned.modules())
    # The surviving weights are the original ones (mask applied, nothing else moved).
    for (name, a), b in zip(model.named_parameters(), pruned.parameters()):
        kept = b != 0
        assert torch.equal(a[kept], b[kept]), name
    calib = [torch.randn(16, 3, *SIZE)]
    dense = export_tflite(quantize(model, calib, method="histogram"), tmp_path / "d.tflite", int8=True,
                          input_size=SIZE)
    sparse = export_tflite(quantize(pruned, calib, method="histogram"), tmp_path / "s.tflite", int8=True,
                           input_size=SIZE)
    assert zlib_bytes(sparse) < 0.85 * zlib_bytes(dense)
    assert np.isfinite(run_tflite(sparse, x.numpy())).all()


def test_channel_scaled_adam_steps_folded_weights_like_adam_behind_bn():
    # Adam moves every element by ~lr. After folding BN (W' = W * gamma / sigma) that rewrote
    # the channels behind a small gamma (QAT drifted: docs/compression.md); the step on a
    # folded weight is scaled per output channel by |gamma / sigma|.
    from edgereid.compress.quantize import ChannelScaledAdam

    w = nn.Parameter(torch.ones(2, 3, 1, 1))
    opt = ChannelScaledAdam([w], {w: torch.tensor([1.0, 0.01])}, lr=1e-2)
    w.grad = torch.ones_like(w)
    opt.step()
    step = (1.0 - w.detach()).flatten(1)
    torch.testing.assert_close(step[0], torch.full((3,), 1e-2), rtol=1e-3, atol=0)
    torch.testing.assert_close(step[1], torch.full((3,), 1e-4), rtol=1e-3, atol=0)


def _input_scale(q):
    node = next(n for n in q.graph.nodes if n.op == "call_function" and "quantize_per_tensor" in str(n.target))
    s = node.args[1]
    return float(getattr(q, s.target) if isinstance(s, torch.fx.Node) else s)


def test_qat_keeps_the_calibrated_ranges_when_observers_are_frozen():
    # Training batches (augmented: random erasing, padding) moved the moving-average ranges
    # away from the calibration images' and cost ~2 mAP (resnet18, docs/compression.md):
    # by default the PTQ-calibrated ranges are frozen from the first step (unfrozen, two
    # batches of wider images move the moving-average (constant 0.01) input range by ~6%).
    model = _zero_gamma_resnet()
    g = torch.Generator().manual_seed(1)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    calib = [torch.randn(8, 3, *SIZE, generator=g)]
    loader = [(4 * torch.randn(8, 3, *SIZE, generator=g), pids) for _ in range(2)]
    kw = dict(num_classes=4, lr=1e-6, calib=calib)
    calibrated = _input_scale(quantize_qat(model, loader, epochs=0, **kw))
    assert _input_scale(quantize_qat(model, loader, epochs=1, **kw)) == pytest.approx(calibrated, rel=1e-6)
    assert _input_scale(quantize_qat(model, loader, epochs=1, freeze_observers_at=None, **kw)) > 1.03 * calibrated
