"""An architecture written out as the layers a training framework would have.

conv, BN and ReLU stay separate here, as they are in the torch model; what a runtime
really executes after folding and fusing them is decided by fusion rules
(edgereid.search_space.fusion). Padding is SAME throughout (output = ceil(input / stride)).
A layer that is an op of its own maps to its op kind through OP_OF_LAYER; shapes and
MACs come from the op registry (edgereid.ops).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from edgereid.ops import Kernel, Precision
from edgereid.search_space.architecture import Architecture

# Layer kinds that are ops of their own (bn and relu fold or fuse into one of these).
OP_OF_LAYER = {"conv": "CONV_2D", "dwconv": "DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED", "add": "ADD",
               "mean": "MEAN"}


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str                         # conv | dwconv | bn | relu | add | mean | fc
    inputs: tuple[str, ...]           # names of the layers it reads ("input" = the image)
    in_shape: tuple[int, int, int]    # H, W, C of inputs[0]
    out_shape: tuple[int, int, int]
    kernel: int = 1
    stride: int = 1
    precision: Precision = Precision.INT8
    bn: str = ""                      # bn layers: "shared" or "split" (CM-NAS)

    def to_kernel(self) -> Kernel | None:
        """The kernel this layer is by itself (None for bn and relu, which fold or fuse into one)."""
        op = OP_OF_LAYER.get(self.kind)
        if op is None:
            return None
        return Kernel.of(op, self.in_shape, self.out_shape[2], self.kernel, self.stride, self.precision)


def _out_hw(h: int, w: int, stride: int) -> tuple[int, int]:
    return -(-h // stride), -(-w // stride)


class LayerWriter:
    """Appends layers, tracking the current tensor's name and shape."""

    def __init__(self, input_shape):
        self.layers: list[Layer] = []
        self.last = "input"
        self.shape = tuple(input_shape)

    def add(self, name, kind, out_shape, inputs=None, **kw) -> str:
        layer = Layer(name=name, kind=kind, inputs=inputs or (self.last,), in_shape=self.shape,
                      out_shape=tuple(out_shape), **kw)
        self.layers.append(layer)
        self.last, self.shape = name, layer.out_shape
        return name

    def conv(self, name, out_c, kernel, stride, precision, bn, relu, depthwise=False):
        h, w = _out_hw(self.shape[0], self.shape[1], stride)
        c = self.shape[2] if depthwise else out_c
        self.add(name, "dwconv" if depthwise else "conv", (h, w, c), kernel=kernel, stride=stride,
                 precision=Precision.INT8 if depthwise else precision)
        self.add(f"{name}.bn", "bn", (h, w, c), bn=bn)
        if relu:
            self.add(f"{name}.relu", "relu", (h, w, c))


def write_stem(wr: LayerWriter, stem) -> None:
    wr.conv("stem", stem.width, stem.kernel, stem.stride, Precision.INT8, stem.bn, relu=True)


def write_block(wr: LayerWriter, index: int, block) -> None:
    """`block.depth` inverted-residual units; only the first one strides."""
    # An empty bn tuple (a block outside any architecture, e.g. when enumerating kernels) means all shared.
    bn = iter(block.bn) if block.bn else itertools.repeat("shared")
    for u in range(block.depth):
        name = f"block{index}.unit{u}"
        unit_in, in_shape = wr.last, wr.shape
        stride = block.stride if u == 0 else 1
        if block.expand > 1:
            wr.conv(f"{name}.expand", in_shape[2] * block.expand, 1, 1, block.precision, next(bn), relu=True)
        wr.conv(f"{name}.dw", 0, block.kernel, stride, Precision.INT8, next(bn), relu=True, depthwise=True)
        wr.conv(f"{name}.project", block.width, 1, 1, block.precision, next(bn), relu=False)
        if stride == 1 and in_shape[2] == block.width:
            wr.add(f"{name}.add", "add", wr.shape, inputs=(wr.last, unit_in))


def write_head(wr: LayerWriter, head) -> None:
    """Global mean over H x W, then the FC embedding (its BNNeck folds into it)."""
    wr.add("head.pool", "mean", (1, 1, wr.shape[2]))
    wr.add("head.fc", "fc", (1, 1, head.embedding))
    wr.add("head.fc.bn", "bn", (1, 1, head.embedding), bn=head.bn)


def expand_layers(arch: Architecture) -> list[Layer]:
    """The un-fused layer list of `arch`, in execution order."""
    wr = LayerWriter(arch.input_shape)
    write_stem(wr, arch.stem)
    for bi, block in enumerate(arch.blocks):
        write_block(wr, bi, block)
    write_head(wr, arch.head)
    return wr.layers


def count_macs(arch: Architecture) -> int:
    """Multiply-accumulates of one inference (the ops with weights: convs, depthwise, FC)."""
    kernels = [layer.to_kernel() for layer in expand_layers(arch)]
    return sum(k.macs for k in kernels if k is not None and k.kind.weighted)
