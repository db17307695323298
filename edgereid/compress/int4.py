"""4-bit weights: per-output-channel symmetric int4 fake-quantization, and the PT2E quantizer that
gives chosen conv / depthwise / FC layers int4 weights while every activation stays int8.

Range: [-7, 7], zero point 0, scale = max|w| / 7 per output channel. Why not [-8, 7]: the
TFLite int8 weight spec is already narrow-range ([-127, 127]) so that the scale is symmetric
(-w is representable) and the per-channel zero point 0 is exact; int4 follows the same rule.
LiteRT's INT4 filters would accept a -8 nibble, but the litert-torch converter and the
torchao observers compute the symmetric scale as max / ((qmax - qmin) / 2), which is max / 7
only for [-7, 7]; with [-8, 7] it would be max / 7.5 and +max would clip to 7.
The codes travel through the converter as int8 tensors holding values in [-7, 7] (checked:
litert-torch 0.10 writes them unchanged); `edgereid.export.int4` then stores them as INT4.
"""
from __future__ import annotations

from collections.abc import Collection

import torch
from torch import nn
from torchao.quantization.pt2e.fake_quantize import FusedMovingAvgObsFakeQuantize
from torchao.quantization.pt2e.observer import MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver
from torchao.quantization.pt2e.quantizer import QuantizationSpec

from edgereid.compress.quantizer import EdgeInt8Quantizer
from edgereid.errors import EdgereidError

INT4_QMIN, INT4_QMAX = -7, 7
# The observers' floor on a scale (LiteRT's int8 weight spec uses the same eps).
_SCALE_EPS = 2**-12
# Modules whose weights can be int4 in TFLite: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED.
INT4_MODULES = (nn.Conv2d, nn.Linear)


def int4_scales(weight: torch.Tensor, ch_axis: int = 0) -> torch.Tensor:
    """Per-channel symmetric int4 scales: max |w| over each output channel / 7 (at least 2**-12)."""
    if weight.ndim < 2:
        raise EdgereidError(f"int4 weights are per output channel: expected a weight of rank >= 2, "
                            f"got shape {tuple(weight.shape)}")
    dims = [d for d in range(weight.ndim) if d != ch_axis]
    amax = weight.detach().abs().amax(dim=dims)
    return torch.clamp(amax / INT4_QMAX, min=_SCALE_EPS)


def int4_codes(weight: torch.Tensor, scales: torch.Tensor, ch_axis: int = 0) -> torch.Tensor:
    """The int4 values of `weight` for per-channel `scales`: round half to even, clamp to [-7, 7] (int8)."""
    shape = [1] * weight.ndim
    shape[ch_axis] = -1
    return torch.clamp(torch.round(weight / scales.view(shape)), INT4_QMIN, INT4_QMAX).to(torch.int8)


def fake_quantize_int4(weight: torch.Tensor, ch_axis: int = 0) -> torch.Tensor:
    """`weight` rounded to per-channel symmetric int4 and back (straight-through gradient)."""
    scales = int4_scales(weight, ch_axis).float()
    zero = torch.zeros_like(scales, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scales, zero, ch_axis, INT4_QMIN, INT4_QMAX)


def int4_weight_spec(is_qat: bool) -> QuantizationSpec:
    """The int4 weight spec for the PT2E flow: int8 storage, [-7, 7], per output channel symmetric
    (LiteRT's int8 weight spec with the range narrowed; QAT: moving-average fake-quant)."""
    if is_qat:
        ctr = FusedMovingAvgObsFakeQuantize.with_args(eps=_SCALE_EPS, observer=MovingAveragePerChannelMinMaxObserver)
    else:
        ctr = PerChannelMinMaxObserver.with_args(eps=_SCALE_EPS)
    return QuantizationSpec(dtype=torch.int8, quant_min=INT4_QMIN, quant_max=INT4_QMAX,
                            qscheme=torch.per_channel_symmetric, ch_axis=0, is_dynamic=False,
                            observer_or_fake_quant_ctr=ctr)


class EdgeMixedQuantizer(EdgeInt8Quantizer):
    """`EdgeInt8Quantizer` with int4 weights for the layers named in `int4_layers`.

    `int4_layers`: module names of the model (e.g. "layer1.0.conv1", "head.reduce"), as
    `named_modules()` gives them; `prefix` is prepended to find them in an exported graph
    whose root wraps the model (QAT exports `model.<name>`). Every name must be the weight of
    an annotated conv or linear node, or `annotate` raises naming the ones it did not find.
    """

    def __init__(self, int4_layers: Collection[str], is_qat: bool = False, prefix: str = ""):
        super().__init__(is_qat=is_qat)
        self.int4_layers = tuple(sorted(set(int4_layers)))
        self.prefix = prefix
        self.int4_spec = int4_weight_spec(is_qat)

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        model = super().annotate(model)
        wanted = {f"{self.prefix}{name}.weight": name for name in self.int4_layers}
        found = set()
        for node in model.graph.nodes:
            ann = node.meta.get("quantization_annotation")
            if ann is None or node.op != "call_function":
                continue
            for arg in list(ann.input_qspec_map):
                if arg.op == "get_attr" and arg.target in wanted:
                    ann.input_qspec_map[arg] = self.int4_spec
                    found.add(arg.target)
        missing = [wanted[t] for t in wanted if t not in found]
        if missing:
            raise EdgereidError(f"int4 layers not found as conv/linear weights in the graph: {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''} (expected module names of conv or linear "
                                "layers the eval forward uses, e.g. from mixed_precision.int4_candidates)")
        return model


__all__ = ["INT4_QMIN", "INT4_QMAX", "INT4_MODULES", "int4_scales", "int4_codes", "fake_quantize_int4",
           "int4_weight_spec", "EdgeMixedQuantizer"]
