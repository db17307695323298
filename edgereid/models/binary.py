"""Binary layers in torch, shaped like Larq's: a binary layer is an ordinary layer with quantizer arguments.

    QuantConv2d(cin, cout, 3, stride=1, padding="same", input_quantizer="approx_sign",
                kernel_quantizer="magnitude_aware_sign", pad_values=1.0, scale=True)

- `input_quantizer` / `kernel_quantizer`: a name from QUANTIZERS, a Quantizer, or None
  (real-valued). Names and behaviour follow Larq:
  - "ste_sign": sign forward; straight-through gradient where |x| <= 1, 0 elsewhere;
  - "approx_sign": sign forward; Bi-Real's gradient 2 - 2|x| on (-1, 1), 0 elsewhere
    (piecewise 2 + 2x on [-1, 0), 2 - 2x on [0, 1));
  - "magnitude_aware_sign" (kernels): sign(W) scaled per output channel by mean |W| of that
    channel; the scale carries no gradient (Larq's stop_gradient), the sign an ste_sign one.
  sign(0) = +1 (and NaN gives +1), as Larq Compute Engine's LceQuantize (bit = x < 0).
- `scale=True`: a learnable per-output-channel scale alpha (initialised to 1) multiplying the
  conv output (BiRe-ID).
- `padding="same"` is TensorFlow's SAME (the odd extra row/column of padding goes bottom/right,
  as in a .tflite), "valid" none; `pad_values` (Larq): the value the *quantized* input is padded
  with, 0.0 or 1.0 (1.0: every tap is +-1, the cheap case for Larq Compute Engine).

The binary conv is computed as conv(sign(x), sign(W)) (exact small integers in float32, so the
result for a pixel depends on its popcount alone) times (kernel scale * alpha) per channel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgereid.errors import ModelError

__all__ = ["sign", "Quantizer", "SteSign", "ApproxSign", "MagnitudeAwareSign", "QUANTIZERS", "get_quantizer",
           "same_padding", "QuantConv2d", "QuantLinear", "SameMaxPool2d", "is_binary"]


def sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0 (also -0.0 and NaN), -1 where x < 0: LceQuantize's bit = (x < 0)."""
    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))


class _SteSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, clip_value: float):
        ctx.save_for_backward(x)
        ctx.clip_value = clip_value
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip_value).to(grad.dtype), None


class _ApproxSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (2.0 - 2.0 * x.abs()).clamp(min=0.0)


class Quantizer:
    """A quantizer: `q(x) -> (values, scale)`; scale is None or a per-output-channel tensor that
    multiplies the layer's output (kernel quantizers); `name` is Larq's."""

    name = "quantizer"
    binary = True

    def __call__(self, x: torch.Tensor):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class SteSign(Quantizer):
    name = "ste_sign"

    def __init__(self, clip_value: float = 1.0):
        self.clip_value = float(clip_value)

    def __call__(self, x):
        return _SteSignFn.apply(x, self.clip_value), None

    def __repr__(self):
        return f"SteSign(clip_value={self.clip_value})"


class ApproxSign(Quantizer):
    name = "approx_sign"

    def __call__(self, x):
        return _ApproxSignFn.apply(x), None


class MagnitudeAwareSign(Quantizer):
    """sign(W) with a straight-through gradient, and mean |W| per output channel (dim 0) as the
    scale, without gradient (Larq's magnitude_aware_sign)."""

    name = "magnitude_aware_sign"

    def __init__(self, clip_value: float = 1.0):
        self.clip_value = float(clip_value)

    def __call__(self, w):
        dims = tuple(range(1, w.dim()))
        scale = w.detach().abs().mean(dim=dims)
        return _SteSignFn.apply(w, self.clip_value), scale

    def __repr__(self):
        return f"MagnitudeAwareSign(clip_value={self.clip_value})"


QUANTIZERS = {"ste_sign": SteSign, "approx_sign": ApproxSign, "magnitude_aware_sign": MagnitudeAwareSign}


def get_quantizer(spec) -> Quantizer | None:
    """None, a Quantizer, or one of QUANTIZERS' names."""
    if spec is None or isinstance(spec, Quantizer):
        return spec
    if isinstance(spec, str) and spec in QUANTIZERS:
        return QUANTIZERS[spec]()
    raise ModelError(f"unknown quantizer {spec!r}; expected None or one of {', '.join(sorted(QUANTIZERS))}")


def same_padding(in_size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow SAME: (before, after); the odd extra goes after."""
    out = -(-in_size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - in_size)
    return total // 2, total - total // 2


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def is_binary(module: nn.Module) -> bool:
    """A layer whose input and kernel are both binarized."""
    return isinstance(module, (QuantConv2d, QuantLinear)) and module.input_quantizer is not None \
        and module.kernel_quantizer is not None


class QuantConv2d(nn.Module):
    """Conv2d with Larq's quantizer arguments (module doc). Parameters: `weight` [Cout, Cin/g, kh, kw],
    `alpha` [Cout] when scale=True, `bias` [Cout] when bias=True."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding: str = "same",
                 dilation=1, groups: int = 1, bias: bool = False, input_quantizer=None, kernel_quantizer=None,
                 pad_values: float = 0.0, scale: bool = False):
        super().__init__()
        if padding not in ("same", "valid"):
            raise ModelError(f"QuantConv2d padding {padding!r}: expected 'same' or 'valid'")
        if float(pad_values) not in (0.0, 1.0):
            raise ModelError(f"QuantConv2d pad_values {pad_values!r}: expected 0.0 or 1.0 (Larq)")
        if in_channels % groups or out_channels % groups:
            raise ModelError(f"QuantConv2d: {in_channels} -> {out_channels} channels do not split into {groups} groups")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        self.padding, self.groups, self.pad_values = padding, int(groups), float(pad_values)
        self.input_quantizer = get_quantizer(input_quantizer)
        self.kernel_quantizer = get_quantizer(kernel_quantizer)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        self.alpha = nn.Parameter(torch.ones(out_channels)) if scale else None
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}, groups={self.groups}, input_quantizer={self.input_quantizer}, "
                f"kernel_quantizer={self.kernel_quantizer}, pad_values={self.pad_values}, "
                f"scale={self.alpha is not None}")

    def quantized_kernel(self):
        """(kernel values the conv uses, per-output-channel multiplier or None): (sign(W), mean|W| * alpha) etc."""
        if self.kernel_quantizer is None:
            values, scale = self.weight, None
        else:
            values, scale = self.kernel_quantizer(self.weight)
        if self.alpha is not None:
            scale = self.alpha if scale is None else scale * self.alpha
        return values, scale

    def reconstructed_kernel(self) -> torch.Tensor:
        """The kernel as one tensor: alpha * (scale) * sign(W) for a binary kernel (KR-GAL's target)."""
        values, scale = self.quantized_kernel()
        return values if scale is None else values * scale.view(-1, *([1] * (values.dim() - 1)))

    def pads(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding for an h x w input."""
        if self.padding == "valid":
            return 0, 0, 0, 0
        top, bottom = same_padding(h, self.kernel_size[0], self.stride[0], self.dilation[0])
        left, right = same_padding(w, self.kernel_size[1], self.stride[1], self.dilation[1])
        return left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x, _ = self.input_quantizer(x)
        pads = self.pads(x.shape[-2], x.shape[-1])
        if any(pads):
            x = F.pad(x, pads, value=self.pad_values if self.input_quantizer is not None else 0.0)
        values, scale = self.quantized_kernel()
        y = F.conv2d(x, values, None, self.stride, 0, self.dilation, self.groups)
        if scale is not None:
            y = y * scale.view(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


class QuantLinear(nn.Module):
    """Linear with quantizer arguments (Larq's QuantDense) and an optional learnable scale."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, input_quantizer=None,
                 kernel_quantizer=None, scale: bool = False):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.input_quantizer = get_quantizer(input_quantizer)
        self.kernel_quantizer = get_quantizer(kernel_quantizer)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.alpha = nn.Parameter(torch.ones(out_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, input_quantizer={self.input_quantizer}, "
                f"kernel_quantizer={self.kernel_quantizer}, scale={self.alpha is not None}")

    quantized_kernel = QuantConv2d.quantized_kernel
    reconstructed_kernel = QuantConv2d.reconstructed_kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x, _ = self.input_quantizer(x)
        values, scale = self.quantized_kernel()
        y = F.linear(x, values)
        if scale is not None:
            y = y * scale
        if self.bias is not None:
            y = y + self.bias
        return y


class SameMaxPool2d(nn.Module):
    """Max pooling with TensorFlow's SAME padding (the window is clipped at the edges), as MAX_POOL_2D."""

    def __init__(self, kernel_size=3, stride=2):
        super().__init__()
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding='same'"

    def forward(self, x):
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)
