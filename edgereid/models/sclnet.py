"""SCL-net: a lightweight Re-ID backbone of symmetrical combination units.

After Cai and Tang (2023), who publish no code; this is our design from the paper's
description, so figures from it are ours, not theirs.

SC-unit (symmetrical combination unit), for `out` output channels:

    x --1x1--> a0 --dw3x3+pw--> a1 --dw3x3+pw--> a2 --dw3x3+pw--> a3     branch A
    x --1x1--> b0 --dw3x3+pw--> b1 --dw3x3+pw--> b2 --dw3x3+pw--> b3     branch B
    cat(a1, b1, a2, b2, a3, b3) --1x1 fuse, BN--> (+ x or its 1x1 projection) --ReLU-->

The channel split is two 1x1 "entry" convolutions, each making half of the reduced
width: the same parameters as one 1x1 followed by a channel split, but no SPLIT op
in the exported graph. The two branches mirror each other (same structure,
independent weights); every intermediate map of both branches (receptive fields
3, 5, 7) is concatenated, so the fuse conv sees several scales from maps that were
computed anyway: richer channels for little extra cost.

Network (stride /4 stem, three stages, stride /16 at the end like a last-stride-1
ResNet), with joint shallow + deep supervision:

    stem: conv3x3 s2, BN, ReLU, maxpool 3x3 s2
    stage1: SC-units at c1;  transition: 1x1 conv + 2x2 avg pool
    stage2: SC-units at c2   -> shallow head (GAP, BN-neck, classifier), train only
    transition;  stage3: SC-units at c3;  1x1 conv -> deep head (GAP, BN-neck, classifier)

Default width: stem 48, stages 128 / 256 / 640 channels with 2 / 3 / 3 units: 2.26M
parameters in the deployed model (the paper reports ~2.3M), 527M MACs at 256x128 and
132M at 128x64 (our counter: conv + linear only); embedding 640.

At eval the embedding is the deep head's BN-neck output (one tensor [N, D]); the
shallow head only shapes the middle layers during training. Ops used: Conv2d
(regular, depthwise, 1x1), BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, add, cat, mean,
Linear, BatchNorm1d: all lower to int8 TFLite builtins and CMSIS-NN style kernels.
Checked with edgereid.export (int8 PTQ, width 0.25, 128x64): CONV_2D, DEPTHWISE_CONV_2D,
CONCATENATION, ADD, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, PAD, PADV2 and no
float op.
"""
import torch
from torch import nn

from edgereid.models.heads import BNNeckHead, ReidOutput, global_avg_pool, round_channels, init_backbone

_STAGE_CHANNELS = (128, 256, 640)
_STAGE_UNITS = (2, 3, 3)
_STEM_CHANNELS = 48


def conv_bn_relu(cin, cout, kernel=1, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SeparableConv3x3(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, each with BN and ReLU (MobileNet-style)."""

    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = conv_bn_relu(channels, channels, 3, groups=channels)
        self.pointwise = conv_bn_relu(channels, channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class SCUnit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, reduction: int = 4, depth: int = 3):
        super().__init__()
        half = round_channels(out_channels / reduction / 2)
        self.entry_a = conv_bn_relu(in_channels, half)
        self.entry_b = conv_bn_relu(in_channels, half)
        self.branch_a = nn.ModuleList(SeparableConv3x3(half) for _ in range(depth))
        self.branch_b = nn.ModuleList(SeparableConv3x3(half) for _ in range(depth))
        self.fuse = conv_bn_relu(2 * depth * half, out_channels, relu=False)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = conv_bn_relu(in_channels, out_channels, relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        a, b = self.entry_a(x), self.entry_b(x)
        maps = []
        for layer_a, layer_b in zip(self.branch_a, self.branch_b):
            a, b = layer_a(a), layer_b(b)
            maps += [a, b]
        out = self.fuse(torch.cat(maps, dim=1))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class SCLNet(nn.Module):
    def __init__(self, num_classes: int, embedding_dim: int | None = None, width: float = 1.0,
                 stage_units=_STAGE_UNITS, shallow_stage: int = 2):
        super().__init__()
        stem = round_channels(_STEM_CHANNELS * width)
        channels = [round_channels(c * width) for c in _STAGE_CHANNELS]
        self.stem = nn.Sequential(conv_bn_relu(3, stem, 3, stride=2), nn.MaxPool2d(3, 2, 1))
        stages, transitions, in_ch = [], [], stem
        for i, (ch, n_units) in enumerate(zip(channels, stage_units)):
            stages.append(nn.Sequential(SCUnit(in_ch, ch), *[SCUnit(ch, ch) for _ in range(n_units - 1)]))
            if i < len(channels) - 1:  # transition: mix channels, then halve H and W
                transitions.append(nn.Sequential(conv_bn_relu(ch, ch), nn.AvgPool2d(2, 2)))
            in_ch = ch
        self.stages = nn.ModuleList(stages)
        self.transitions = nn.ModuleList(transitions)
        self.shallow_stage = shallow_stage
        # The shallow head reads stage `shallow_stage` (1-based) before its transition.
        shallow_ch = channels[shallow_stage - 1]
        self.shallow_head = BNNeckHead(shallow_ch, num_classes)
        self.conv_out = conv_bn_relu(in_ch, in_ch)
        self.head = BNNeckHead(in_ch, num_classes, embedding_dim)
        self.embedding_dim = self.head.dim
        init_backbone(self, lambda m: m.fuse[1] if isinstance(m, SCUnit) else None)

    def forward(self, x: torch.Tensor):
        x = self.stem(x)
        shallow = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self.shallow_stage - 1:
                shallow = x  # read before the transition: full resolution of this stage
            if i < len(self.transitions):
                x = self.transitions[i](x)
        feat, emb, logits = self.head(global_avg_pool(self.conv_out(x)))
        if not self.training:
            return emb
        s_feat, _, s_logits = self.shallow_head(global_avg_pool(shallow))
        return ReidOutput(emb, [s_logits, logits], [s_feat, feat])
