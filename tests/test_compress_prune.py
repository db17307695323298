"""Pruning: each criterion removes the filters it should; MACs targets; residual shapes."""
import pytest
import torch
from torch import nn

torch.set_num_threads(1)
tp = pytest.importorskip("torch_pruning")

from edgereid.compress.prune import make_importance, prune, prune_to_macs  # noqa: E402
from edgereid.errors import EdgereidError  # noqa: E402


class TwoConv(nn.Module):
    """conv1 (4 filters under test) -> conv2 reading them with equal weights -> Linear."""

    def __init__(self, filters):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 3, 1, bias=False)
        self.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor(filters, dtype=torch.float32).view(4, 2, 1, 1))
            self.conv2.weight.fill_(1.0)  # equal contribution of every conv1 channel to the group score

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x)).mean(dim=(2, 3)))


def _pruned_filter(model, criterion, loss=None):
    """Index (in the original conv1) of the single filter a 25% channel prune removes."""
    before = model.conv1.weight.detach().clone()
    pruner = tp.pruner.MetaPruner(model, torch.randn(2, 2, 4, 4), importance=make_importance(criterion),
                                  pruning_ratio=0.25, ignored_layers=[model.fc])
    if loss is not None:
        loss(model).backward()
    pruner.step()
    kept = model.conv1.weight.detach()
    assert kept.shape[0] == 3
    remaining = [i for i in range(4) if any(torch.equal(before[i], k) for k in kept)]
    return sorted(set(range(4)) - set(remaining))


def test_l1_and_l2_remove_the_smallest_norm_filter():
    # L1 and L2 disagree: filter 0 = [1.5, 1.5] (L1 3.0, L2 2.12), filter 1 = [2.6, 0.1] (L1 2.7, L2 2.60).
    filters = [[1.5, 1.5], [2.6, 0.1], [3.0, 1.0], [4.0, 1.0]]
    assert _pruned_filter(TwoConv(filters), "l1") == [1]
    assert _pruned_filter(TwoConv(filters), "l2") == [0]


def test_fpgm_removes_the_filter_closest_to_the_geometric_median():
    # A tight cluster (filters 1-3) and a small outlier (filter 0). Magnitude prunes the
    # outlier (smallest norm); FPGM prunes filter 1, the one with the smallest summed
    # distance to the others (sums: 45.4, 16.9, 17.3, 18.0): the most replaceable.
    filters = [[-1.0, 0.0], [10.0, 10.0], [11.0, 10.0], [10.0, 11.0]]
    assert _pruned_filter(TwoConv(filters), "fpgm") == [1]
    assert _pruned_filter(TwoConv(filters), "l2") == [0]


def test_taylor_uses_gradients_not_magnitude():
    filters = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]  # equal norms: only gradients differ
    model = TwoConv(filters)
    x = torch.ones(2, 2, 4, 4)

    def loss(m):
        # d loss / d conv1 output channel c is proportional to scale[c]; channel 2 has ~0 gradient.
        scale = torch.tensor([1.0, 2.0, 0.0, 3.0]).view(1, 4, 1, 1)
        # Every layer needs a gradient tensor; fc's is zero.
        return m.conv2(m.conv1(x) * scale).sum() + 0.0 * sum(p.sum() for p in m.fc.parameters())

    # Taylor: |w * dL/dw| summed over the group (conv1 filter, conv2 input channel): zero for channel 2.
    assert _pruned_filter(model, "taylor", loss) == [2]


def test_random_is_seeded_and_runs():
    filters = [[1.0, 2.0], [2.0, 0.2], [3.0, 1.0], [4.0, 1.0]]
    torch.manual_seed(3)
    a = _pruned_filter(TwoConv(filters), "random")
    torch.manual_seed(3)
    assert _pruned_filter(TwoConv(filters), "random") == a


def test_unknown_criterion_is_a_clear_error():
    with pytest.raises(EdgereidError, match="unknown pruning criterion 'l3'"):
        make_importance("l3")


def _tiny_resnet():
    from edgereid.models import build_model

    return build_model("resnet18", num_classes=6, width=0.125)


@pytest.mark.parametrize("target", [0.75, 0.5])
def test_macs_target_residual_shapes_and_embedding_dim(target):
    from edgereid.models import model_complexity

    model = _tiny_resnet()
    x = torch.randn(4, 3, 64, 32)
    base_params, base_macs = model_complexity(model, (64, 32))
    pruned, report = prune(model, x, target, "l1", calib=[x])
    params, macs = model_complexity(pruned, (64, 32))
    assert macs / base_macs <= target + 0.005
    assert macs / base_macs > target - 0.15  # not grossly over-pruned
    assert params < base_params
    assert report["macs_ratio"] == pytest.approx(macs / base_macs)
    # Residual blocks: both inputs of every ADD keep the same channel count, the net runs
    # in eval and train mode, and the embedding width is unchanged.
    for block in [m for m in pruned.modules() if type(m).__name__ == "BasicBlock"]:
        out_ch = block.conv2.out_channels
        in_ch = block.downsample[0].out_channels if block.downsample is not None else block.conv1.in_channels
        assert out_ch == in_ch
    with torch.no_grad():
        assert pruned.eval()(x).shape == (4, model.embedding_dim)
    out = pruned.train()(x)
    assert out.logits[0].shape == (4, 6)


def test_iterative_pruning_calls_finetune_between_steps():
    model = _tiny_resnet()
    x = torch.randn(4, 3, 64, 32)
    calls = []
    pruned, report = prune(model, x, 0.5, "l2", calib=[x], steps=2, finetune=lambda m: calls.append(1) or m)
    assert len(calls) == 1 and len(report["history"]) == 2
    assert report["history"][0]["macs_ratio"] > report["history"][1]["macs_ratio"]
    assert report["macs_ratio"] <= 0.505


def test_impossible_target_is_rejected():
    with pytest.raises(EdgereidError, match="target MACs ratio must be in"):
        prune_to_macs(_tiny_resnet(), torch.randn(2, 3, 64, 32), 0.0)


def test_iterative_schedule_prunes_in_geometric_steps_and_finetunes_each_pruned_model():
    from edgereid.models import model_complexity

    model = _tiny_resnet()
    x = torch.randn(4, 3, 64, 32)
    base_macs = model_complexity(model, (64, 32))[1]
    seen = []

    def finetune(m):
        seen.append(model_complexity(m, (64, 32))[1] / base_macs)
        return m

    pruned, report = prune(model, x, 0.3, "fpgm", calib=[x], steps=4, finetune=finetune)
    ratios = [h["macs_ratio"] for h in report["history"]]
    goals = [0.3 ** (i / 4) for i in range(1, 5)]
    # Each step meets its geometric goal without grossly overshooting it; the caller
    # fine-tunes the last step's model, so finetune sees exactly the first three.
    assert all(g - 0.1 < r <= g + 1e-9 for r, g in zip(ratios, goals)), (ratios, goals)
    assert seen == pytest.approx(ratios[:3])
    assert report["steps"] == 4 and report["macs_ratio"] == pytest.approx(ratios[-1])


def test_unreachable_macs_target_is_one_line_with_the_smallest_reachable():
    with pytest.raises(EdgereidError, match=r"^cannot reach MACs ratio 0\.001x by pruning channels: the smallest "
                                            r"reachable is 0\.[0-9]+x \(every prunable group cut by 95%") as err:
        prune(_tiny_resnet(), torch.randn(2, 3, 64, 32), 0.001, "l1")
    assert "\n" not in str(err.value)


def test_cli_latency_target_below_the_unprunable_layers_is_one_error_line(tmp_path, capsys):
    """`edgereid compress --prune-latency-ms` too low for any pruning: exit 2 and one line naming the
    smallest predicted latency pruning can reach, which is itself reachable."""
    import re

    from edgereid.boards import load_board
    from edgereid.cli import main
    from edgereid.data.synthetic import synthesize
    from edgereid.engine import save_checkpoint
    from edgereid.latency.pruning import latency_target
    from edgereid.models import build_model

    data = synthesize(tmp_path / "data", num_ids=16, images_per_id=4, progress=False)  # compress batches 8 ids
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=4, width=0.125)
    ckpt = save_checkpoint(tmp_path / "m.pt", model_name="resnet18", model_args={"num_classes": 4, "width": 0.125},
                           state_dict=model.state_dict(), preprocess={"size": [64, 32]})
    with pytest.raises(SystemExit) as exit_:
        main(["compress", str(ckpt), "--dataset", f"synthetic:{data}", "--prune-latency-ms", "0.0001",
              "--board", "stm32h743", "--quantize", "none", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1, err
    found = re.fullmatch(r"error: cannot reach predicted latency on stm32h743 0\.0001 ms by pruning channels: "
                         r"the smallest reachable is ([0-9.]+) ms \(.*\)", err[0])
    assert found, err[0]
    smallest = float(found.group(1))
    # Asking for that figure succeeds: it is the floor, not a guess.
    pruned, report = prune(model, torch.randn(2, 3, 64, 32),
                           latency_target(load_board("stm32h743"), smallest * 1.001, (64, 32)), "l1")
    assert report["target"]["reached"] <= smallest * 1.001
