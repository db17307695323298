"""Fusion rules: which layers of an architecture run as one kernel on a given runtime.

LiteRT's converter folds an inference-mode BN into the preceding conv's weights and
bias and fuses a following ReLU/ReLU6 into the op's `fused_activation_function`; the
edgereid firmware runs the converted .tflite op by op, so it sees the same ops. Both
runtimes therefore share the rules today; they are kept apart (own ids) so that a
runtime that fuses more (e.g. conv+add) gets its own rules, and a table profiled under
one set of rules is never looked up with keys made under another.
"""
from __future__ import annotations

from dataclasses import dataclass

from edgereid.errors import LatencyError
from edgereid.latency.kernels import Kernel
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

_OP_OF_KIND = {"conv": "CONV_2D", "dwconv": "DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED", "add": "ADD",
               "mean": "MEAN"}


def get_rules(rules_id: str) -> FusionRules:
    if rules_id not in RULES:
        raise LatencyError(f"unknown fusion rules {rules_id!r}; known: {', '.join(sorted(RULES))}")
    return RULES[rules_id]


def rules_for_board(board) -> FusionRules:
    """Firmware boards (Cortex-M, run under QEMU or over serial) use the firmware's rules."""
    if board.is_mcu or board.run.kind in ("qemu", "serial"):
        return RULES["edgereid-fw-v1"]
    return RULES["litert-v1"]


@dataclass(frozen=True)
class FusedLayer:
    name: str                    # name of the layer that starts the kernel
    layers: tuple[str, ...]      # every source layer it absorbs, in order
    kernel: Kernel
    inputs: tuple[str, ...] = ()  # names of the fused layers it reads ("input" = the model input)


def _kernel_of(layer: Layer) -> Kernel:
    h, w, c = layer.in_shape
    oc = layer.out_shape[2]
    if layer.kind in ("conv", "dwconv"):
        return Kernel(op=_OP_OF_KIND[layer.kind], in_h=h, in_w=w, in_c=c, out_c=oc,
                      kernel_h=layer.kernel, kernel_w=layer.kernel, stride_h=layer.stride, stride_w=layer.stride,
                      groups=c if layer.kind == "dwconv" else 1, padding="SAME", precision=layer.precision)
    if layer.kind == "fc":
        return Kernel(op="FULLY_CONNECTED", in_h=1, in_w=1, in_c=h * w * c, out_c=oc, precision=layer.precision)
    if layer.kind == "add":
        return Kernel(op="ADD", in_h=h, in_w=w, in_c=c, out_c=c)
    if layer.kind == "mean":
        return Kernel(op="MEAN", in_h=h, in_w=w, in_c=c, out_c=c, kernel_h=h, kernel_w=w, padding="VALID")
    raise LatencyError(f"layer {layer.name} ({layer.kind}) has no kernel of its own under these rules")


def fuse(layers: list[Layer], rules: FusionRules) -> list[FusedLayer]:
    """Group `layers` into the kernels that run, in execution order."""
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
                raise LatencyError(f"BN layer {layer.name} does not follow a conv/FC it can fold into "
                                   f"under fusion rules {rules.id}")
            target = owner[src]
        elif layer.kind == "relu":
            if not absorbable or fused[owner[src]]["last_kind"] not in rules.fuse_relu_into:
                raise LatencyError(f"ReLU layer {layer.name} does not follow an op it can fuse into "
                                   f"under fusion rules {rules.id}")
            target = owner[src]
            fused[target]["act"] = "RELU"
        else:
            inputs = tuple(fused[owner[n]]["name"] if n in owner else n for n in layer.inputs)
            fused.append({"name": layer.name, "layers": [], "kernel": _kernel_of(layer), "act": "NONE",
                          "last_kind": layer.kind, "inputs": inputs})
            target = len(fused) - 1
        fused[target]["layers"].append(layer.name)
        owner[layer.name] = target
    out = []
    for f in fused:
        k = f["kernel"]
        out.append(FusedLayer(f["name"], tuple(f["layers"]), Kernel(**dict(k.to_dict(), act=f["act"])), f["inputs"]))
    return out


def architecture_kernels(arch: Architecture, rules: FusionRules) -> list[FusedLayer]:
    return fuse(expand_layers(arch), rules)
