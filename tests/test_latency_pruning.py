"""Pruning aimed at a board's predicted latency: the torch model's kernels as the table
reads them, the bisection meeting the target, and the unreachable target's one clear line."""
import pytest
import torch

from edgereid.boards import load_board
from edgereid.compress.prune import prune
from edgereid.errors import EdgereidError, LatencyError
from edgereid.latency import load_table, predict_kernels
from edgereid.latency.pruning import latency_target, milliseconds_per_unit, torch_kernels
from edgereid.models import build_model

pytest.importorskip("torch_pruning")
torch.set_num_threads(1)


def _net():
    torch.manual_seed(0)
    return build_model("resnet18", 10, width=0.25)


def test_torch_kernels_read_every_mac_bearing_op():
    fused = torch_kernels(_net(), (128, 64))
    ops = [f.kernel.op for f in fused]
    assert ops.count("CONV_2D") == 20 and ops.count("ADD") == 8 and ops.count("MAX_POOL_2D") == 1
    assert ops[-1] == "MEAN"
    stem = fused[0].kernel
    assert (stem.in_h, stem.in_w, stem.in_c, stem.out_c, stem.kernel_h, stem.stride_h, stem.padding) == \
        (128, 64, 3, 16, 7, 2, "SAME")
    # The traced MACs are the model's conv MACs (model_complexity counts the same layers).
    from edgereid.models import model_complexity
    assert sum(f.kernel.macs for f in fused if f.kernel.op == "CONV_2D") == model_complexity(_net(), (128, 64))[1]


def test_latency_aware_pruning_meets_the_target_within_ten_percent():
    board = load_board("stm32h743")
    table = load_table(board)
    model = _net()
    scale = milliseconds_per_unit(table, board)
    before = predict_kernels(torch_kernels(model, (128, 64)), table).total * scale
    target = latency_target(board, 0.6 * before, (128, 64), table=table)
    x = torch.randn(4, 3, 128, 64)
    pruned, report = prune(model, x, target, "l1")
    reached = report["target"]["reached"]
    assert reached <= 0.6 * before and reached >= 0.9 * 0.6 * before, (before, reached)
    assert report["target"]["unit"] == "ms" and report["macs_ratio"] < 1.0


def test_unreachable_latency_is_one_clear_line_with_the_smallest_reachable():
    board = load_board("rpi5-cpu")
    target = latency_target(board, 1e-6, (128, 64), table=load_table(board))
    with pytest.raises(EdgereidError, match=r"cannot reach predicted latency on rpi5-cpu 1e-06 ms by pruning "
                                            r"channels: the smallest reachable is [0-9.e-]+ ms"):
        prune(_net(), torch.randn(2, 3, 128, 64), target, "l1")


def test_latency_target_checks_its_arguments():
    board = load_board("stm32h743")
    with pytest.raises(LatencyError, match="must be > 0 ms"):
        latency_target(board, 0.0, (128, 64), table=load_table(board))


def test_fit_target_prunes_until_the_estimate_fits_the_board():
    from edgereid.latency.pruning import fit_target, memory_estimate

    board = load_board("nrf52840")
    model = build_model("resnet18", 10, width=1.0)
    flash, ram = memory_estimate(torch_kernels(model, (128, 64)))
    assert flash > board.memory.flash_bytes        # ResNet-18 at full width does not fit 1 MB
    pruned, report = prune(model, torch.randn(4, 3, 128, 64), fit_target(board, (128, 64)), "l1")
    flash, ram = memory_estimate(torch_kernels(pruned, (128, 64)))
    assert flash <= board.memory.flash_bytes and ram + board.memory.stack_bytes <= board.memory.ram_bytes
    assert report["target"]["reached"] <= 1.0
