"""A weight-sharing supernet over a search space (Once-for-All style, with CM-NAS's BN switches).

Every architecture of the space is a sub-network of one `SuperNet`: the largest width,
depth, kernel and expansion of each position hold the weights, and an architecture uses
their leading slices (first `c` channels, the centre k x k of the largest kernel, the
first `depth` units of a block). Each BN position holds three BNs at the largest width
(shared, visible, infrared), so the architecture's `bn` choice per position picks the
shared one or the per-modality pair (split BNs route each sample by its modality, as
`SwitchableBatchNorm` does; `set_modality` reaches them).

`set_active(arch)` chooses the sub-network the next forwards compute; it computes the
same function as `build_from_architecture(arch)` with the same (sliced) weights, which a
test checks. Running BN statistics are shared between sub-networks and must be
re-estimated for the one evaluated (`recalibrate`), as in Once-for-All.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgereid.errors import ModelError
from edgereid.models.heads import ReidOutput, global_avg_pool
from edgereid.models.switchable import _SwitchableBatchNorm, reestimate_bn_statistics
from edgereid.ops import Precision
from edgereid.search_space import Architecture
from edgereid.search_space.space import SearchSpace


class ElasticBatchNorm(_SwitchableBatchNorm):
    """Shared, visible and infrared BNs at the largest width; `choice` and the active width
    (the input's channel count) pick what a forward uses."""

    def __init__(self, num_features: int, one_d: bool = False):
        nn.Module.__init__(self)
        self.num_features = num_features
        self.one_d = one_d
        bn = nn.BatchNorm1d if one_d else nn.BatchNorm2d
        self.shared, self.visible, self.infrared = bn(num_features), bn(num_features), bn(num_features)
        self.split = False          # the active choice (set_active)
        self.modality = None

    def norms(self) -> list[nn.Module]:
        return [self.shared, self.visible, self.infrared]

    @staticmethod
    def _sliced(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        momentum = bn.momentum
        if bn.training:   # as nn.BatchNorm: momentum None is a cumulative average
            bn.num_batches_tracked.add_(1)
            if momentum is None:
                momentum = 1.0 / float(bn.num_batches_tracked)
        # Slices of the buffers are views: train-mode statistics update the leading channels in place.
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c],
                            bn.training, momentum or 0.0, bn.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.split:
            return self._sliced(self.shared, x)
        m = self.modality
        if m is None:
            raise ModelError("the supernet's active architecture has split BNs: set the batch's modality "
                             "(edgereid.models.set_modality)")
        if isinstance(m, str):
            return self._sliced(getattr(self, m), x)
        infrared = torch.as_tensor(m, device=x.device).reshape(-1).bool()
        ir, vis = infrared.nonzero().flatten(), (~infrared).nonzero().flatten()
        if ir.numel() == 0:
            return self._sliced(self.visible, x)
        if vis.numel() == 0:
            return self._sliced(self.infrared, x)
        out = torch.zeros_like(x)
        out = out.index_copy(0, vis, self._sliced(self.visible, x.index_select(0, vis)))
        return out.index_copy(0, ir, self._sliced(self.infrared, x.index_select(0, ir)))


class ElasticConvBN(nn.Module):
    """conv (no bias) at the largest shape -> ElasticBatchNorm [-> ReLU]; the active output
    width, kernel, stride and BN choice are set per forward by the owner."""

    def __init__(self, cin: int, cout: int, kernel: int, relu: bool, depthwise: bool = False):
        super().__init__()
        self.depthwise, self.relu = depthwise, relu
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bn = ElasticBatchNorm(cout)
        self.out_channels, self.kernel, self.stride = cout, kernel, 1

    def configure(self, out_channels: int, kernel: int, stride: int, bn: str) -> None:
        if out_channels > self.weight.shape[0] or kernel > self.weight.shape[-1]:
            raise ModelError(f"supernet layer holds {self.weight.shape[0]} channels, kernel {self.weight.shape[-1]}; "
                             f"asked for {out_channels}, kernel {kernel}")
        self.out_channels, self.kernel, self.stride = out_channels, kernel, stride
        self.bn.split = bn == "split"

    def active_weight(self, in_channels: int) -> torch.Tensor:
        k_max, k = self.weight.shape[-1], self.kernel
        lo = (k_max - k) // 2
        w = self.weight[:self.out_channels, :1 if self.depthwise else in_channels, lo:lo + k, lo:lo + k]
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        if self.depthwise and self.out_channels != cin:
            raise ModelError(f"depthwise layer configured for {self.out_channels} channels reads {cin}")
        y = F.conv2d(x, self.active_weight(cin), None, self.stride, self.kernel // 2,
                     groups=cin if self.depthwise else 1)
        y = self.bn(y)
        return F.relu(y) if self.relu else y


class ElasticUnit(nn.Module):
    """One inverted-residual unit at its position's largest input width, expansion and kernel."""

    def __init__(self, cin_max: int, cout_max: int, kernel_max: int, expand_max: int):
        super().__init__()
        hidden = cin_max * expand_max
        self.expand = ElasticConvBN(cin_max, hidden, 1, relu=True)
        self.dw = ElasticConvBN(hidden, hidden, kernel_max, relu=True, depthwise=True)
        self.project = ElasticConvBN(hidden, cout_max, 1, relu=False)
        self.active_expand, self.residual = 1, False

    def configure(self, cin: int, cout: int, kernel: int, stride: int, expand: int, bns) -> None:
        hidden = cin * expand
        bns = iter(bns)
        self.active_expand = expand
        if expand > 1:
            self.expand.configure(hidden, 1, 1, next(bns))
        self.dw.configure(hidden, kernel, stride, next(bns))
        self.project.configure(cout, 1, 1, next(bns))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = self.expand(x) if self.active_expand > 1 else x
        out = self.project(self.dw(h))
        return out + x if self.residual else out


class SuperNet(nn.Module):
    """Every architecture of `space` as a sub-network (see the module doc)."""

    def __init__(self, space: SearchSpace, num_classes: int):
        super().__init__()
        bad = [i for i, b in enumerate(space.blocks) if any(p is Precision.BINARY for p in b.precisions)]
        if bad:
            raise ModelError(f"space {space.name}: blocks {bad} allow binary precision; the supernet trains "
                             "int8/int4 blocks as float convs only")
        self.space = space
        h, w, c = space.input_shape
        self.input_size = (h, w)
        self.stem = ElasticConvBN(c, max(space.stem.widths), space.stem.kernel, relu=True)
        units, cin = [], max(space.stem.widths)
        for bc in space.blocks:
            block = []
            for u in range(max(bc.depths)):
                block.append(ElasticUnit(cin, max(bc.widths), max(bc.kernels), max(bc.expands)))
                cin = max(bc.widths)
            units.append(nn.ModuleList(block))
        self.blocks = nn.ModuleList(units)
        emb_max = max(space.embeddings)
        self.reduce = nn.Linear(cin, emb_max)
        self.bnneck = ElasticBatchNorm(emb_max, one_d=True)
        self.classifier = nn.Linear(emb_max, num_classes, bias=False)
        for norm in self.bnneck.norms():
            norm.bias.requires_grad_(False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        nn.init.kaiming_normal_(self.reduce.weight, mode="fan_out")
        nn.init.zeros_(self.reduce.bias)
        self.active: Architecture | None = None

    def set_active(self, arch: Architecture) -> "SuperNet":
        """Compute `arch` from now on (it must belong to the space: same positions, choices within)."""
        space = self.space
        if len(arch.blocks) != len(space.blocks) or tuple(arch.input_shape) != tuple(space.input_shape):
            raise ModelError(f"architecture with {len(arch.blocks)} blocks at {arch.input_shape} is not in space "
                             f"{space.name} ({len(space.blocks)} blocks at {space.input_shape})")
        self.stem.configure(arch.stem.width, arch.stem.kernel, arch.stem.stride, arch.stem.bn)
        cin = arch.stem.width
        for i, (b, units) in enumerate(zip(arch.blocks, self.blocks)):
            bc = space.blocks[i]
            if (b.width not in bc.widths or b.depth not in bc.depths or b.kernel not in bc.kernels
                    or b.expand not in bc.expands or b.stride not in bc.strides):
                raise ModelError(f"blocks[{i}] {b} is outside space {space.name}'s choices {bc}")
            per = b.bn_layers_per_unit
            for u in range(b.depth):
                units[u].configure(cin, b.width, b.kernel, b.stride if u == 0 else 1, b.expand,
                                   b.bn[u * per:(u + 1) * per])
                cin = b.width
        if arch.head.embedding not in space.embeddings:
            raise ModelError(f"head.embedding {arch.head.embedding} is not one of {space.embeddings}")
        self.bnneck.split = arch.head.bn == "split"
        self.active = arch
        return self

    def forward(self, x: torch.Tensor):
        arch = self.active
        if arch is None:
            raise ModelError("SuperNet: call set_active(architecture) before running it")
        x = self.stem(x)
        for b, units in zip(arch.blocks, self.blocks):
            for u in range(b.depth):
                x = units[u](x)
        pooled = global_avg_pool(x)
        e = arch.head.embedding
        feat = F.linear(pooled, self.reduce.weight[:e, :pooled.shape[1]], self.reduce.bias[:e])
        emb = self.bnneck(feat)
        if not self.training:
            return emb
        return ReidOutput(emb, [F.linear(emb, self.classifier.weight[:, :e])], [feat])

    def recalibrate(self, batches, max_batches: int = 20) -> "SuperNet":
        """Re-estimate the active sub-network's BN statistics (`reestimate_bn_statistics`:
        cumulative average over `batches`), as Once-for-All does before evaluating one."""
        return reestimate_bn_statistics(self, batches, max_batches)


def copy_active_weights(supernet: SuperNet, net: nn.Module) -> nn.Module:
    """Load the active sub-network's weights into `net` = build_from_architecture(active):
    the sliced convs, the BN(s) each position uses, the head. For a retrain from the
    supernet's weights, and for the test that the two compute the same function."""
    arch = supernet.active

    def conv_bn(elastic: ElasticConvBN, plain, cin: int) -> None:
        plain[0].weight.data.copy_(elastic.active_weight(cin))
        c = elastic.out_channels
        pairs = [(plain[1].shared, elastic.bn.shared)] if not plain[1].split else \
            [(plain[1].visible, elastic.bn.visible), (plain[1].infrared, elastic.bn.infrared)]
        for dst, src in pairs:
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst, name).data.copy_(getattr(src, name)[:c])

    conv_bn(supernet.stem, net.stem, arch.input_shape[2])
    cin = arch.stem.width
    for b, units, plain_units in zip(arch.blocks, supernet.blocks, net.blocks):
        for u in range(b.depth):
            unit, plain = units[u], plain_units[u]
            if plain.expand is not None:
                conv_bn(unit.expand, plain.expand, cin)
            conv_bn(unit.dw, plain.dw, 1)
            conv_bn(unit.project, plain.project, cin * b.expand)
            cin = b.width
    e = arch.head.embedding
    net.head.reduce.weight.data.copy_(supernet.reduce.weight[:e, :cin])
    net.head.reduce.bias.data.copy_(supernet.reduce.bias[:e])
    neck = net.head.bnneck
    pairs = [(neck.shared, supernet.bnneck.shared)] if not neck.split else \
        [(neck.visible, supernet.bnneck.visible), (neck.infrared, supernet.bnneck.infrared)]
    for dst, src in pairs:
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst, name).data.copy_(getattr(src, name)[:e])
    net.head.classifier.weight.data.copy_(supernet.classifier.weight[:, :e])
    return net
