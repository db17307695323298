"""Models: output contract in train/eval mode, parameter counts, the MAC counter, exportable ops."""
import operator

import pytest
import torch
from torch import nn

from edgereid.errors import ModelError
from edgereid.models import ReidOutput, build_model, list_models, model_complexity

torch.set_num_threads(1)


def test_registry_names():
    assert list_models() == ["bireid_resnet18", "resnet18", "resnet34", "sclnet"]
    with pytest.raises(ModelError, match="unknown model 'resnet50'"):
        build_model("resnet50", 10)
    with pytest.raises(ModelError, match="num_classes"):
        build_model("sclnet", 0)
    with pytest.raises(ModelError, match="invalid arguments"):
        build_model("resnet18", 10, no_such_option=1)


@pytest.mark.parametrize("name,heads", [("resnet18", 1), ("sclnet", 2)])
def test_train_and_eval_outputs(name, heads):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, width=0.25)
    x = torch.randn(4, 3, 64, 32)
    out = model.train()(x)
    assert isinstance(out, ReidOutput)
    assert len(out.logits) == len(out.features) == heads
    assert all(lg.shape == (4, 7) for lg in out.logits)
    assert out.embedding.shape == (4, model.embedding_dim)
    emb = model.eval()(x)
    assert isinstance(emb, torch.Tensor) and emb.shape == (4, model.embedding_dim)


@pytest.mark.parametrize("name", ["resnet18", "sclnet"])
def test_embedding_dim_reduction(name):
    model = build_model(name, num_classes=5, embedding_dim=96, width=0.25).eval()
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, 96)


def test_bnneck_bias_is_frozen():
    model = build_model("sclnet", 5, width=0.25)
    assert not model.head.bnneck.bias.requires_grad
    assert not model.shallow_head.bnneck.bias.requires_grad


def test_resnet18_parameter_count_matches_the_standard_backbone():
    # torchvision resnet18 has 11,176,512 parameters without its fc layer; ours adds the
    # BN-neck's 2 x 512 affine parameters and nothing else in eval mode.
    params, macs = model_complexity(build_model("resnet18", 751), (256, 128))
    assert params == 11_176_512 + 1024
    # Last stride 1: 1.99 GMACs at 256x128 instead of ~1.2 with stride 2.
    assert 1.9e9 < macs < 2.1e9


def test_sclnet_has_about_2_3m_parameters():
    params, macs_256 = model_complexity(build_model("sclnet", 751), (256, 128))
    assert abs(params - 2.3e6) / 2.3e6 < 0.15
    _, macs_128 = model_complexity(build_model("sclnet", 751), (128, 64))
    assert macs_128 * 4 == pytest.approx(macs_256, rel=0.02)  # MACs scale with pixels


def test_width_multiplier_rounds_to_multiples_of_8():
    model = build_model("resnet18", 10, width=0.3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.in_channels != 3:
            assert m.out_channels % 8 == 0 and m.in_channels % 8 == 0
    assert model.layer1[0].conv1.out_channels == 16  # 64 * 0.3 = 19.2 -> 16


def test_mac_counter_on_a_hand_computable_net():
    # conv 3->8, 3x3, stride 1, pad 1 on 10x6: 10*6*8 outputs x 27 MACs = 12,960;
    # depthwise 8, 3x3, stride 2 -> 5x3x8 outputs x 9 = 1,080; mean; linear 8->4: 32.
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
            self.dw = nn.Conv2d(8, 8, 3, 2, 1, groups=8)
            self.fc = nn.Linear(8, 4)
            self.unused = nn.Linear(100, 100)  # never called: not counted

        def forward(self, x):
            return self.fc(self.dw(self.conv(x)).mean((2, 3)))

    params, macs = model_complexity(Tiny(), (10, 6))
    assert macs == 12_960 + 1_080 + 32
    assert params == 3 * 8 * 9 + (8 * 9 + 8) + (8 * 4 + 4)


@pytest.mark.parametrize("name", ["sclnet", "resnet18"])
def test_eval_graph_uses_only_mcu_friendly_ops(name):
    allowed_modules = (nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Linear)
    gm = torch.fx.symbolic_trace(build_model(name, 5, width=0.25).eval())
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], allowed_modules), f"{node.target}: {modules[node.target]}"
        elif node.op in ("call_function", "call_method"):
            # No normalisation, reshapes or slicing in the exported graph: add, cat and mean only.
            assert node.target in (operator.add, torch.cat, "mean"), f"{node.name}: {node.target}"


def test_deterministic_given_seed():
    torch.manual_seed(1)
    a = build_model("sclnet", 5, width=0.25).state_dict()
    torch.manual_seed(1)
    b = build_model("sclnet", 5, width=0.25).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- search-space points as models, switchable BNs ------------------------------------------

def _assert_plain_graph(model):
    """The eval graph holds only ops with MCU int8 kernels (as for the named models)."""
    allowed_modules = (nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Linear)
    gm = torch.fx.symbolic_trace(model.eval())
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            assert isinstance(modules[node.target], allowed_modules), f"{node.target}: {modules[node.target]}"
        elif node.op in ("call_function", "call_method"):
            assert node.target in (operator.add, torch.cat, "mean"), f"{node.name}: {node.target}"


def _arch(bn="split", precision="int8"):
    from edgereid.search_space import Architecture, Block, Head, Stem

    blocks = (Block(width=16, depth=1, stride=2, expand=2, bn=(bn,) * 3, precision=precision),
              Block(width=16, depth=2, stride=1, expand=1, bn=("shared", bn) * 2))
    return Architecture((32, 16, 3), Stem(width=8, bn=bn), blocks, Head(embedding=32, bn=bn))


@pytest.mark.parametrize("space,seed", [("tiny", 0), ("tiny", 1), ("tiny", 2), ("tiny", 3), ("mcu", 0)])
def test_searched_model_macs_equal_the_search_space_count(space, seed):
    import random

    from edgereid.models import for_modality
    from edgereid.search_space import count_macs, load_space, sample

    arch = sample(load_space(space), random.Random(seed))
    model = build_model("arch", 5, architecture=arch)
    h, w, _ = arch.input_shape
    _, macs = model_complexity(for_modality(model, "visible"), (h, w))
    assert macs == count_macs(arch)
    assert model.embedding_dim == arch.head.embedding
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.groups > 1 for m in convs) == sum(b.depth for b in arch.blocks)  # one depthwise per unit


def test_build_model_arch_arguments():
    arch = _arch("shared")
    model = build_model("arch", 4, architecture=arch.to_dict())  # the form checkpoints store
    assert model.model_name == "arch" and model.embedding_dim == 32
    assert list_models() == ["bireid_resnet18", "resnet18", "resnet34", "sclnet"]  # needs an architecture: not listed
    with pytest.raises(ModelError, match="needs architecture"):
        build_model("arch", 4)
    with pytest.raises(ModelError, match="width multiplier"):
        build_model("arch", 4, width=0.5, architecture=arch)
    with pytest.raises(ModelError, match="embedding_dim 7 differs"):
        build_model("arch", 4, embedding_dim=7, architecture=arch)
    with pytest.raises(ModelError, match="invalid arguments for model arch: depth"):
        build_model("arch", 4, architecture=arch, depth=3)


def test_binary_blocks_are_refused_until_binarization_exists():
    from edgereid.models import build_from_architecture

    with pytest.raises(ModelError, match=r"blocks \[0\] are binary: binary blocks need issue 9"):
        build_from_architecture(_arch(precision="binary"), 4)


def test_split_bn_normalises_each_modality_with_its_own_bn():
    from edgereid.models import SwitchableBatchNorm2d, set_modality

    torch.manual_seed(0)
    x = torch.randn(6, 3, 4, 4) + torch.arange(6.0).view(6, 1, 1, 1)
    infrared = torch.tensor([1, 0, 1, 0, 0, 1])
    bn = set_modality(SwitchableBatchNorm2d(3, split=True).train(), infrared)
    y = bn(x)
    vis, ir = x[infrared == 0], x[infrared == 1]
    torch.testing.assert_close(y[infrared == 0], nn.BatchNorm2d(3).train()(vis))
    torch.testing.assert_close(y[infrared == 1], nn.BatchNorm2d(3).train()(ir))
    # Each BN's running statistics come from its half of the batch only.
    torch.testing.assert_close(bn.visible.running_mean, 0.1 * vis.mean((0, 2, 3)))
    torch.testing.assert_close(bn.infrared.running_mean, 0.1 * ir.mean((0, 2, 3)))
    # A whole batch of one modality; a shared BN ignores the modality.
    set_modality(bn, "infrared")
    torch.testing.assert_close(bn(x), nn.BatchNorm2d(3).train()(x))
    shared = set_modality(SwitchableBatchNorm2d(3, split=False).train(), infrared)
    torch.testing.assert_close(shared(x), nn.BatchNorm2d(3).train()(x))
    set_modality(bn, None)
    with pytest.raises(ModelError, match="split \\(per-modality\\) BNs"):
        bn(x)
    with pytest.raises(ModelError, match="modality must be"):
        set_modality(bn, "thermal")


def test_for_modality_folds_to_plain_bns_with_the_same_outputs():
    from edgereid.export.prepare import prepare_for_export
    from edgereid.models import (MODALITIES, SwitchableBatchNorm1d, SwitchableBatchNorm2d, build_from_architecture,
                                 for_modality, modality)

    torch.manual_seed(0)
    model = build_from_architecture(_arch("split"), 4)
    x = torch.randn(8, 3, 32, 16)
    with modality(model, torch.tensor([0] * 4 + [1] * 4)), torch.no_grad():
        for _ in range(3):  # the two halves' running statistics drift apart
            model.train()(torch.cat([x[:4], 3 * x[4:] + 1]))
    model.eval()
    with pytest.raises(ModelError, match="split"):
        model(x)  # no modality told: refused rather than guessed
    outputs = {}
    for name in MODALITIES:
        plain = for_modality(model, name)
        assert not any(isinstance(m, (SwitchableBatchNorm1d, SwitchableBatchNorm2d)) for m in plain.modules())
        with modality(model, name), torch.no_grad():
            outputs[name] = model(x)
        with torch.no_grad():
            assert torch.equal(plain(x), outputs[name])
            # export folds the BN-neck into the head's FC, as for the named models
            torch.testing.assert_close(prepare_for_export(plain)(x), outputs[name], rtol=1e-4, atol=1e-5)
        _assert_plain_graph(plain)
    assert not torch.allclose(outputs["visible"], outputs["infrared"])
    with pytest.raises(ModelError, match="needs a modality"):
        for_modality(model, None)


def test_shared_searched_model_is_plain_as_built():
    from edgereid.models import build_from_architecture

    model = build_from_architecture(_arch("shared"), 4)
    _assert_plain_graph(model)
    out = model.train()(torch.randn(4, 3, 32, 16))
    assert isinstance(out, ReidOutput) and out.logits[0].shape == (4, 4) and out.features[0].shape == (4, 32)
    assert model.eval()(torch.randn(2, 3, 32, 16)).shape == (2, 32)


def test_searched_model_trains_on_identity_aligned_modality_halves():
    from edgereid.engine import fit
    from edgereid.losses import ReidLoss
    from edgereid.models import build_from_architecture, set_modality

    torch.manual_seed(0)
    model = build_from_architecture(_arch("split"), 4)
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    pattern = torch.randn(4, 3, 32, 16)
    visible = pattern[pids] + 0.3 * torch.randn(8, 3, 32, 16)
    infrared = pattern[pids].mean(1, keepdim=True).expand(-1, 3, -1, -1) + 0.3 * torch.randn(8, 3, 32, 16)
    batch = (torch.cat([visible, infrared]), torch.cat([pids, pids]), torch.tensor([0] * 8 + [1] * 8))
    losses = []
    loss_fn = ReidLoss(4)

    def record(out, targets):
        loss = loss_fn(out, targets)
        losses.append(loss.item())
        return loss

    fit(model, [batch] * 12, record, lambda m: torch.optim.Adam(m.parameters(), lr=3e-3), epochs=1,
        forward=lambda m, b: set_modality(m, b[2])(b[0]))
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0], losses
