"""CM-NAS's BN-switch search on a fixed backbone: switch strings in build order, the fixed
backbone's space, and an evolutionary search that changes the switches only."""
import random

import pytest
import torch

from edgereid.boards import load_board
from edgereid.errors import EdgereidError, ModelError
from edgereid.latency import load_table
from edgereid.models import bn_switches
from edgereid.models.searched import build_from_architecture
from edgereid.search.bn_switches import (bn_bits, fixed_backbone_space, num_bn_layers, search_bn_switches,
                                         with_bn_switches)
from edgereid.search.budget import Budget, Cost, CostModel
from edgereid.search_space import load_space
from edgereid.search_space.space import sample

torch.set_num_threads(1)


def _backbone(seed=3):
    return sample(load_space("mcu"), random.Random(seed))


def test_bits_follow_the_built_models_bn_order():
    arch = _backbone()
    assert len(bn_bits(arch)) == num_bn_layers(arch)
    assert bn_bits(arch) == bn_switches(build_from_architecture(arch, num_classes=4))
    bits = "".join(random.Random(1).choice("01") for _ in range(num_bn_layers(arch)))
    switched = with_bn_switches(arch, bits)
    assert bn_bits(switched) == bits
    assert bn_switches(build_from_architecture(switched, num_classes=4)) == bits
    assert bn_bits(with_bn_switches(arch, "split")) == "1" * num_bn_layers(arch)
    assert bn_bits(with_bn_switches(arch, "shared")) == "0" * num_bn_layers(arch)
    # Only the switches change.
    assert with_bn_switches(switched, "shared") == with_bn_switches(arch, "shared")
    with pytest.raises(ModelError, match="one per BN layer"):
        with_bn_switches(arch, "01")


def test_switches_do_not_change_the_cost_on_the_board():
    board = load_board("stm32h743")
    costs = CostModel(board, load_table(board))
    arch = _backbone()
    assert costs(with_bn_switches(arch, "shared")) == costs(with_bn_switches(arch, "split"))


def test_fixed_backbone_space_samples_only_switches():
    arch = _backbone()
    space = fixed_backbone_space(arch)
    assert space.name == "mcu"
    drawn = [sample(space, random.Random(s)) for s in range(20)]
    assert {with_bn_switches(a, "shared") for a in drawn} == {with_bn_switches(arch, "shared")}
    assert len({bn_bits(a) for a in drawn}) == 20


def test_search_changes_switches_only_finds_a_good_setting_and_resumes(tmp_path):
    backbone = _backbone()
    n = num_bn_layers(backbone)
    target = "".join("1" if i % 3 == 0 else "0" for i in range(n))

    def score(arch):   # a stand-in accuracy: agreement with a hidden switch setting
        return sum(a == b for a, b in zip(bn_bits(arch), target)) / n

    budget = Budget("board", 10.0, None, None)
    cost = Cost(5.0, 1000, 1000)
    run = dict(population=10, generations=6, parents=3, seed=7, progress=False)
    scored = search_bn_switches(backbone, budget, lambda a: cost, score, **run)
    assert len(scored) == 10 + 5 * 7
    assert all(with_bn_switches(c.arch, "shared") == with_bn_switches(backbone, "shared") for c in scored)
    assert all(c.cost == cost for c in scored)
    first, best = max(c.score for c in scored[:10]), max(c.score for c in scored)
    assert best > first

    state = tmp_path / "state.json"
    search_bn_switches(backbone, budget, lambda a: cost, score, **dict(run, generations=2), state_path=state)
    resumed = search_bn_switches(backbone, budget, lambda a: cost, score, **run, state_path=state, resume=True)
    assert [c.arch for c in resumed] == [c.arch for c in scored]

    with pytest.raises(EdgereidError, match=r"backbone does not meet the budget .*latency 50 ms > 10 ms"):
        search_bn_switches(backbone, budget, lambda a: Cost(50.0, 1, 1), score, **run)
