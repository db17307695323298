"""ResNet-18/34 (BasicBlock) for Re-ID, written without torchvision.

Re-ID habits: the last stage keeps stride 1 (a 16x8 final map at 256x128 instead of
8x4, more spatial detail for the pooled descriptor), global average pool, BN-neck.
`width` scales the base widths (64, 128, 256, 512), rounded to a multiple of 8.
"""
import torch
from torch import nn

from edgereid.models.heads import BNNeckHead, ReidOutput, global_avg_pool, round_channels, init_backbone

_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
_BASE_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, depth: str, num_classes: int, embedding_dim: int | None = None,
                 width: float = 1.0, last_stride: int = 1):
        super().__init__()
        widths = [round_channels(w * width) for w in _BASE_WIDTHS]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        strides = (1, 2, 2, last_stride)
        stages, in_ch = [], widths[0]
        for n_blocks, ch, stride in zip(_LAYERS[depth], widths, strides):
            blocks = [BasicBlock(in_ch, ch, stride)] + [BasicBlock(ch, ch) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = ch
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head = BNNeckHead(in_ch, num_classes, embedding_dim)
        self.embedding_dim = self.head.dim
        init_backbone(self, lambda m: m.bn2 if isinstance(m, BasicBlock) else None)

    def forward(self, x: torch.Tensor):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        feat, emb, logits = self.head(global_avg_pool(x))
        if not self.training:
            return emb
        return ReidOutput(emb, [logits], [feat])
