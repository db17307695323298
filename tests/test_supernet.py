"""The weight-sharing supernet: every sampled architecture computes what its own model
does with the same (sliced) weights, split BNs route by modality, BN recalibration."""
import random

import pytest
import torch

from edgereid.errors import ModelError
from edgereid.models import build_from_architecture, set_modality
from edgereid.models.supernet import SuperNet, copy_active_weights
from edgereid.search_space import load_space
from edgereid.search_space.space import sample

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    net = SuperNet(load_space("tiny"), num_classes=7)
    # Non-trivial BN statistics and affine parameters, different per BN.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d) or isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                if m.bias.requires_grad:
                    m.bias.uniform_(-0.2, 0.2)
    return net


@pytest.mark.parametrize("seed", range(6))
def test_sub_network_equals_its_own_model(supernet, seed):
    arch = sample(supernet.space, random.Random(seed))
    supernet.set_active(arch).eval()
    net = copy_active_weights(supernet, build_from_architecture(arch, 7)).eval()
    x = torch.randn(4, 3, *supernet.input_size)
    modality = torch.tensor([0, 1, 0, 1])
    set_modality(supernet, modality)
    set_modality(net, modality)
    with torch.no_grad():
        assert torch.allclose(supernet(x), net(x), atol=1e-5, rtol=1e-4)


def test_train_mode_output_and_recalibration(supernet):
    arch = sample(supernet.space, random.Random(11))
    supernet.set_active(arch).train()
    x = torch.randn(6, 3, *supernet.input_size)
    set_modality(supernet, torch.tensor([0, 0, 0, 1, 1, 1]))
    out = supernet(x)
    assert out.logits[0].shape == (6, 7) and out.embedding.shape == (6, arch.head.embedding)
    supernet.recalibrate([(x, None)] * 3)
    stem_bn = supernet.stem.bn.visible if supernet.stem.bn.split else supernet.stem.bn.shared
    assert stem_bn.num_batches_tracked.item() > 0
    assert torch.isfinite(stem_bn.running_var).all()


def test_architecture_outside_the_space_is_refused(supernet):
    other = sample(load_space("mcu"), random.Random(0))
    with pytest.raises(ModelError, match="is not in space tiny"):
        supernet.set_active(other)
    with pytest.raises(ModelError, match="call set_active"):
        SuperNet(load_space("tiny"), 3)(torch.randn(1, 3, 32, 16))
