"""Models: output contract in train/eval mode, parameter counts, the MAC counter, exportable ops."""
import operator

import pytest
import torch
from torch import nn

from edgereid.errors import ModelError
from edgereid.models import ReidOutput, build_model, list_models, model_complexity

torch.set_num_threads(1)


def test_registry_names():
    assert list_models() == ["resnet18", "resnet34", "sclnet"]
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
