"""The int8 PT2E quantizer edgereid uses: LiteRT's PT2EQuantizer plus the ops it misses.

LiteRT's `PT2EQuantizer` finds add, max-pool, cat and the shared-observer ops through
`get_source_partitions`, which reads `node.meta["source_fn_stack"]`. Graphs from
`torch.export` (non-strict, the default in torch 2.13) carry no such metadata, so with
only `set_global(...)` a residual ADD, a MAX_POOL_2D and everything after the last
conv stayed float in the TFLite file (DEQUANTIZE, float op, QUANTIZE). Its conv and
linear annotators match on aten targets and do work; this subclass keeps them and then
annotates the rest by aten target, so every op of our backbones ends up int8.

Rules (TFLite int8 op spec): ops that only move data (max-pool, mean, avg-pool,
reshape, permute, cat) share their input's quantization parameters; arithmetic (add,
mul, standalone relu) gets its own output observer; add/mul followed by a relu only
observe after the relu, so the converter fuses the activation into the ADD.
"""
from __future__ import annotations

import torch
from torch.fx import Node
from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

aten = torch.ops.aten

_RELU = {aten.relu.default, aten.relu_.default}
_BINARY = {aten.add.Tensor, aten.add_.Tensor, aten.mul.Tensor, aten.mul_.Tensor}
# Ops whose int8 kernels need (or are exact with) output params equal to the input's.
_SHARE_INPUT = {
    aten.max_pool2d.default,
    aten.avg_pool2d.default,
    aten.adaptive_avg_pool2d.default,
    aten.mean.dim,
    aten.mean.default,
    aten.view.default,
    aten.reshape.default,
    aten.flatten.using_ints,
    aten.permute.default,
    aten.squeeze.dim,
    aten.squeeze.dims,
    aten.unsqueeze.default,
    aten.clone.default,
    aten.contiguous.default,
    aten.hardtanh.default,
    aten.hardtanh_.default,
    aten._to_copy.default,
}
_CAT = {aten.cat.default, aten.concat.default}


def _annotated(node: Node) -> bool:
    ann = node.meta.get("quantization_annotation")
    return ann is not None and ann._annotated


def _quantized_output(node: Node) -> bool:
    """True when `node`'s output will carry an observer (own or shared)."""
    if node.op == "placeholder":
        return False
    ann = node.meta.get("quantization_annotation")
    return ann is not None and ann.output_qspec is not None


class EdgeInt8Quantizer(PT2EQuantizer):
    """Full-integer int8: per-channel symmetric weights, per-tensor affine activations.

    `is_qat=True` swaps observers for fake-quant modules (for `prepare_qat_pt2e`).
    """

    def __init__(self, is_qat: bool = False):
        super().__init__()
        self.is_qat = is_qat
        # LiteRT's conv_bn / conv_bn_relu QAT annotators fail on torch 2.13 ("Expected `mod`
        # to be an instance of `torch.nn.Module`, got <class 'function'>" from
        # torch.export); conv-BN pairs are still folded by torchao's prepare_qat_pt2e.
        self.STATIC_QAT_ONLY_OPS = []
        self.set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat))

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        model = super().annotate(model)
        act = self.global_config.input_activation
        for node in model.graph.nodes:  # topological order: producers come first
            if node.op != "call_function" or _annotated(node):
                continue
            target = node.target
            if target in _BINARY:
                self._annotate_binary(node, act)
            elif target in _SHARE_INPUT:
                src = node.args[0]
                if not isinstance(src, Node):
                    continue
                if src.op == "placeholder":
                    # The NHWC input permute: quantize the raw input, then move int8 data.
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: act},
                        output_qspec=SharedQuantizationSpec((src, node)),
                        _annotated=True,
                    )
                elif _quantized_output(src):
                    shared = SharedQuantizationSpec(src)
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: shared}, output_qspec=shared, _annotated=True
                    )
            elif target in _CAT:
                inputs = [a for a in node.args[0] if isinstance(a, Node)]
                if not inputs:
                    continue
                first = inputs[0]
                shared = SharedQuantizationSpec((first, node))
                qmap = {first: act}
                qmap.update({a: shared for a in inputs[1:]})
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map=qmap, output_qspec=shared, _annotated=True
                )
            elif target in _RELU:
                src = node.args[0]
                if isinstance(src, Node):
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: act}, output_qspec=act, _annotated=True
                    )
        return model

    @staticmethod
    def _annotate_binary(node: Node, act) -> None:
        qmap = {a: act for a in node.args[:2] if isinstance(a, Node)}
        users = list(node.users)
        if len(users) == 1 and users[0].target in _RELU and not _annotated(users[0]):
            # ADD + RELU: one fused int8 ADD in TFLite, observed once after the relu.
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map=qmap, _annotated=True
            )
            users[0].meta["quantization_annotation"] = QuantizationAnnotation(
                output_qspec=act, _annotated=True
            )
        else:
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map=qmap, output_qspec=act, _annotated=True
            )


__all__ = ["EdgeInt8Quantizer"]
