"""Export a binary Re-ID model (bireid_resnet18) to TFLite in Larq Compute Engine's format.

The graph is written op by op through edgereid.tflite's ModelBuilder (a mixed binary / int8
graph cannot come out of litert-torch), following DESIGN.md's "Larq Compute Engine format":

    image int8 -> CONV_2D 7x7/2 (+BN, RELU) -> MAX_POOL_2D 3x3/2 -> 16 units -> head -> embedding int8
    unit:  x --DEPTHWISE_CONV_2D 1x1 (threshold)--LceQuantize--LceBconv2d--PRELU--ADD-->
           |____________ identity, or [AVERAGE_POOL_2D 2x2] -> CONV_2D 1x1 (+BN) ______|
    head:  AVERAGE_POOL_2D (whole map) -> FULLY_CONNECTED (Linear + BN-neck folded)

- The unit's BN -> sign is a per-channel threshold on the int8 input: sign(BN(x)) is +1 exactly
  for q >= T (BN scale > 0) or q <= T (scale < 0), T found by evaluating the BN at all 256 int8
  values. A DEPTHWISE_CONV_2D 1x1 with weights +-1 (scale 1), bias -w (T - zp) and output scale =
  input scale (zero point 0) computes w (q - T) exactly (its multiplier is exactly 1.0; saturation
  keeps the sign), and LceQuantize takes bit = (out < 0).
- LceBconv2d: filter = sign(W) bitpacked OHWI; post_activation_multiplier = mean|W| * alpha * BN
  scale, post_activation_bias = BN shift; int8 output (output transform of DESIGN.md). Where a
  binary conv feeds the next one directly (`residual=False` models) and BN -> PReLU -> BN -> sign
  is monotone in the popcount, the output is bitpacked: bit = (a > threshold), filters of
  channels whose pre-sign value falls with the dot product flipped; otherwise int8 output.
- LceBMaxPool2d: where the stem's max pool feeds a binarizer only (no shortcut reads the real
  value) and every threshold is increasing, the signs are pooled instead (AND of the words).
- Real-valued layers are full int8: per-channel symmetric weights, asymmetric activations from
  min / max over calibration images; int8 input (its range from the preprocessing: pixel values
  in [0, 1]) and int8 output.
- `binary_head=True`: LceQuantize -> LceDequantize (int8 +-1, scale 1) -> FULLY_CONNECTED with +-1
  weights (LCE has no binary dense op).
- `int8=False` writes the same graph in float32 (LceBconv2d with float output, LceDequantize to
  float); no calibration needed.

`LceExport.emulate(q_image)` runs the int8 graph in numpy with the arithmetic of the kernels that
LCE's interpreter runs (TFLite 2.16's optimized CONV_2D / DEPTHWISE_CONV_2D round the final shift
half up; PRELU, ADD, pooling and FULLY_CONNECTED as TFLite's reference code; LceBconv2d as
DESIGN.md), with every binarizer's bit = the sign of the torch model's BN applied to the
dequantized int8 input: it is the torch model with its real-valued layers in int8, and the
exactness check compares the interpreter's bitpacked tensors with it bit for bit.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

import edgereid
from edgereid import atomic
from edgereid.data import ReidImageDataset, build_transforms
from edgereid.errors import CheckpointError, ExportError
from edgereid.models import build_model, load_float_twin
from edgereid.models.binary import QUANTIZERS, QuantConv2d, QuantLinear, SameMaxPool2d, same_padding
from edgereid.models.bireid import BiReIDResNet, BiReIDUnit, Downsample
from edgereid.tflite import Graph, LceRunner, pack_bits, parse_graph, unpack_bits
from edgereid.tflite.builder import ModelBuilder
from edgereid.tflite.flatbuf import METADATA_NAME
from edgereid.tflite.writer import write_graph

__all__ = ["export_lce", "export_lce_checkpoint", "LceExport", "LceEmbedder", "torch_signs", "quantize_image",
           "calibration_images", "calibration_ranges", "lce_op_counts", "PREPROCESS_DEFAULT"]

PREPROCESS_DEFAULT = {"size": [128, 64], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                      "channel_order": "rgb"}
_SIGN_QUANTIZERS = tuple(QUANTIZERS.values())
CALIB_PERCENTILE = None  # int8 activation ranges: min / max over the calibration images


# ---- TFLite integer arithmetic (numpy, int64) ----------------------------------------------------

def round_half_away(x):
    """std::round: halves go away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: (Q0.31 multiplier, shift), real = m * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def _srdhm(a, b: int):
    """SaturatingRoundingDoublingHighMul (no saturation case arises here)."""
    ab = np.asarray(a, dtype=np.int64) * np.int64(b)
    nudged = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    return np.where(nudged >= 0, nudged // (1 << 31), -((-nudged) // (1 << 31)))


def _rdpot_away(x, exponent: int):
    """gemmlowp RoundingDivideByPOT: halves away from zero."""
    if exponent == 0:
        return x
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _rdpot_up(x, exponent: int):
    """The optimized kernels' final shift: add half, arithmetic shift (halves go up)."""
    if exponent == 0:
        return x
    return (x + (1 << (exponent - 1))) >> exponent


def mbqm(x, multiplier: int, shift: int, optimized: bool = False):
    """MultiplyByQuantizedMultiplier (double rounding); `optimized`: the final shift rounds half up,
    as TFLite 2.16's optimized int8 CONV_2D / DEPTHWISE_CONV_2D do (checked against LCE's interpreter)."""
    x = np.asarray(x, dtype=np.int64)
    left, right = max(shift, 0), max(-shift, 0)
    y = _srdhm(x * (1 << left), multiplier)
    return _rdpot_up(y, right) if optimized else _rdpot_away(y, right)


def _per_channel_requant(acc, in_scale: float, w_scales, out_scale: float, optimized: bool):
    out = np.empty_like(acc)
    for c, ws in enumerate(w_scales):
        m, s = quantize_multiplier(float(np.float32(in_scale)) * float(np.float32(ws)) / float(np.float32(out_scale)))
        out[..., c] = mbqm(acc[..., c], m, s, optimized)
    return out


def _im2col(x, kh: int, kw: int, sh: int, sw: int, pads, pad_value) -> np.ndarray:
    """[N, OH, OW, kh*kw*C] windows of NHWC `x` after padding (top, bottom, left, right) with `pad_value`."""
    top, bottom, left, right = pads
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    n, h, w, c = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    win = np.lib.stride_tricks.as_strided(x, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1], s[2], s[3]))
    return win.reshape(n, oh, ow, kh * kw * c)


def _same_pads(h, w, kh, kw, sh, sw):
    top, bottom = same_padding(h, kh, sh)
    left, right = same_padding(w, kw, sw)
    return top, bottom, left, right


def _int_dot(cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact integer products of [.., K] x [O, K] via float64 (every partial sum < 2^53)."""
    flat = cols.reshape(-1, cols.shape[-1]).astype(np.float64)  # one 2-D product: a stacked one is ~30x slower
    return np.rint(flat @ weights.astype(np.float64).T).astype(np.int64).reshape(*cols.shape[:-1], -1)


# ---- calibration -----------------------------------------------------------------------------------

def _range_to_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) covering [lo, hi] and 0."""
    lo, hi = min(0.0, float(lo)), max(0.0, float(hi))
    if hi - lo < 1e-3:  # a (nearly) constant tensor: keep the requantization multipliers moderate
        hi = lo + 1e-3
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(np.clip(round_half_away(-128.0 - lo / scale), -128, 127))
    return scale, zp


def calibration_ranges(model: nn.Module, images: torch.Tensor, batch_size: int = 64,
                       percentile: float | None = None) -> dict:
    """(min, max) of every module output over `images` (eval mode), by module name; with `percentile`
    (e.g. 99.99) the (100 - p, p) percentiles of each batch (over at most 2^17 seeded samples of it),
    widest over the batches, so that rare outliers do not coarsen the int8 step of every value."""
    ranges: dict[str, list[float]] = {}
    names = {id(m): n for n, m in model.named_modules()}
    gen = torch.Generator().manual_seed(0)

    def hook(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            return
        name = names[id(module)]
        if percentile is None:
            lo, hi = float(output.min()), float(output.max())
        else:
            flat = output.detach().flatten().float()
            if flat.numel() > 1 << 17:
                flat = flat[torch.randint(flat.numel(), (1 << 17,), generator=gen)]
            q = torch.quantile(flat, torch.tensor([1.0 - percentile / 100.0, percentile / 100.0]))
            lo, hi = float(q[0]), float(q[1])
        r = ranges.setdefault(name, [lo, hi])
        r[0], r[1] = min(r[0], lo), max(r[1], hi)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                model(images[start:start + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return ranges


# ---- the exported program: builder ops + their emulation ------------------------------------------

@dataclass
class Val:
    """A graph tensor as the exporter tracks it (NHWC shape)."""

    index: int
    name: str
    shape: tuple
    dtype: str  # "int8", "float32", or "int32" (bitpacked)
    scale: float = 0.0
    zero_point: int = 0
    channels: int = 0  # bitpacked: the real channel count

    @property
    def bitpacked(self) -> bool:
        return self.dtype == "int32"


@dataclass
class LceExport:
    """An exported graph: its bytes, its I/O, the bitpacked tensors exposed in a debug export (name ->
    output position), and `emulate` (int8 graphs)."""

    data: bytes
    int8: bool
    input: Val
    output: Val
    debug_outputs: dict = field(default_factory=dict)  # binarizer name -> graph output position
    steps: list = field(default_factory=list)  # (what, fn(env)) in op order
    path: Path | None = None
    # the export's quantization points, for QAT (edgereid.compress.lce_qat): tensor name -> (name of the torch
    # module whose output it holds, its Val) (int8 activations; bitpacked tensors: the BN whose sign they are)
    sources: dict = field(default_factory=dict)

    def emulate(self, image_q: np.ndarray) -> dict:
        """Run the int8 graph on one int8 NHWC image [1, H, W, 3]: {tensor name: array}."""
        if not self.int8:
            raise ExportError("emulate() runs int8 exports only (float graphs differ from torch by float rounding)")
        env = {self.input.name: np.asarray(image_q, dtype=np.int64)}
        for _, fn in self.steps:
            fn(env)
        return env

    def emulated_outputs(self, image_q: np.ndarray) -> list[np.ndarray]:
        """The graph outputs (in order) as the emulation computes them."""
        env = self.emulate(image_q)
        outs = [env[self.output.name].astype(np.int8)]
        for name in self.debug_outputs:
            outs.append(env[name].astype(np.int32))
        return outs


class _Program:
    """ModelBuilder + the emulation step of every op added."""

    def __init__(self, int8: bool):
        self.b = ModelBuilder(0)
        self.int8 = int8
        self.steps: list = []
        self.bitpacked: list[Val] = []  # every bitpacked tensor, in op order
        self.activations: list[Val] = []  # every non-constant tensor, in op order
        self.sources: dict[str, tuple] = {}  # tensor name -> (torch module name, Val) (LceExport.sources)

    def tensor(self, name, shape, dtype, scale=None, zero_point=None, data=None, quantized_dimension=0,
               channels=0) -> Val:
        info = self.b.tensor(name, shape, dtype, scale=scale, zero_point=zero_point, data=data,
                             quantized_dimension=quantized_dimension)
        v = Val(info.index, name, tuple(int(d) for d in shape), dtype,
                0.0 if scale is None else float(np.float32(np.atleast_1d(scale)[0])),
                0 if zero_point is None else int(np.atleast_1d(zero_point)[0]), channels)
        if data is None:
            self.activations.append(v)
            if dtype == "int32":
                self.bitpacked.append(v)
        return v

    def act(self, name, shape, qparams=None, channels=0, bitpacked=False) -> Val:
        if bitpacked:
            return self.tensor(name, tuple(shape[:-1]) + ((channels + 31) // 32,), "int32", channels=channels)
        if self.int8:
            v = self.tensor(name, shape, "int8", scale=qparams[0], zero_point=qparams[1])
            if len(qparams) > 2:  # (scale, zero point, module) from _Exporter.qparams
                self.sources[name] = (qparams[2], v)
            return v
        return self.tensor(name, shape, "float32")

    def step(self, what: str, fn: Callable) -> None:
        self.steps.append((what, fn))


def _fold_bn(bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of an eval-mode BN, float64."""
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    gamma = bn.weight.detach().double().numpy() if bn.affine else np.ones_like(mean)
    beta = bn.bias.detach().double().numpy() if bn.affine else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def _weight_qparams(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (dim 0) symmetric int8: (int8 values, float32 scales)."""
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(round_half_away(w / scales.reshape(-1, *([1] * (w.ndim - 1))).astype(np.float64)), -127, 127)
    return q.astype(np.int8), scales


class _Exporter:
    def __init__(self, model: BiReIDResNet, calib: torch.Tensor | None, input_size, preprocess: dict,
                 int8: bool, debug: bool, percentile: float | None = None, ranges: dict | None = None):
        self.model, self.int8, self.debug = model, int8, debug
        self.h, self.w = (int(s) for s in input_size)
        self.pre = preprocess
        self.p = _Program(int8)
        self.ranges = ({} if not int8 else dict(ranges) if ranges is not None
                       else calibration_ranges(model, calib, percentile=percentile))
        self.names = {id(m): n for n, m in model.named_modules()}
        self.debug_names: list[str] = []

    # -- checks --------------------------------------------------------------------------------
    def name(self, module) -> str:
        return self.names.get(id(module), type(module).__name__)

    def fail(self, module, why: str):
        raise ExportError(f"layer {self.name(module)} ({type(module).__name__}): {why}")

    def qparams(self, module) -> tuple[float, int, str] | None:
        """(scale, zero point, module name) of the int8 tensor holding `module`'s output."""
        if not self.int8:
            return None
        r = self.ranges.get(self.name(module))
        if r is None:
            self.fail(module, "no calibration range (the calibration forward never reached it)")
        return (*_range_to_qparams(*r), self.name(module))

    def check_binary_conv(self, conv) -> None:
        if not isinstance(conv, QuantConv2d):
            self.fail(conv, "expected a QuantConv2d (edgereid.models.binary)")
        if conv.input_quantizer is None and conv.kernel_quantizer is None:
            self.fail(conv, "a real-valued 3x3 conv inside a binary unit (a binary=False model?): the LCE export "
                            "takes binary models; export the real-valued twin with `edgereid export --int8`")
        if conv.input_quantizer is None or conv.kernel_quantizer is None:
            which = "kernel" if conv.kernel_quantizer is None else "input"
            self.fail(conv, f"binary {'input' if which == 'kernel' else 'kernel'} with a real-valued {which}: "
                            f"LceBconv2d needs both input and kernel binarized (Larq Compute Engine has no op "
                            f"for a half-binary conv)")
        for q in (conv.input_quantizer, conv.kernel_quantizer):
            if not isinstance(q, _SIGN_QUANTIZERS):
                self.fail(conv, f"quantizer {q!r} is not a sign (expected one of {sorted(QUANTIZERS)})")
        if conv.groups != 1 or conv.dilation != (1, 1):
            self.fail(conv, "grouped or dilated binary convs are not exported")
        if conv.bias is not None:
            self.fail(conv, "a binary conv with a bias is not exported (its BN carries the shift)")
        if conv.padding == "same" and conv.pad_values == 0.0 and conv.in_channels % 2:
            self.fail(conv, f"pad_values=0 with an odd channel count ({conv.in_channels}): LCE's reference "
                            f"kernel pads exactly only for even input channels; use pad_values=1")

    def check_real_conv(self, conv) -> None:
        if not isinstance(conv, QuantConv2d) or conv.input_quantizer is not None or conv.kernel_quantizer is not None:
            self.fail(conv, "expected a real-valued QuantConv2d here")
        if conv.groups != 1 or conv.dilation != (1, 1):
            self.fail(conv, "grouped or dilated convs are not exported")

    # -- real-valued ops -------------------------------------------------------------------------
    def conv(self, x: Val, conv: QuantConv2d, bn, relu: bool, out_module, name: str) -> Val:
        """CONV_2D with BN folded (and RELU fused)."""
        self.check_real_conv(conv)
        scale, shift = _fold_bn(bn)
        w = conv.weight.detach().double().numpy() * scale.reshape(-1, 1, 1, 1)
        b = shift + (conv.bias.detach().double().numpy() * scale if conv.bias is not None else 0.0)
        w = w.transpose(0, 2, 3, 1)  # OHWI
        kh, kw = conv.kernel_size
        sh, sw = conv.stride
        n, h, wd, c = x.shape
        pads = _same_pads(h, wd, kh, kw, sh, sw) if conv.padding == "same" else (0, 0, 0, 0)
        oh, ow = (h + pads[0] + pads[1] - kh) // sh + 1, (wd + pads[2] + pads[3] - kw) // sw + 1
        y = self.p.act(name, (n, oh, ow, w.shape[0]), self.qparams(out_module))
        opts = {"padding": conv.padding.upper(), "stride_h": sh, "stride_w": sw, "dilation_h_factor": 1,
                "dilation_w_factor": 1, "fused_activation_function": "RELU" if relu else "NONE"}
        if not self.int8:
            wt = self.p.tensor(f"{name}/filter", w.shape, "float32", data=w.astype(np.float32))
            bt = self.p.tensor(f"{name}/bias", (w.shape[0],), "float32", data=b.astype(np.float32))
            self.p.b.op("CONV_2D", [x.index, wt.index, bt.index], [y.index], opts, version=1)
            return y
        wq, ws = _weight_qparams(w)
        bias_scales = (np.float32(x.scale) * ws).astype(np.float32)
        bq = np.clip(round_half_away(b / bias_scales.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        wt = self.p.tensor(f"{name}/filter", w.shape, "int8", scale=ws, zero_point=np.zeros(len(ws), np.int64),
                           data=wq, quantized_dimension=0)
        bt = self.p.tensor(f"{name}/bias", (len(ws),), "int32", scale=bias_scales,
                           zero_point=np.zeros(len(ws), np.int64), data=bq)
        self.p.b.op("CONV_2D", [x.index, wt.index, bt.index], [y.index], opts)
        lo = y.zero_point if relu else -128

        def run(env, x=x, y=y, wq=wq.astype(np.int64), bq=bq.astype(np.int64), ws=ws):
            cols = _im2col(env[x.name] - x.zero_point, kh, kw, sh, sw, pads, 0)
            acc = _int_dot(cols, wq.reshape(wq.shape[0], -1)) + bq
            out = _per_channel_requant(acc, x.scale, ws, y.scale, optimized=True) + y.zero_point
            env[y.name] = np.clip(out, lo, 127)

        self.p.step(f"CONV_2D {name}", run)
        return y

    def max_pool(self, x: Val, pool: SameMaxPool2d, name: str) -> Val:
        (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
        n, h, w, c = x.shape
        oh, ow = -(-h // sh), -(-w // sw)
        y = self.p.tensor(name, (n, oh, ow, c), x.dtype, **self._same_quant(x))
        self.p.b.op("MAX_POOL_2D", [x.index], [y.index], {"padding": "SAME", "stride_h": sh, "stride_w": sw,
                                                           "filter_height": kh, "filter_width": kw,
                                                           "fused_activation_function": "NONE"})
        pads = _same_pads(h, w, kh, kw, sh, sw)

        def run(env, x=x, y=y):
            cols = _im2col(env[x.name], kh, kw, sh, sw, pads, -(1 << 40))
            env[y.name] = cols.reshape(*cols.shape[:3], kh * kw, c).max(axis=3)

        self.p.step(f"MAX_POOL_2D {name}", run)
        return y

    def _same_quant(self, x: Val) -> dict:
        return {"scale": x.scale, "zero_point": x.zero_point} if x.dtype == "int8" else {}

    def avg_pool(self, x: Val, kh: int, kw: int, sh: int, sw: int, name: str) -> Val:
        n, h, w, c = x.shape
        y = self.p.tensor(name, (n, (h - kh) // sh + 1, (w - kw) // sw + 1, c), x.dtype, **self._same_quant(x))
        self.p.b.op("AVERAGE_POOL_2D", [x.index], [y.index], {"padding": "VALID", "stride_h": sh, "stride_w": sw,
                                                               "filter_height": kh, "filter_width": kw,
                                                               "fused_activation_function": "NONE"})
        count = kh * kw

        def run(env, x=x, y=y):
            cols = _im2col(env[x.name], kh, kw, sh, sw, (0, 0, 0, 0), 0)
            acc = cols.reshape(*cols.shape[:3], count, c).sum(axis=3)
            rounded = np.where(acc > 0, (acc + count // 2) // count, -((-acc + count // 2) // count))
            env[y.name] = np.clip(rounded, -128, 127)

        self.p.step(f"AVERAGE_POOL_2D {name}", run)
        return y

    def prelu(self, x: Val, act: nn.PReLU, name: str) -> Val:
        if not isinstance(act, nn.PReLU):
            self.fail(act, "expected a PReLU (BiRe-ID unit: BN -> binary conv -> BN -> PReLU)")
        c = x.shape[-1]
        alpha = act.weight.detach().double().numpy()
        alpha = np.full(c, alpha[0]) if alpha.size == 1 else alpha
        y = self.p.act(name, x.shape, self.qparams(act))
        if not self.int8:
            at = self.p.tensor(f"{name}/alpha", (1, 1, c), "float32", data=alpha.astype(np.float32))
            self.p.b.op("PRELU", [x.index, at.index], [y.index], version=1)
            return y
        a_scale = float(np.float32(max(np.abs(alpha).max(), 1e-8) / 127.0))
        aq = np.clip(round_half_away(alpha / a_scale), -127, 127).astype(np.int8)
        at = self.p.tensor(f"{name}/alpha", (1, 1, c), "int8", scale=a_scale, zero_point=0, data=aq.reshape(1, 1, c))
        self.p.b.op("PRELU", [x.index, at.index], [y.index], version=1)
        s_in, s_a, s_out = np.float32(x.scale), np.float32(a_scale), np.float32(y.scale)
        m1, sh1 = quantize_multiplier(float(s_in / s_out))  # prelu.cc: float32 arithmetic, then double
        m2, sh2 = quantize_multiplier(float(s_in * s_a / s_out))

        def run(env, x=x, y=y, aq=aq.astype(np.int64)):
            v = env[x.name] - x.zero_point
            pos = mbqm(v, m1, sh1)
            neg = mbqm(v * aq, m2, sh2)
            env[y.name] = np.clip(np.where(v >= 0, pos, neg) + y.zero_point, -128, 127)

        self.p.step(f"PRELU {name}", run)
        return y

    def add(self, a: Val, b: Val, out_module, name: str) -> Val:
        y = self.p.act(name, a.shape, self.qparams(out_module))
        self.p.b.op("ADD", [a.index, b.index], [y.index], {"fused_activation_function": "NONE"})
        if not self.int8:
            return y
        left = 20
        twice_max = float(np.float32(2.0) * max(np.float32(a.scale), np.float32(b.scale)))
        m_a, s_a = quantize_multiplier(float(a.scale) / twice_max)
        m_b, s_b = quantize_multiplier(float(b.scale) / twice_max)
        m_o, s_o = quantize_multiplier(twice_max / float(np.float32(1 << left) * np.float32(y.scale)))

        def run(env, a=a, b=b, y=y):
            va = mbqm((env[a.name] - a.zero_point) * (1 << left), m_a, s_a)
            vb = mbqm((env[b.name] - b.zero_point) * (1 << left), m_b, s_b)
            env[y.name] = np.clip(mbqm(va + vb, m_o, s_o) + y.zero_point, -128, 127)

        self.p.step(f"ADD {name}", run)
        return y

    def fully_connected(self, x: Val, weight: np.ndarray, bias: np.ndarray, out_module, name: str,
                        int8_weights: tuple | None = None) -> Val:
        """[1, 1, 1, C] or [1, C] -> [1, D]; `int8_weights` = (values, per-channel scales) given as is."""
        d = weight.shape[0] if int8_weights is None else int8_weights[0].shape[0]
        y = self.p.act(name, (1, d), self.qparams(out_module))
        opts = {"fused_activation_function": "NONE", "keep_num_dims": False}
        if not self.int8:
            wt = self.p.tensor(f"{name}/weights", weight.shape, "float32", data=weight.astype(np.float32))
            bt = self.p.tensor(f"{name}/bias", (d,), "float32", data=bias.astype(np.float32))
            self.p.b.op("FULLY_CONNECTED", [x.index, wt.index, bt.index], [y.index], opts, version=1)
            return y
        wq, ws = int8_weights if int8_weights is not None else _weight_qparams(weight)
        bias_scales = (np.float32(x.scale) * ws).astype(np.float32)
        bq = np.clip(round_half_away(bias / bias_scales.astype(np.float64)), -2**31, 2**31 - 1).astype(np.int32)
        wt = self.p.tensor(f"{name}/weights", wq.shape, "int8", scale=ws, zero_point=np.zeros(len(ws), np.int64),
                           data=wq, quantized_dimension=0)
        bt = self.p.tensor(f"{name}/bias", (d,), "int32", scale=bias_scales, zero_point=np.zeros(len(ws), np.int64),
                           data=bq)
        self.p.b.op("FULLY_CONNECTED", [x.index, wt.index, bt.index], [y.index], opts)

        def run(env, x=x, y=y, wq=wq.astype(np.int64), bq=bq.astype(np.int64), ws=ws):
            v = (env[x.name] - x.zero_point).reshape(env[x.name].shape[0], -1)  # a batch too (QAT)
            acc = _int_dot(v, wq) + bq
            out = _per_channel_requant(acc, x.scale, ws, y.scale, optimized=True) + y.zero_point
            env[y.name] = np.clip(out, -128, 127)

        self.p.step(f"FULLY_CONNECTED {name}", run)
        return y

    # -- binary ops ------------------------------------------------------------------------------
    def thresholds(self, x: Val, bn, module) -> tuple[np.ndarray, np.ndarray]:
        """Per channel (w in {+1, -1}, T): sign(BN(dequant(q))) is -1 exactly where w (q - T) < 0."""
        c = x.shape[-1]
        if bn is None:
            scale, shift = np.ones(c), np.zeros(c)
        else:
            scale, shift = _fold_bn(bn)
        q = np.arange(-128, 128, dtype=np.float64)
        real = np.float64(x.scale) * (q - x.zero_point)
        w = np.ones(c, np.int64)
        t = np.zeros(c, np.int64)
        for ch in range(c):
            nonneg = (real * scale[ch] + shift[ch]) >= 0  # sign +1
            if scale[ch] >= 0:  # +1 exactly for q >= T
                t[ch] = int(q[nonneg][0]) if nonneg.any() else 128
            else:  # +1 exactly for q <= T: bit = q > T, computed as -(q - T) < 0
                w[ch] = -1
                t[ch] = int(q[nonneg][-1]) if nonneg.any() else -129
            if not np.array_equal(nonneg, (w[ch] * (q - t[ch])) >= 0):
                self.fail(module, f"channel {ch}: its sign is not a threshold on the int8 input")
        return w, np.clip(t, -129, 128)

    def binarize(self, x: Val, bn, module, name: str) -> Val:
        """sign(BN(x)) bitpacked: DEPTHWISE_CONV_2D 1x1 threshold (int8) or BN (float), then LceQuantize."""
        c = x.shape[-1]
        if self.int8:
            w, t = self.thresholds(x, bn, module)
            yq = self.p.tensor(f"{name}/threshold", x.shape, "int8", scale=x.scale, zero_point=0)
            wt = self.p.tensor(f"{name}/threshold_w", (1, 1, 1, c), "int8", scale=np.ones(c, np.float32),
                               zero_point=np.zeros(c, np.int64), data=w.reshape(1, 1, 1, c), quantized_dimension=3)
            bias = -w * (t - x.zero_point)
            bt = self.p.tensor(f"{name}/threshold_b", (c,), "int32", scale=np.full(c, x.scale, np.float32),
                               zero_point=np.zeros(c, np.int64), data=bias)
            self.p.b.op("DEPTHWISE_CONV_2D", [x.index, wt.index, bt.index], [yq.index],
                        {"padding": "VALID", "stride_h": 1, "stride_w": 1, "dilation_h_factor": 1,
                         "dilation_w_factor": 1, "depth_multiplier": 1, "fused_activation_function": "NONE"})

            def run(env, x=x, yq=yq, w=w, bias=bias):
                env[yq.name] = np.clip(w * (env[x.name] - x.zero_point) + bias, -128, 127)

            self.p.step(f"DEPTHWISE_CONV_2D {name}/threshold", run)
        else:
            scale, shift = _fold_bn(bn) if bn is not None else (np.ones(c), np.zeros(c))
            yq = self.p.tensor(f"{name}/bn", x.shape, "float32")
            wt = self.p.tensor(f"{name}/bn_w", (1, 1, 1, c), "float32",
                               data=scale.astype(np.float32).reshape(1, 1, 1, c))
            bt = self.p.tensor(f"{name}/bn_b", (c,), "float32", data=shift.astype(np.float32))
            self.p.b.op("DEPTHWISE_CONV_2D", [x.index, wt.index, bt.index], [yq.index],
                        {"padding": "VALID", "stride_h": 1, "stride_w": 1, "dilation_h_factor": 1,
                         "dilation_w_factor": 1, "depth_multiplier": 1, "fused_activation_function": "NONE"},
                        version=1)
        bits = self.p.act(name, x.shape, channels=c, bitpacked=True)
        if bn is not None:
            self.p.sources[name] = (self.name(bn), bits)
        self.p.b.op("CUSTOM:LceQuantize", [yq.index], [bits.index])

        def run_q(env, yq=yq, bits=bits):
            env[bits.name] = pack_bits(env[yq.name])

        self.p.step(f"LceQuantize {name}", run_q)
        return bits

    def bmax_pool(self, bits: Val, pool: SameMaxPool2d, name: str) -> Val:
        (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
        n, h, w, words = bits.shape
        oh, ow = -(-h // sh), -(-w // sw)
        y = self.p.act(name, (n, oh, ow, bits.channels), channels=bits.channels, bitpacked=True)
        self.p.b.op("CUSTOM:LceBMaxPool2d", [bits.index], [y.index],
                    {"padding": 0, "stride_width": sw, "stride_height": sh, "filter_width": kw, "filter_height": kh})
        pads = _same_pads(h, w, kh, kw, sh, sw)

        def run(env, bits=bits, y=y):
            cols = _im2col(env[bits.name].astype(np.int64) & 0xFFFFFFFF, kh, kw, sh, sw, pads, 0xFFFFFFFF)
            out = np.bitwise_and.reduce(cols.reshape(*cols.shape[:3], kh * kw, words), axis=3)
            env[y.name] = out.astype(np.uint32).view(np.int32).astype(np.int64)

        self.p.step(f"LceBMaxPool2d {name}", run)
        return y

    def bconv(self, bits: Val, conv: QuantConv2d, bn2, name: str, out_module=None, next_fn=None) -> Val:
        """LceBconv2d; int8 / float output folded with `bn2`, or bitpacked output when `next_fn`
        (the pre-sign value of the next binarizer as a function of the conv's float output,
        vectorised per channel) is given and monotone in the popcount."""
        self.check_binary_conv(conv)
        with torch.no_grad():
            values, kscale = conv.quantized_kernel()
        signs = np.where(values.numpy() < 0, -1.0, 1.0).transpose(0, 2, 3, 1)  # OHWI
        cout, kh, kw, cin = signs.shape
        k = kh * kw * cin
        kscale = np.ones(cout) if kscale is None else kscale.detach().double().numpy()
        bscale, bshift = _fold_bn(bn2)
        mult, bias = kscale * bscale, bshift  # output = mult * dot + bias
        n, h, w, _ = bits.shape
        sh, sw = conv.stride
        pads = _same_pads(h, w, kh, kw, sh, sw) if conv.padding == "same" else (0, 0, 0, 0)
        oh, ow = (h + pads[0] + pads[1] - kh) // sh + 1, (w + pads[2] + pads[3] - kw) // sw + 1
        opts = {"channels_in": cin, "dilation_height_factor": 1, "dilation_width_factor": 1,
                "fused_activation_function": 0, "pad_values": int(conv.pad_values),
                "padding": 0 if conv.padding == "same" else 1, "stride_height": sh, "stride_width": sw}
        threshold = None
        if next_fn is not None:
            threshold, flip = self._bitpacked_thresholds(mult, bias, k, next_fn)
        if threshold is not None:
            signs = signs * np.where(flip, -1.0, 1.0).reshape(-1, 1, 1, 1)
        filt = self.p.tensor(f"{name}/filter", (cout, kh, kw, (cin + 31) // 32), "int32", data=pack_bits(signs))
        pad_value = 1.0 if conv.pad_values == 1.0 else 0.0

        def dot(env, bits=bits, signs=signs):
            x = unpack_bits(env[bits.name], cin)
            cols = _im2col(x, kh, kw, sh, sw, pads, pad_value)
            return _int_dot(cols, signs.reshape(cout, -1))  # = K - 2a (pad taps count as +1 or 0)

        if threshold is not None:
            y = self.p.act(name, (n, oh, ow, cout), channels=cout, bitpacked=True)
            tt = self.p.tensor(f"{name}/threshold", (cout,), "int32", data=threshold)
            self.p.b.op("CUSTOM:LceBconv2d", [bits.index, filt.index, -1, -1, tt.index], [y.index], opts)

            def run_bits(env, y=y, threshold=threshold):
                a = (k - dot(env)) // 2
                env[y.name] = pack_bits(np.where(a > threshold, -1.0, 1.0))

            self.p.step(f"LceBconv2d {name} (bitpacked)", run_bits)
            return y
        mt = self.p.tensor(f"{name}/multiplier", (cout,), "float32", data=mult.astype(np.float32))
        bt = self.p.tensor(f"{name}/bias", (cout,), "float32", data=bias.astype(np.float32))
        y = self.p.act(name, (n, oh, ow, cout), self.qparams(out_module))
        self.p.b.op("CUSTOM:LceBconv2d", [bits.index, filt.index, mt.index, bt.index, -1], [y.index], opts)
        if not self.int8:
            return y
        mult32 = mult.astype(np.float32).astype(np.float64)
        bias32 = bias.astype(np.float32).astype(np.float64)
        m = (-mult32 / np.float64(np.float32(y.scale))).astype(np.float32)
        b = ((bias32 + k * mult32) / np.float64(np.float32(y.scale)) + y.zero_point).astype(np.float32)

        def run_int8(env, y=y, m=m, b=b):
            two_a = (k - dot(env)).astype(np.float32)
            val = (two_a * m).astype(np.float32) + b
            env[y.name] = np.clip(round_half_away(val.astype(np.float32)), -128, 127).astype(np.int64)

        self.p.step(f"LceBconv2d {name}", run_int8)
        return y

    @staticmethod
    def _bitpacked_thresholds(mult, bias, k: int, next_fn):
        """(thresholds int32 [Cout], flip bool [Cout]) with bit = (a' > threshold), a' the popcount against
        the (flipped) filter, or (None, None) when some channel's sign is not monotone in the popcount."""
        a = np.arange(k + 1, dtype=np.float64)
        dots = k - 2 * a  # [K + 1]
        pre = next_fn(mult[:, None] * dots[None, :] + bias[:, None])  # [Cout, K + 1] pre-sign values
        neg = pre < 0  # bit 1
        thresholds = np.empty(len(mult), np.int64)
        flip = np.zeros(len(mult), bool)
        for ch in range(len(mult)):
            row = neg[ch]
            if not row.any() or row.all():  # constant: threshold K (never) or -1 (always)
                thresholds[ch] = k if not row.any() else -1
                continue
            first = int(np.argmax(row))
            if not row[first:].all():  # bits must be {a > thr}, or after a flip {a' > thr}, a' = K - a
                rev = row[::-1]
                first = int(np.argmax(rev))
                if not rev[first:].all():
                    return None, None
                flip[ch] = True
            thresholds[ch] = first - 1
        return thresholds.astype(np.int32), flip

    # -- the model ------------------------------------------------------------------------------
    def unit_next_fn(self, unit: BiReIDUnit, next_bn):
        """BN2 output -> PReLU -> next unit's BN1, vectorised over [C, n] (float64)."""
        alpha = unit.act.weight.detach().double().numpy()
        alpha = np.full(unit.bn2.num_features, alpha[0]) if alpha.size == 1 else alpha
        nscale, nshift = _fold_bn(next_bn)

        def fn(v):
            act = np.where(v >= 0, v, alpha[:, None] * v)
            return act * nscale[:, None] + nshift[:, None]

        return fn

    def export(self) -> tuple[LceExport, Graph]:
        m = self.model
        p = self.p
        mean, std = np.asarray(self.pre["mean"], np.float64), np.asarray(self.pre["std"], np.float64)
        if self.int8:
            in_q = _range_to_qparams(float(((0 - mean) / std).min()), float(((1 - mean) / std).max()))
        x = p.act("image", (1, self.h, self.w, 3), in_q if self.int8 else None)
        image = x
        units = [u for layer in (m.layer1, m.layer2, m.layer3, m.layer4) for u in layer]
        for u in units:
            if not isinstance(u, BiReIDUnit):
                self.fail(u, "expected a BiReIDUnit")
        # stem
        x = self.conv(x, m.conv1, m.bn1, True, m.relu, "stem")
        first = units[0]
        if not first.residual and (_fold_bn(first.bn1)[0] >= 0).all():  # sign(BN(max)) = max of signs
            bits = self.binarize(x, first.bn1, first, "stem/sign")
            bits = self.bmax_pool(bits, m.maxpool, self.name(first) + ".bn1")
            pending_bits = bits
        else:
            x = self.max_pool(x, m.maxpool, "maxpool")
            pending_bits = None
        for i, u in enumerate(units):
            uname = self.name(u)
            if pending_bits is None:
                bits = self.binarize(x, u.bn1, u, uname + ".bn1")
            else:
                bits, pending_bits = pending_bits, None
            nxt = units[i + 1] if i + 1 < len(units) else None
            if not isinstance(u.act, nn.PReLU):
                self.fail(u.act, "expected a PReLU (BiRe-ID unit: BN -> binary conv -> BN -> PReLU)")
            if not u.residual and nxt is not None:
                y = self.bconv(bits, u.conv, u.bn2, uname + ".conv", u.bn2,
                               next_fn=self.unit_next_fn(u, nxt.bn1))
                if y.bitpacked:  # it is the next unit's binarized input: named after that binarizer
                    pending_bits = self._rename(y, self.name(nxt) + ".bn1")
                    continue
            else:
                y = self.bconv(bits, u.conv, u.bn2, uname + ".conv", u.bn2)
            y = self.prelu(y, u.act, uname + ".act")
            if u.residual:
                short = x
                if u.shortcut is not None:
                    short = self.shortcut(x, u.shortcut, uname + ".shortcut")
                y = self.add(y, short, u, uname + ".add")
            x = y
        if pending_bits is not None:
            self.fail(units[-1], "internal: bitpacked output with no consumer")
        # head
        n, h, w, c = x.shape
        x = self.avg_pool(x, h, w, 1, 1, "head.pool")
        emb = self.head(x)
        debug = {}
        outputs = [emb.index]
        if self.debug:
            for v in (p.activations[1:-1] if self.debug == "all" else p.bitpacked):
                debug[v.name] = len(outputs)
                outputs.append(v.index)
        graph = p.b.graph([image.index], outputs, description="edgereid LCE export")
        return LceExport(data=b"", int8=self.int8, input=image, output=emb, debug_outputs=debug, steps=p.steps,
                         sources=p.sources), graph

    def _rename(self, v: Val, name: str) -> Val:
        self.p.b.tensors[v.index] = dataclasses.replace(self.p.b.tensors[v.index], name=name)
        v.name = name
        return v

    def shortcut(self, x: Val, sc: Downsample, name: str) -> Val:
        if not isinstance(sc, Downsample):
            self.fail(sc, "expected a Downsample shortcut (AvgPool 2x2 -> 1x1 conv -> BN)")
        if sc.pool is not None:
            if not isinstance(sc.pool, nn.AvgPool2d) or sc.pool.kernel_size not in (2, (2, 2)):
                self.fail(sc.pool, "expected AvgPool2d(2, 2)")
            x = self.avg_pool(x, 2, 2, 2, 2, name + ".pool")
        return self.conv(x, sc.conv, sc.bn, False, sc, name)

    def head(self, x: Val) -> Val:
        head = self.model.head
        embed, bnneck = head.embed, head.bnneck
        nscale, nshift = _fold_bn(bnneck)
        if isinstance(embed, QuantLinear) and embed.input_quantizer is not None:
            if embed.kernel_quantizer is None:
                self.fail(embed, "binary input with a real-valued kernel: no LCE op")
            bits = self.binarize(x, None, embed, "head.embed.input")
            d = self.p.act("head.embed.input/dequantized", x.shape, (1.0, 0))
            self.p.b.op("CUSTOM:LceDequantize", [bits.index], [d.index])
            c = x.shape[-1]

            def run(env, bits=bits, d=d):
                env[d.name] = unpack_bits(env[bits.name], c).astype(np.int64)

            self.p.step("LceDequantize head.embed.input", run)
            with torch.no_grad():
                values, kscale = embed.quantized_kernel()
            signs = np.where(values.numpy() < 0, -1.0, 1.0)
            kscale = np.ones(signs.shape[0]) if kscale is None else kscale.double().numpy()
            wscale = kscale * nscale  # real weight = signs * wscale
            bias = (embed.bias.detach().double().numpy() if embed.bias is not None else 0.0) * nscale + nshift
            if not self.int8:
                return self.fully_connected(d, signs * wscale[:, None], bias, bnneck, "embedding")
            flip = np.where(wscale < 0, -1, 1)
            wq = (signs * flip[:, None]).astype(np.int8)
            ws = np.maximum(np.abs(wscale), 1e-12).astype(np.float32)
            return self.fully_connected(d, None, bias, bnneck, "embedding", int8_weights=(wq, ws))
        if not isinstance(embed, nn.Linear):
            self.fail(embed, "expected a Linear (or a binary QuantLinear) embedding layer")
        w = embed.weight.detach().double().numpy() * nscale[:, None]
        b = (embed.bias.detach().double().numpy() if embed.bias is not None else 0.0) * nscale + nshift
        return self.fully_connected(x, w, b, bnneck, "embedding")


def quantize_image(images_nhwc: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float (normalised) NHWC images -> int8, rounding half away from zero and saturating."""
    q = round_half_away(np.asarray(images_nhwc, np.float64) / np.float64(np.float32(scale))) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def export_lce(model: nn.Module, path=None, calib: torch.Tensor | None = None, input_size=None, int8: bool = True,
               debug: bool = False, preprocess: dict | None = None, model_name: str | None = None,
               calib_percentile: float | None = CALIB_PERCENTILE, ranges: dict | None = None) -> LceExport:
    """Write `model` (a BiReIDResNet, eval semantics) as a .tflite in the LCE format (module doc).

    `calib`: preprocessed NCHW images for the int8 ranges (required when int8; `calib_percentile`: see
    calibration_ranges, None = min / max); `ranges` ({module name: (min, max)}, default the model's
    `int8_ranges` when it has them: a quantization-aware model) replaces the calibration. `debug=True` adds
    every bitpacked tensor as an extra graph output (after the embedding), named by its binarizer.
    Returns the LceExport (bytes, I/O, debug output positions, the int8 emulation); written to
    `path` atomically when given.
    """
    if not isinstance(model, BiReIDResNet):
        raise ExportError(f"the LCE export takes a bireid_resnet18 model (BiReIDResNet); got "
                          f"{getattr(model, 'model_name', None) or type(model).__name__}")
    if not model.binary:
        raise ExportError("this bireid_resnet18 is real-valued (binary=False): nothing to export in the LCE format; "
                          "export it with `edgereid export --int8`")
    pre = dict(PREPROCESS_DEFAULT)
    pre.update(preprocess or {})
    size = tuple(int(s) for s in (input_size or pre["size"]))
    pre["size"] = list(size)
    if ranges is None:  # a model fine-tuned for its int8 export (edgereid.compress.lce_qat) carries its ranges
        ranges = getattr(model, "int8_ranges", None)
    if int8 and ranges is None and (calib is None or len(calib) == 0):
        raise ExportError("int8 LCE export needs calibration images (calib=[N, 3, H, W] preprocessed)")
    model = model.eval()
    with torch.no_grad():
        exporter = _Exporter(model, calib, size, pre, int8, debug, calib_percentile, ranges)
        result, graph = exporter.export()
    model_name = model_name or getattr(model, "model_name", None) or "bireid_resnet18"
    io = [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype, "scale": v.scale, "zero_point": v.zero_point}
          for v in (result.input, result.output)]
    meta = {"edgereid_version": edgereid.__version__, "model_name": model_name, "format": "tflite",
            "runtime": "larq-compute-engine", "int8": bool(int8), "input_size": list(size), "mean": list(pre["mean"]),
            "std": list(pre["std"]), "channel_order": pre.get("channel_order", "rgb"), "input_layout": "NHWC",
            "input_range": "normalised: (pixel / 255 - mean) / std", "inputs": io[:1], "outputs": io[1:],
            "debug_outputs": list(result.debug_outputs)}
    graph.metadata[METADATA_NAME] = json.dumps(meta, sort_keys=True).encode()
    result.data = write_graph(graph)
    if path is not None:
        result.path = atomic.write_bytes(Path(path), result.data)
    return result


def calibration_images(records, size, num_images: int = 256, seed: int = 0) -> torch.Tensor:
    """A seeded random subset of `records` (training images), eval transforms, stacked [N, 3, H, W]."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(records), generator=g)[:num_images].tolist()
    ds = ReidImageDataset([records[i] for i in idx], build_transforms(tuple(size), train=False))
    return torch.stack([ds[i][0] for i in range(len(ds))])


def export_lce_checkpoint(checkpoint: dict, path, calib_records=None, calib_images: int = 256, int8: bool = True,
                          debug: bool = False, source: str = "checkpoint") -> LceExport:
    """Export a loaded bireid_resnet18 checkpoint (edgereid.engine.load_checkpoint's dict); int8 ranges
    from `calib_images` seeded training images of `calib_records`. Another architecture is an error
    naming it."""
    name = checkpoint.get("model_name")
    if name != "bireid_resnet18":
        raise ExportError(f"{source} holds a {name!r} model; the LCE export takes bireid_resnet18 (binary) "
                          f"checkpoints (`edgereid train --model bireid_resnet18`)")
    args = dict(checkpoint["model_args"])
    model = build_model(name, **args)
    try:
        load_float_twin(model, checkpoint["state_dict"], source=source)
    except CheckpointError as exc:
        raise ExportError(str(exc)) from None
    model.model_name = name
    pre = dict(checkpoint.get("preprocess") or PREPROCESS_DEFAULT)
    calib = None
    if int8 and getattr(model, "int8_ranges", None) is None:
        if not calib_records:
            raise ExportError("int8 LCE export needs training images for calibration")
        calib = calibration_images(calib_records, pre["size"], calib_images)
    return export_lce(model.eval(), path, calib=calib, int8=int8, debug=debug, preprocess=pre, model_name=name)


def lce_op_counts(data: bytes) -> dict:
    """{op kind: count} of a .tflite's ops (e.g. {"CUSTOM:LceBconv2d": 16, ...})."""
    counts: dict[str, int] = {}
    for op in parse_graph(data).ops:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return counts


def torch_signs(model: BiReIDResNet, images: torch.Tensor) -> dict:
    """The torch (float) model's binarizer outputs, bitpacked NHWC, by the names the LCE export gives
    them ("<unit>.bn1", "head.embed.input"): the signs its binary layers see."""
    found: dict[str, list] = {}
    names = {id(mod): n for n, mod in model.named_modules()}
    hooks = []

    def keep(name):
        def hook(module, inputs, output=None):
            x = inputs[0] if output is None else output
            signs = torch.where(x < 0, -1.0, 1.0)
            if signs.dim() == 4:
                signs = signs.permute(0, 2, 3, 1)
            else:
                signs = signs[:, None, None, :]
            found.setdefault(name, []).append(pack_bits(signs.numpy()))
        return hook

    for mod in model.modules():
        if isinstance(mod, BiReIDUnit):
            hooks.append(mod.bn1.register_forward_hook(keep(names[id(mod)] + ".bn1")))
    if isinstance(model.head.embed, QuantLinear) and model.head.embed.input_quantizer is not None:
        hooks.append(model.head.embed.register_forward_pre_hook(keep("head.embed.input")))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {k: np.concatenate(v) for k, v in found.items()}


class LceEmbedder(nn.Module):
    """An LCE .tflite behind the nn.Module interface evaluation uses: NCHW float in, [N, D] float out,
    run in Larq Compute Engine's interpreter (edgereid.tflite.LceRunner, reference bconv kernel)."""

    def __init__(self, path):
        super().__init__()
        self.path = str(path)
        self.runner = LceRunner(self.path)
        self.inp, self.out = self.runner.inputs[0], self.runner.outputs[0]

    def run_int8(self, image_q: np.ndarray) -> list[np.ndarray]:
        """All graph outputs for one int8 NHWC image [1, H, W, 3] (or float for a float export)."""
        return self.runner.run([image_q])

    def embed(self, images_nchw: np.ndarray) -> np.ndarray:
        images = np.asarray(images_nchw, dtype=np.float32).transpose(0, 2, 3, 1)
        results = []
        for img in images:
            x = img[None]
            if self.inp.dtype == np.int8:
                x = quantize_image(x, self.inp.scale, self.inp.zero_point)
            y = self.runner.run([x])[0]
            if self.out.dtype == np.int8:
                y = (y.astype(np.float32) - self.out.zero_point) * np.float32(self.out.scale)
            results.append(y.reshape(-1).astype(np.float32))
        return np.stack(results)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.embed(x.detach().cpu().numpy()))

    def close(self) -> None:
        self.runner.close()
