"""Pruning aimed at a board's predicted latency instead of a MAC count.

`latency_target(board, ms, input_size)` is a `compress.prune.PruneTarget` whose cost is
the latency the board's table predicts for a torch model, so `compress.prune` bisects
the channel ratio until the pruned network meets it. The prediction reads the model's
kernels straight from one torch forward (`torch_kernels`): every conv, depthwise conv,
fully connected layer, pooling, mean, tensor ADD and concatenation with its shapes, BN
folded and activations fused as LiteRT's converter does, at the deployed precision.
Kernel configurations the table does not hold (most pruned widths) come from its
fitted per-op cost model, as for any model (`predict`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from edgereid.compress.prune import PruneTarget
from edgereid.errors import LatencyError
from edgereid.latency.fusion import FusedLayer, rules_for_board
from edgereid.latency.kernels import Kernel
from edgereid.latency.predict import predict_kernels
from edgereid.latency.runtime import runtime_of
from edgereid.latency.table import LatencyTable, load_table
from edgereid.ops import Precision


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _nhwc(t: torch.Tensor) -> tuple[int, int, int]:
    if t.dim() == 4:
        return int(t.shape[2]), int(t.shape[3]), int(t.shape[1])
    return 1, 1, int(t[0].numel())


class _KernelRecorder(TorchFunctionMode):
    """Records the kernels of the ops a forward calls (NCHW torch -> NHWC TFLite shapes)."""

    def __init__(self, precision: Precision):
        super().__init__()
        self.precision, self.kernels = precision, []

    def _add(self, **fields) -> None:
        self.kernels.append(Kernel(precision=self.precision, **fields))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "conv2d":
            x, w = args[0], args[1]
            stride, padding = _pair(kwargs.get("stride", args[3] if len(args) > 3 else 1)), \
                _pair(kwargs.get("padding", args[4] if len(args) > 4 else 0))
            groups = int(kwargs.get("groups", args[6] if len(args) > 6 else 1))
            h, wd, c = _nhwc(x)
            kh, kw = int(w.shape[2]), int(w.shape[3])
            same = padding == (kh // 2, kw // 2) and padding != (0, 0)
            depthwise = groups == c and groups > 1 and int(w.shape[0]) == c
            self._add(op="DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", in_h=h, in_w=wd, in_c=c,
                      out_c=int(w.shape[0]), kernel_h=kh, kernel_w=kw, stride_h=stride[0], stride_w=stride[1],
                      groups=groups, padding="SAME" if same or (kh, kw) == (1, 1) else "VALID")
        elif name == "linear":
            x, w = args[0], args[1]
            self._add(op="FULLY_CONNECTED", in_h=1, in_w=1, in_c=int(w.shape[1]), out_c=int(w.shape[0]))
        elif name in ("add", "__add__", "add_", "__iadd__") and len(args) == 2 and all(
                isinstance(a, torch.Tensor) and a.dim() == 4 for a in args) and args[0].shape == args[1].shape:
            h, wd, c = _nhwc(args[0])
            self._add(op="ADD", in_h=h, in_w=wd, in_c=c, out_c=c)
        elif name in ("mean", "adaptive_avg_pool2d") and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            h, wd, c = _nhwc(args[0])
            self._add(op="MEAN", in_h=h, in_w=wd, in_c=c, out_c=c, kernel_h=h, kernel_w=wd, padding="VALID")
        elif name in ("max_pool2d", "avg_pool2d") and isinstance(args[0], torch.Tensor):
            h, wd, c = _nhwc(args[0])
            k = _pair(kwargs.get("kernel_size", args[1] if len(args) > 1 else 1))
            s = kwargs.get("stride", args[2] if len(args) > 2 else None)
            s = _pair(s) if s not in (None, [], ()) else k
            self._add(op="MAX_POOL_2D" if name == "max_pool2d" else "AVERAGE_POOL_2D", in_h=h, in_w=wd, in_c=c,
                      out_c=c, kernel_h=k[0], kernel_w=k[1], stride_h=s[0], stride_w=s[1], padding="VALID")
        elif name == "cat" and isinstance(out, torch.Tensor) and out.dim() == 4:
            h, wd, c = _nhwc(out)
            self._add(op="CONCATENATION", in_h=h, in_w=wd, in_c=c, out_c=c)
        return out


def torch_kernels(model: nn.Module, input_size, precision: Precision = Precision.INT8) -> list[FusedLayer]:
    """The deployed kernels of `model` (eval mode, one image of `input_size` (H, W)), in call order."""
    was_training = model.training
    model.eval()
    recorder = _KernelRecorder(Precision.parse(precision))
    try:
        with torch.no_grad(), recorder:
            model(torch.zeros(1, 3, *tuple(input_size)))
    finally:
        model.train(was_training)
    return [FusedLayer(f"{k.op.lower()}{i}", (f"{k.op.lower()}{i}",), k) for i, k in enumerate(recorder.kernels)]


def milliseconds_per_unit(table: LatencyTable, board) -> float:
    """What one unit of `table` is in milliseconds on `board` (cycles and QEMU instructions at its clock)."""
    if table.unit == "s":
        return 1e3
    if not getattr(board, "clock_hz", None):
        raise LatencyError(f"board {board.name}: its table counts {table.unit} and the board file gives no "
                           "clock_hz to turn them into milliseconds")
    return 1e3 / board.clock_hz


def latency_target(board, ms: float, input_size, precision: Precision = Precision.INT8,
                   table: LatencyTable | None = None) -> PruneTarget:
    """Prune until `board`'s table predicts at most `ms` milliseconds per inference."""
    if not ms > 0:
        raise LatencyError(f"latency target must be > 0 ms, got {ms}")
    if table is None:
        table = load_table(board)
        table.check_runtime(runtime_of(board), rules_for_board(board).id)
    scale = milliseconds_per_unit(table, board)

    def cost(model: nn.Module) -> float:
        return predict_kernels(torch_kernels(model, input_size, precision), table).total * scale

    return PruneTarget(f"predicted latency on {board.name}", cost, float(ms), "ms")


# Flash the firmware's code and tables take beside the model's constants: a bound on the
# generated int8 images (text + data minus the constant arrays), so that a network within
# an estimate builds within the board (the real build is the check: `build-firmware`).
CODE_ALLOWANCE = 96 * 1024


def memory_estimate(fused: list[FusedLayer]) -> tuple[int, int]:
    """(flash, RAM) bytes an int8 build of these kernels needs, estimated: the weights and
    per-channel constants plus CODE_ALLOWANCE; the largest kernel's input + output (the
    per-layer lower bound of the planner's arena)."""
    flash = sum(f.kernel.weight_bytes for f in fused) + CODE_ALLOWANCE
    ram = max((f.kernel.input_bytes + f.kernel.output_bytes for f in fused), default=0)
    return flash, ram


def fit_target(board, input_size, precision: Precision = Precision.INT8, margin: float = 1.0) -> PruneTarget:
    """Prune until the estimated flash and RAM fit `board` (times `margin` < 1 to leave room):
    the cost is the larger of flash / flash budget and (RAM + stack) / RAM budget, asked to be <= 1."""
    flash_budget, ram_budget = board.memory.flash_bytes, board.memory.ram_bytes
    if not flash_budget or not ram_budget:
        raise LatencyError(f"board {board.name}: its board file gives no flash or RAM size to fit")
    stack = board.memory.stack_bytes or 0

    def cost(model: nn.Module) -> float:
        flash, ram = memory_estimate(torch_kernels(model, input_size, precision))
        return max(flash / (margin * flash_budget), (ram + stack) / (margin * ram_budget))

    return PruneTarget(f"fit on {board.name} (estimated flash and RAM / budget)", cost, 1.0)


__all__ = ["torch_kernels", "latency_target", "milliseconds_per_unit", "memory_estimate", "fit_target",
           "CODE_ALLOWANCE"]
