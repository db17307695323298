"""A search-space point as a trainable Re-ID model: `build_from_architecture(arch, num_classes)`.

The layers are exactly `edgereid.search_space.expand_layers(arch)`, so the eval-mode
MACs equal `count_macs(arch)`:

    stem:   k x k conv (stride s) -> BN -> ReLU
    block:  `depth` inverted-residual units of `width` channels, the first one strided:
            [1x1 expand conv (in * expand) -> BN -> ReLU] (only when expand > 1)
            -> k x k depthwise conv -> BN -> ReLU -> 1x1 project conv -> BN
            (+ the unit's input when stride 1 and the width is kept)
    head:   global mean -> FC to `embedding` -> BN-neck (bias frozen at zero)
            -> identity classifier (train only)

Convs are SAME-sized (padding k // 2: output = ceil(input / stride)), without bias
(their BN follows). Every BN is a `SwitchableBatchNorm` set by the architecture's
`bn` choice ("shared" / "split", CM-NAS); a split model needs the batch's modality
(`edgereid.models.set_modality`) and exports per modality (`for_modality`).

Eval mode returns the embedding [N, embedding] (post BN-neck, not normalised); train
mode a `ReidOutput(embedding, [logits], [pre-BN-neck feature])`, as the other models.
Precision: "int8" (and "int4") blocks train as float; quantization is the compress
stage's. Binary blocks are refused until binarization exists.
"""
from __future__ import annotations

import torch
from torch import nn

from edgereid.errors import ModelError
from edgereid.models.heads import ReidOutput, global_avg_pool, init_backbone
from edgereid.models.switchable import SwitchableBatchNorm1d, SwitchableBatchNorm2d
from edgereid.ops import Precision
from edgereid.search_space import Architecture

# Weight precisions whose blocks train as float convs (the compress stage quantizes them).
FLOAT_TRAINABLE = (Precision.INT8, Precision.INT4)


class ConvBN(nn.Sequential):
    """conv (no bias) -> switchable BN [-> ReLU]."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, bn: str, relu: bool, groups: int = 1):
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                  SwitchableBatchNorm2d(cout, split=bn == "split")]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)

    @property
    def bn(self):
        return self[1]


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, bns: list[str],
                 precision: Precision):
        super().__init__()
        hidden = cin * expand
        bns = iter(bns)
        self.precision = precision
        self.expand = ConvBN(cin, hidden, 1, 1, next(bns), relu=True) if expand > 1 else None
        self.dw = ConvBN(hidden, hidden, kernel, stride, next(bns), relu=True, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, 1, next(bns), relu=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.project(self.dw(self.expand(x) if self.expand is not None else x))
        return out + x if self.residual else out


class SearchedHead(nn.Module):
    """Pooled vector -> FC `reduce` -> BN-neck -> classifier; `reduce` always exists (the
    architecture's FC), so `edgereid.export` folds the BN-neck into it."""

    def __init__(self, in_channels: int, embedding: int, num_classes: int, bn: str):
        super().__init__()
        self.reduce = nn.Linear(in_channels, embedding)
        self.bnneck = SwitchableBatchNorm1d(embedding, split=bn == "split")
        self.classifier = nn.Linear(embedding, num_classes, bias=False)
        self.dim = embedding
        for norm in self.bnneck.norms():
            norm.bias.requires_grad_(False)
            nn.init.ones_(norm.weight)
            nn.init.zeros_(norm.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.kaiming_normal_(self.reduce.weight, mode="fan_out")
        nn.init.zeros_(self.reduce.bias)

    def forward(self, pooled: torch.Tensor):
        feat = self.reduce(pooled)
        emb = self.bnneck(feat)
        logits = self.classifier(emb) if self.training else None
        return feat, emb, logits


class SearchedNet(nn.Module):
    def __init__(self, architecture: Architecture, num_classes: int):
        super().__init__()
        arch = architecture
        binary = [i for i, b in enumerate(arch.blocks) if b.precision is Precision.BINARY]
        if binary:
            raise ModelError(f"blocks {binary} are binary: binary blocks need issue 9's binarization "
                             f"(BiRe-ID binary convs), which edgereid does not have yet; only "
                             f"{'/'.join(p.value for p in FLOAT_TRAINABLE)} blocks can be built")
        h, w, c = arch.input_shape
        self.architecture = arch
        self.input_size = (h, w)
        self.stem = ConvBN(c, arch.stem.width, arch.stem.kernel, arch.stem.stride, arch.stem.bn, relu=True)
        blocks, cin = [], arch.stem.width
        for b in arch.blocks:
            per_unit = b.bn_layers_per_unit
            units = []
            for u in range(b.depth):
                units.append(InvertedResidual(cin, b.width, b.kernel, b.stride if u == 0 else 1, b.expand,
                                              list(b.bn[u * per_unit:(u + 1) * per_unit]), b.precision))
                cin = b.width
            blocks.append(nn.Sequential(*units))
        self.blocks = nn.Sequential(*blocks)
        self.head = SearchedHead(cin, arch.head.embedding, num_classes, arch.head.bn)
        self.embedding_dim = self.head.dim
        init_backbone(self, lambda m: m.project.bn.norms() if isinstance(m, InvertedResidual) and m.residual
                      else None)

    def forward(self, x: torch.Tensor):
        feat, emb, logits = self.head(global_avg_pool(self.blocks(self.stem(x))))
        if not self.training:
            return emb
        return ReidOutput(emb, [logits], [feat])


def build_from_architecture(architecture, num_classes: int) -> SearchedNet:
    """A trainable model of `architecture` (an `Architecture` or its `to_dict()`)."""
    if isinstance(architecture, dict):
        architecture = Architecture.from_dict(architecture)
    if not isinstance(architecture, Architecture):
        raise ModelError(f"expected an edgereid.search_space.Architecture (or its dict), "
                         f"got {type(architecture).__name__}")
    return SearchedNet(architecture, num_classes)
