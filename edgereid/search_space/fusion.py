"""Fusion rules: which layers of an architecture run as one kernel on a given runtime.

LiteRT's converter folds an inference-mode BN into the preceding conv's weights and
bias and fuses a following ReLU/ReLU6 into the op's `fused_activation_function`; the
edgereid firmware runs the converted .tflite op by op, so it sees the same ops. Both
runtimes therefore share the rules today; they are kept apart (own ids) so that a
runtime that fuses more (e.g. conv+add) gets its own rules, and a latency table
profiled under one set of rules is never looked up with keys made under another.
Which board runs which rules is the latency stage's business (rules_for_board).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from edgereid.errors import ModelError
from edgereid.ops import FusedLayer
from edgereid.search_space.architecture import Architecture
from edgereid.search_space.layers import Layer, expand_layers


@dataclass(frozen=True)
class FusionRules:
    id: str
    runtime: str                         # which runtime these rules describe
    fold_bn_into: tuple[str, ...]        # layer kinds a following BN folds into
    fuse_relu_into: tuple[str, ...]      # layer kinds a following ReLU becomes the fused activation of


_COMMON = dict(fold_bn_into=("conv", "dwconv", "fc"), fuse_relu_into=("conv", "dwconv", "fc", "add"))
RULES = {
    "litert-v1": FusionRules("litert-v1", "LiteRT / TFLite interpreter (converter folds BN, fuses ReLU)", **_COMMON),
    "edgereid-fw-v1": FusionRules("edgereid-fw-v1", "edgereid firmware (runs the converted .tflite op by op)",
                                  **_COMMON),
}
CONVERTER_RULES = RULES["litert-v1"]     # what a .tflite of the architecture holds


def fuse(layers: list[Layer], rules: FusionRules) -> list[FusedLayer]:
    """Group `layers` into the kernels that run, in execution order (ModelError if one cannot fold/fuse)."""
    consumers: dict[str, int] = {}
    for layer in layers:
        for name in layer.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    fused: list[dict] = []
    owner: dict[str, int] = {}       # source layer name -> index into fused
    for layer in layers:
        src = layer.inputs[0]
        absorbable = src in owner and consumers.get(src, 0) == 1 and len(layer.inputs) == 1
        if layer.kind == "bn":
            if not absorbable or fused[owner[src]]["last_kind"] not in rules.fold_bn_into \
                    or fused[owner[src]]["act"] != "NONE":
                raise ModelError(f"BN layer {layer.name} does not follow a conv/FC it can fold into "
                                 f"under fusion rules {rules.id}")
            target = owner[src]
        elif layer.kind == "relu":
            if not absorbable or fused[owner[src]]["last_kind"] not in rules.fuse_relu_into:
                raise ModelError(f"ReLU layer {layer.name} does not follow an op it can fuse into "
                                 f"under fusion rules {rules.id}")
            target = owner[src]
            fused[target]["act"] = "RELU"
        else:
            kernel = layer.to_kernel()
            if kernel is None:
                raise ModelError(f"layer {layer.name} ({layer.kind}) has no kernel of its own under fusion rules "
                                 f"{rules.id}")
            inputs = tuple(fused[owner[n]]["name"] if n in owner else n for n in layer.inputs)
            fused.append({"name": layer.name, "layers": [], "kernel": kernel, "act": "NONE",
                          "last_kind": layer.kind, "inputs": inputs})
            target = len(fused) - 1
        fused[target]["layers"].append(layer.name)
        owner[layer.name] = target
    return [FusedLayer(f["name"], tuple(f["layers"]), replace(f["kernel"], act=f["act"]), f["inputs"])
            for f in fused]


def fused_layers(arch: Architecture, rules: FusionRules) -> list[FusedLayer]:
    """The kernels `arch` runs under `rules`, in execution order."""
    return fuse(expand_layers(arch), rules)
