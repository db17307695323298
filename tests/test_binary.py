"""Binary layers (Larq-shaped quantizers), the BiRe-ID ResNet, and the KR-GAL / FR-GAL losses,
on hand-computed cases."""
import math

import pytest
import torch
from torch import nn

from edgereid.errors import CheckpointError, ModelError
from edgereid.losses import ReidLoss
from edgereid.losses.gal import FRGAL, KRGAL, adversarial_losses, gal_training
from edgereid.models import ReidOutput, binary_complexity, build_model, load_float_twin, model_complexity
from edgereid.models.binary import (ApproxSign, MagnitudeAwareSign, QuantConv2d, QuantLinear, SameMaxPool2d, SteSign,
                                    get_quantizer, same_padding, sign)

pytestmark = pytest.mark.unit
torch.set_num_threads(1)


# ---- quantizers: forward and gradient ------------------------------------------------------------

def test_sign_of_zero_negative_zero_and_nan_is_plus_one():
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 3.0, float("nan")])
    assert sign(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]


def test_ste_sign_forward_and_clipped_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y, scale = SteSign()(x)
    assert scale is None and y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    (y * torch.arange(1.0, 8.0)).sum().backward()
    # d/dx = upstream where |x| <= 1, else 0
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_approx_sign_has_bi_real_gradient():
    x = torch.tensor([-1.5, -1.0, -0.75, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0], requires_grad=True)
    y, _ = ApproxSign()(x)
    assert y.tolist() == [-1, -1, -1, -1, 1, 1, 1, 1, 1]
    y.sum().backward()
    # 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere
    assert x.grad.tolist() == [0.0, 0.0, 0.5, 1.0, 2.0, 1.5, 1.0, 0.0, 0.0]


def test_magnitude_aware_sign_scale_per_output_channel_without_gradient():
    w = torch.tensor([[[[0.5, -1.5]]], [[[-0.25, 0.75]]]], requires_grad=True)  # [2, 1, 1, 2]
    values, scale = MagnitudeAwareSign()(w)
    assert values.flatten().tolist() == [1, -1, -1, 1]
    assert scale.tolist() == [1.0, 0.5]  # mean |W| of each output channel
    assert not scale.requires_grad
    (values * scale.view(2, 1, 1, 1)).sum().backward()
    # the sign passes the gradient straight through where |W| <= 1; the scale passes none
    assert w.grad.flatten().tolist() == [1.0, 0.0, 0.5, 0.5]


def test_unknown_quantizer_is_a_model_error():
    assert get_quantizer(None) is None and isinstance(get_quantizer("approx_sign"), ApproxSign)
    with pytest.raises(ModelError, match="unknown quantizer 'dorefa'"):
        QuantConv2d(4, 4, 3, input_quantizer="dorefa")


# ---- binary conv: padding, pad_values, scale ------------------------------------------------------

def test_tensorflow_same_padding_puts_the_odd_pixel_after():
    assert same_padding(8, 3, 2) == (0, 1)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(8, 7, 2) == (2, 3)
    assert same_padding(5, 3, 1) == (1, 1)


@pytest.mark.parametrize("pad_values", [0.0, 1.0])
def test_binary_conv_pads_the_signs_with_pad_values(pad_values):
    conv = QuantConv2d(1, 1, 3, 1, "same", input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                       pad_values=pad_values)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]]).view(1, 1, 3, 3))
    x = torch.tensor([[0.3, -2.0], [0.0, 5.0]]).view(1, 1, 2, 2)   # signs [[1, -1], [1, 1]]
    y = conv(x)[0, 0]
    signs = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    padded = torch.full((4, 4), pad_values)
    padded[1:3, 1:3] = signs
    w = conv.weight[0, 0].detach()
    expected = torch.tensor([[(padded[i:i + 3, j:j + 3] * w).sum() for j in range(2)] for i in range(2)])
    assert torch.equal(y, expected)
    if pad_values == 1.0:  # top-left pixel: 5 pad taps of +1 times their weights, and the 4 in-image taps
        assert y[0, 0].item() == (1 - 1 + 1 + 1 - 1) + (1 * 1 + -1 * 1 + 1 * 1 + 1 * 1)


def test_binary_conv_stride_two_uses_tensorflow_same():
    conv = QuantConv2d(1, 1, 3, 2, "same", input_quantizer="ste_sign", kernel_quantizer="ste_sign", pad_values=1.0)
    nn.init.constant_(conv.weight, 1.0)
    y = conv(-torch.ones(1, 1, 4, 4))[0, 0]
    # output pixel (0, 0) sees rows/cols 0..2 (no top/left padding): -9; pixel (1, 1) sees rows 2..4, 4 is padding
    assert y.tolist() == [[-9.0, -3.0], [-3.0, 1.0]]   # (1, 1): 4 in-image taps of -1, 5 pad taps of +1


def test_learnable_scale_multiplies_output_and_gets_gradient():
    conv = QuantConv2d(2, 2, 1, padding="valid", input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign",
                       scale=True)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -0.5], [0.25, 0.25]]).view(2, 2, 1, 1))
        conv.alpha.copy_(torch.tensor([2.0, 3.0]))
    x = torch.tensor([0.5, 0.5]).view(1, 2, 1, 1)
    y = conv(x).flatten()
    # channel 0: (1 - 1) * 0.75 * 2 = 0; channel 1: (1 + 1) * 0.25 * 3 = 1.5
    assert y.tolist() == [0.0, 1.5]
    y.sum().backward()
    assert conv.alpha.grad.tolist() == [0.0, 0.5]   # d y / d alpha = dot * mean|W|


def test_quant_linear_and_same_max_pool():
    lin = QuantLinear(3, 2, bias=True, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3], [-1.0, -1.0, 1.0]]))
        lin.bias.copy_(torch.tensor([0.5, 0.0]))
    assert lin(torch.tensor([[2.0, -3.0, 0.0]])).tolist() == [[3.5, 1.0]]
    pool = SameMaxPool2d(3, 2)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert pool(x)[0, 0].tolist() == [[10.0, 11.0], [14.0, 15.0]]  # windows clipped at the bottom / right


# ---- the binary ResNet ------------------------------------------------------------------------------

def test_bireid_resnet_outputs_and_layers():
    torch.manual_seed(0)
    model = build_model("bireid_resnet18", num_classes=7, width=0.125)
    x = torch.randn(4, 3, 32, 16)
    out = model.train()(x)
    assert isinstance(out, ReidOutput) and out.logits[0].shape == (4, 7)
    assert model.eval()(x).shape == (4, model.embedding_dim)
    names = [n for n, _ in model.binary_layers()]
    assert len(names) == 16 and names[0] == "layer1.0.conv" and names[-1] == "layer4.3.conv"
    pairs = model.feature_pairs()
    assert [(lo, hi, f) for lo, hi, _, _, f in pairs] == [("layer1", "layer2", 2), ("layer2", "layer3", 2),
                                                         ("layer3", "layer4", 1)]
    twin = build_model("bireid_resnet18", num_classes=7, width=0.125, binary=False)
    assert twin.binary_layers() == []


def test_unit_branches_start_at_full_strength_unless_asked():
    model = build_model("bireid_resnet18", num_classes=3, width=0.125)
    assert torch.equal(model.layer2[1].bn2.weight, torch.ones(16))
    zero = build_model("bireid_resnet18", num_classes=3, width=0.125, zero_init_residual=True)
    assert torch.equal(zero.layer2[1].bn2.weight, torch.zeros(16))


def test_binary_complexity_counts_binary_and_real_parts():
    model = build_model("bireid_resnet18", num_classes=7, width=0.25)
    twin = build_model("bireid_resnet18", num_classes=7, width=0.25, binary=False)
    c, f = binary_complexity(model, (64, 32)), binary_complexity(twin, (64, 32))
    assert f["binary_macs"] == 0 and f["float_macs"] == c["binary_macs"] + c["float_macs"]
    # 16 binary 3x3 convs: widths 16, 32, 64, 128 (width 0.25); the first conv of stages 2..4 widens
    w = (16, 32, 64, 128)
    expected = sum(9 * cin * cout for cin, cout in
                   [(16, 16)] * 4 + [(16, 32)] + [(32, 32)] * 3 + [(32, 64)] + [(64, 64)] * 3 + [(64, 128)]
                   + [(128, 128)] * 3)
    assert c["binary_weights"] == expected and w[-1] == model.embedding_dim
    assert c["ops"] == c["binary_macs"] / 64 + c["float_macs"]
    assert c["storage_bits"] == c["binary_weights"] + 32 * c["float_params"]
    params, macs = model_complexity(model, (64, 32))
    assert macs == c["binary_macs"] + c["float_macs"]


def test_binary_model_starts_from_its_real_valued_twin():
    twin = build_model("bireid_resnet18", num_classes=5, width=0.125, binary=False)
    model = load_float_twin(build_model("bireid_resnet18", num_classes=5, width=0.125), twin.state_dict())
    assert torch.equal(model.layer2[0].conv.weight, twin.layer2[0].conv.weight)
    assert torch.equal(model.layer2[0].conv.alpha, torch.ones_like(model.layer2[0].conv.alpha))
    with pytest.raises(CheckpointError, match="another width"):
        load_float_twin(build_model("bireid_resnet18", num_classes=5, width=0.25), twin.state_dict())
    with pytest.raises(CheckpointError, match="not a bireid_resnet18"):
        load_float_twin(model, build_model("resnet18", num_classes=5, width=0.125).state_dict())


# ---- KR-GAL and FR-GAL on tiny tensors ----------------------------------------------------------------

def _tiny_binary_layer():
    layer = QuantConv2d(1, 2, 3, input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign", scale=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9],
                                         [-0.3] * 9]).view(2, 1, 3, 3))
        layer.alpha.copy_(torch.tensor([2.0, 1.0]))
    return layer


def test_kr_gal_mse_term_by_hand():
    layer = _tiny_binary_layer()
    kr = KRGAL([layer], lam=1e-2, adversarial=0.0)
    loss, terms = kr()
    w = layer.weight.detach().view(2, 9)
    m = w.abs().mean(1)                               # [0.5, 0.3]
    wb = torch.sign(w) * (m * torch.tensor([2.0, 1.0]))[:, None]
    mse = ((w - wb) ** 2).sum()
    assert math.isclose(terms["kr_mse"], float(mse), rel_tol=1e-6)
    assert math.isclose(float(loss.detach()), 0.5 * 1e-2 * float(mse), rel_tol=1e-6)
    loss.backward()
    # sign(W) and mean|W| held constant: dL/dW = lam (W - W_b); dL/dalpha = -lam sum (W - W_b) sign(W) m
    assert torch.allclose(layer.weight.grad.view(2, 9), 1e-2 * (w - wb), atol=1e-7)
    expected_alpha = -1e-2 * ((w - wb) * torch.sign(w)).sum(1) * m
    assert torch.allclose(layer.alpha.grad, expected_alpha, atol=1e-7)


def test_adversarial_terms_train_each_side_only():
    torch.manual_seed(0)
    disc = nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.2), nn.Linear(4, 1))
    real = torch.randn(5, 3, requires_grad=True)
    fake = torch.randn(5, 3, requires_grad=True)
    d_loss, g_loss = adversarial_losses(_Squeeze(disc), real, fake)
    d_loss.backward(retain_graph=True)
    assert fake.grad is None and real.grad is None            # D's loss does not reach the generator
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    for p in disc.parameters():
        p.grad = None
    g_loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0  # G's loss reaches the fake samples
    assert all(p.grad is None for p in disc.parameters())       # and not D
    # D's loss: BCE(real -> 1) + BCE(fake -> 0), G's: BCE(fake -> 1), from the same logits
    with torch.no_grad():
        lr, lf = disc(real).squeeze(-1), disc(fake).squeeze(-1)
        expected_d = nn.functional.softplus(-lr).mean() + nn.functional.softplus(lf).mean()
        expected_g = nn.functional.softplus(-lf).mean()
    assert math.isclose(float(d_loss.detach()), float(expected_d), rel_tol=1e-6)
    assert math.isclose(float(g_loss.detach()), float(expected_g), rel_tol=1e-6)


class _Squeeze(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).squeeze(-1)


def test_kr_gal_adversarial_term_uses_normalised_kernel_slices():
    layer = _tiny_binary_layer()
    kr = KRGAL([layer], lam=0.0, adversarial=1.0)
    real, fake = kr.slices(layer)
    norm = layer.weight.detach().abs().mean()
    assert real.shape == fake.shape == (2, 9)
    assert torch.allclose(real, layer.weight.detach().view(2, 9) / norm)
    assert torch.allclose(fake.abs().detach(), torch.tensor([[1.0], [0.3]]) / norm * torch.ones(2, 9))
    loss, terms = kr()
    assert {"kr_d", "kr_g"} <= set(terms)
    assert math.isclose(float(loss.detach()), terms["kr_d"] + terms["kr_g"], rel_tol=1e-5)


def test_fr_gal_mse_by_hand_and_no_gradient_into_the_high_branch():
    fr = FRGAL([(2, 3, 2)], mu=0.5, adversarial=0.0)
    with torch.no_grad():
        fr.maps[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]).view(2, 3, 1, 1))
        fr.maps[0].bias.zero_()
    low = torch.arange(8.0).view(1, 2, 2, 2).requires_grad_(True)
    high = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).requires_grad_(True)
    loss, terms = fr([low], [high])
    target = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)   # 1x1 map, then nearest x2
    mse = ((low.detach() - target) ** 2).sum()
    assert math.isclose(terms["fr_mse"], float(mse)) and math.isclose(float(loss.detach()), 0.25 * float(mse))
    loss.backward()
    assert high.grad is None                                        # the high-level branch gets nothing
    assert torch.allclose(low.grad, 0.5 * (low.detach() - target))  # mu (a_L - a_H*)
    assert fr.maps[0].weight.grad is not None


def test_gal_objective_reads_stage_features_through_hooks():
    torch.manual_seed(0)
    model = build_model("bireid_resnet18", num_classes=4, width=0.125)
    loss = ReidLoss(4)
    gal = gal_training(model, loss, kr_gal=1e-4, fr_gal=1e-3, adversarial=0.1)
    x, pids = torch.randn(8, 3, 32, 16), torch.arange(4).repeat_interleave(2)
    gal.module.train()
    total, terms = gal.loss(gal.forward(gal.module, (x, pids)), pids)
    assert {"ce", "triplet", "kr_mse", "kr_d", "kr_g", "fr_mse", "fr_d", "fr_g"} <= set(terms)
    base, _ = loss.terms(model(x), pids)
    assert float(total.detach()) > float(base.detach()) > 0
    total.backward()
    assert model.layer1[0].conv.alpha.grad is not None and gal.objective.frgal.maps[0].weight.grad is not None
    sd = gal.module.state_dict()
    model_sd, gal_sd = gal.split_state(sd)
    assert set(model_sd) == set(model.state_dict()) and gal_sd and gal.join_state(model_sd, gal_sd).keys() == sd.keys()
    gal.close()
    assert gal_training(model, loss) is None
    with pytest.raises(ModelError, match="no binary layer"):
        gal_training(build_model("bireid_resnet18", num_classes=4, width=0.125, binary=False), loss, kr_gal=1e-4)


def test_gal_terms_ramp_up_over_the_warmup_steps_and_the_count_is_checkpointed():
    torch.manual_seed(0)
    model = build_model("bireid_resnet18", num_classes=4, width=0.125)
    reid = ReidLoss(4)
    gal = gal_training(model, reid, kr_gal=1e-2, adversarial=0.0, warmup_steps=4)
    x, pids = torch.randn(8, 3, 32, 16), torch.arange(4).repeat_interleave(2)
    gal.module.train()
    outputs = gal.forward(gal.module, (x, pids))
    base = float(reid.terms(outputs, pids)[0])
    kr = 0.5 * 1e-2 * float(gal.objective.krgal.mse())
    for step in range(6):
        total, terms = gal.loss(outputs, pids)
        assert terms["gal_scale"] == min(1.0, (step + 1) / 4)
        assert float(total) == pytest.approx(base + terms["gal_scale"] * kr, rel=1e-5)
    _, gal_sd = gal.split_state(gal.module.state_dict())
    assert int(gal_sd["step"]) == 6
    gal.close()


# ---- quantization-aware form for the int8 LCE export ----------------------------------------------------

def _qat_model():
    from edgereid.compress.lce_qat import to_lce_qat

    torch.manual_seed(0)
    model = build_model("bireid_resnet18", num_classes=5, width=0.125)
    model.train()
    with torch.no_grad():  # BN statistics away from their initial 0 / 1
        for _ in range(3):
            model(torch.randn(8, 3, 32, 16))
    return to_lce_qat(model.eval(), torch.randn(16, 3, 32, 16))


def test_lce_qat_forward_is_the_int8_export_with_float_gradients():
    import numpy as np

    from edgereid.export.lce import export_lce, quantize_image

    model = _qat_model()
    assert model.int8_ranges and all(len(v) == 2 for v in model.int8_ranges.values())
    x = torch.randn(4, 3, 32, 16)
    export = export_lce(model, None, input_size=(32, 16))  # the ranges the model carries: no calibration
    env = export.emulate(quantize_image(x.permute(0, 2, 3, 1).numpy(), export.input.scale, export.input.zero_point))
    want = (torch.from_numpy(env[export.output.name].astype(np.float32)) - export.output.zero_point) \
        * np.float32(export.output.scale)
    with torch.no_grad():
        got = model.eval()(x)
        floats = model.forward_float(x)
    assert torch.equal(got, want)
    assert not torch.equal(got, floats)  # the float model is another function
    stats = model.layer2[0].bn1.running_mean.clone()
    model.train()
    out = model(x)
    assert isinstance(out, ReidOutput) and torch.equal(out.embedding.detach(), want)
    assert torch.equal(model.layer2[0].bn1.running_mean, stats)  # BNs frozen: the export folds them
    assert all(m.training for m in model.modules())  # the modes are restored
    (out.embedding.pow(2).sum() + out.logits[0].sum() + out.features[0].sum()).backward()
    for p in (model.conv1.weight, model.layer2[0].conv.weight, model.layer2[0].conv.alpha, model.layer3[0].act.weight,
              model.layer3[0].shortcut.conv.weight, model.head.embed.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_lce_qat_binary_convs_see_the_files_signs():
    from edgereid.export.lce import export_lce, quantize_image
    from edgereid.tflite import unpack_bits

    model = _qat_model()
    x = torch.randn(2, 3, 32, 16)
    export = export_lce(model, None, input_size=(32, 16))
    env = export.emulate(quantize_image(x.permute(0, 2, 3, 1).numpy(), export.input.scale, export.input.zero_point))
    seen = {}
    hooks = [u.conv.register_forward_pre_hook(lambda m, i, n=n: seen.__setitem__(n, i[0].detach()))
             for n, u in model.named_modules() if hasattr(u, "bn1") and hasattr(u, "shortcut")]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    assert len(seen) == 16
    for name, inp in seen.items():
        bits = unpack_bits(env[name + ".bn1"], inp.shape[1])
        assert torch.equal(torch.where(inp < 0, -1.0, 1.0), torch.from_numpy(bits).permute(0, 3, 1, 2)), name


def test_lce_qat_needs_a_binary_model():
    with pytest.raises(ModelError, match="int8_ranges .* needs binary=True"):
        build_model("bireid_resnet18", num_classes=5, width=0.125, binary=False, int8_ranges={"relu": [0.0, 1.0]})


def test_float_twin_of_another_identity_split_leaves_the_classifier_fresh():
    twin = build_model("bireid_resnet18", num_classes=7, width=0.125, binary=False)
    model = build_model("bireid_resnet18", num_classes=5, width=0.125)
    fresh = model.head.classifier.weight.clone()
    load_float_twin(model, twin.state_dict())
    assert torch.equal(model.head.classifier.weight, fresh)
    assert torch.equal(model.head.embed.weight, twin.head.embed.weight)
