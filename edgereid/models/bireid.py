"""BiRe-ID's binary ResNet-18 for Re-ID (Xu et al., TOMM 2022; no public code: our reading).

Unit (BiRe-ID): BN -> binary 3x3 conv (alpha-scaled) -> BN -> PReLU, with its own shortcut
(Bi-Real: one shortcut per binary conv, so every unit's real-valued input reaches its output):

    x --BN--sign--bconv(x alpha)--BN--PReLU--(+)-->
    |_______________ shortcut ______________|      identity, or AvgPool 2x2 -> 1x1 conv -> BN

ResNet-18 = stem + 4 stages of 2 basic blocks = 4 stages x 4 units: 16 binary 3x3 convs.

Real-valued layers (Bi-Real's convention, DESIGN.md: the paper does not publish which stay
real): the first conv (7x7 s2: its input has 3 channels, binarizing it costs much accuracy for
~2% of the MACs), the 1x1 downsample shortcuts (3 of them, few MACs; a binary shortcut would
binarize the very information the shortcut carries), and the embedding head (pooled feature
-> Linear -> BN-neck: the embedding's precision is what the ranking reads). `binary_head=True`
makes the head's Linear binary too (exported as LceQuantize -> LceDequantize -> int8
FULLY_CONNECTED), for measuring that choice.

Re-ID habits as in edgereid.models.resnet: last stage stride 1, global average pool, BN-neck.
`width` scales (64, 128, 256, 512) rounded to multiples of 8. Padding is TensorFlow SAME
throughout (QuantConv2d, SameMaxPool2d), so the exported graph needs no PAD op.

`binary=False` builds the same network real-valued (no quantizers, no alpha): the float
twin, trained first and used to initialise the binary model (`load_float_twin`).
`residual=False` drops the unit shortcuts (a plain binary net, for exporter tests: there a
binary conv feeds the next one directly, and the stem's max pool feeds a binarizer).

SCL-net has no binary variant: its units are depthwise 3x3 + 1x1 convolutions. Larq Compute
Engine has no binary depthwise conv (a binary depthwise layer runs as float / int8), and the
1x1 convs have K = Cin taps only, where a binary conv saves least and loses most; nothing of
an SC-unit binarizes profitably.
"""
from __future__ import annotations

from torch import nn

from edgereid.errors import CheckpointError, ModelError
from edgereid.models.complexity import trace_leaf_modules
from edgereid.models.binary import QuantConv2d, QuantLinear, SameMaxPool2d, is_binary
from edgereid.models.heads import ReidOutput, global_avg_pool, init_backbone, round_channels

__all__ = ["BiReIDResNet", "BiReIDUnit", "Downsample", "EmbeddingHead", "load_float_twin", "binary_complexity"]

_BASE_WIDTHS = (64, 128, 256, 512)
_UNITS_PER_STAGE = 4  # 2 basic blocks x 2 binary convs


class Downsample(nn.Module):
    """Bi-Real's real-valued shortcut: AvgPool 2x2 (stride 2 only) -> 1x1 conv -> BN."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else None
        self.conv = QuantConv2d(cin, cout, 1, padding="valid")
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        return self.bn(self.conv(x))


class BiReIDUnit(nn.Module):
    """BN -> (binary) 3x3 conv -> BN -> PReLU (+ shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int, binary: bool, input_quantizer, kernel_quantizer,
                 pad_values: float, residual: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ModelError(f"BiReIDUnit stride {stride}: expected 1 or 2")
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv = QuantConv2d(cin, cout, 3, stride, "same",
                                input_quantizer=input_quantizer if binary else None,
                                kernel_quantizer=kernel_quantizer if binary else None,
                                pad_values=pad_values if binary else 0.0, scale=binary)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.PReLU(cout, init=0.25)
        self.residual = bool(residual)
        self.shortcut = Downsample(cin, cout, stride) if residual and (stride != 1 or cin != cout) else None

    def forward(self, x):
        y = self.act(self.bn2(self.conv(self.bn1(x))))
        if not self.residual:
            return y
        return y + (x if self.shortcut is None else self.shortcut(x))


class EmbeddingHead(nn.Module):
    """Pooled feature -> Linear (the embedding layer) -> BN-neck (bias frozen at 0) -> classifier."""

    def __init__(self, in_channels: int, dim: int, num_classes: int, binary: bool = False,
                 input_quantizer=None, kernel_quantizer=None):
        super().__init__()
        if binary:
            self.embed = QuantLinear(in_channels, dim, bias=True, input_quantizer=input_quantizer,
                                     kernel_quantizer=kernel_quantizer, scale=True)
        else:
            self.embed = nn.Linear(in_channels, dim)
            nn.init.kaiming_normal_(self.embed.weight, mode="fan_out")
            nn.init.zeros_(self.embed.bias)
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.dim = dim

    def forward(self, pooled):
        feat = self.embed(pooled)
        emb = self.bnneck(feat)
        return feat, emb, (self.classifier(emb) if self.training else None)


class BiReIDResNet(nn.Module):
    """Binary ResNet-18 of BiRe-ID units (module doc). Train mode: ReidOutput; eval: embedding [N, D]."""

    def __init__(self, num_classes: int, embedding_dim: int | None = None, width: float = 1.0,
                 last_stride: int = 1, binary: bool = True, input_quantizer: str = "approx_sign",
                 kernel_quantizer: str = "magnitude_aware_sign", pad_values: float = 1.0, residual: bool = True,
                 binary_head: bool = False, zero_init_residual: bool = False, int8_ranges: dict | None = None,
                 int8_preprocess: dict | None = None):
        super().__init__()
        if last_stride not in (1, 2):
            raise ModelError(f"bireid_resnet18 last_stride {last_stride}: expected 1 or 2")
        if binary_head and not binary:
            raise ModelError("bireid_resnet18: binary_head=True needs binary=True")
        self.binary = bool(binary)
        widths = [round_channels(w * width) for w in _BASE_WIDTHS]
        self.conv1 = QuantConv2d(3, widths[0], 7, 2, "same")
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = SameMaxPool2d(3, 2)
        stages, cin = [], widths[0]
        for cout, stride in zip(widths, (1, 2, 2, last_stride)):
            units = []
            for i in range(_UNITS_PER_STAGE):
                units.append(BiReIDUnit(cin, cout, stride if i == 0 else 1, binary, input_quantizer,
                                        kernel_quantizer, pad_values, residual))
                cin = cout
            stages.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.stage_strides = (1, 2, 2, last_stride)
        self.head = EmbeddingHead(cin, embedding_dim or cin, num_classes, binary_head, input_quantizer,
                                  kernel_quantizer)
        self.embedding_dim = self.head.dim
        # zero_init_residual: every unit starts as its shortcut (as edgereid.models.resnet). Off by default: with
        # one shortcut per conv the branches' BNs stayed near zero (|gamma| ~0.03 after 20 epochs), leaving the
        # network to its real-valued stem and downsample convs.
        init_backbone(self, lambda m: m.bn2 if zero_init_residual and isinstance(m, BiReIDUnit) and m.residual
                      else None)
        # Quantization-aware form for the int8 LCE export (edgereid.compress.lce_qat): the export's int8 ranges
        # ({module name: [min, max]}) and preprocessing (mean / std: the input's int8 scale), fixed by QAT.
        if int8_ranges is not None and not binary:
            raise ModelError("bireid_resnet18: int8_ranges (the int8 LCE export's QAT form) needs binary=True")
        self.int8_ranges = (None if int8_ranges is None
                            else {k: [float(v[0]), float(v[1])] for k, v in int8_ranges.items()})
        self.int8_preprocess = None if int8_preprocess is None else dict(int8_preprocess)

    # The quantization-aware forward runs the LCE exporter, a stage above this one: importing
    # edgereid.compress.lce_qat installs it here (docs/architecture.md: stages depend downward only).
    int8_qat_forward = None

    def forward(self, x):
        if self.int8_ranges is not None:  # values of the int8 LCE file, gradients of the float model
            qat_forward = type(self).int8_qat_forward
            if qat_forward is None:
                raise ModelError("this bireid_resnet18 is in its int8 LCE quantization-aware form (int8_ranges); "
                                 "its forward comes with edgereid.compress.lce_qat: import it first")
            return qat_forward(self, x)
        return self.forward_float(x)

    def forward_float(self, x):
        """The model in float (also the QAT form's gradient path)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        feat, emb, logits = self.head(global_avg_pool(x))
        if not self.training:
            return emb
        return ReidOutput(emb, [logits], [feat])

    # -- what BiRe-ID's losses hook onto --------------------------------------------------
    def binary_layers(self) -> list[tuple[str, nn.Module]]:
        """(name, layer) of every binary conv / linear (KR-GAL's kernels)."""
        return [(name, m) for name, m in self.named_modules() if is_binary(m)]

    def feature_pairs(self) -> list[tuple[str, str, int, int, int]]:
        """FR-GAL's (low stage, high stage, low channels, high channels, spatial factor) pairs:
        each stage's output refined by the next stage's."""
        names = ("layer1", "layer2", "layer3", "layer4")
        chans = [getattr(self, n)[-1].bn2.num_features for n in names]
        return [(names[i], names[i + 1], chans[i], chans[i + 1], self.stage_strides[i + 1]) for i in range(3)]


_CLASSIFIER = "head.classifier.weight"


def load_float_twin(model: BiReIDResNet, state_dict: dict, source: str = "checkpoint") -> BiReIDResNet:
    """Initialise a binary BiReIDResNet from its real-valued twin's weights (same names; the binary
    model's alphas start at 1). A twin trained on another identity split (another class count) gives
    everything but its identity classifier, which keeps its fresh initialisation. Anything else is a
    CheckpointError naming the first mismatch."""
    own = model.state_dict()
    theirs, mine = state_dict.get(_CLASSIFIER), own.get(_CLASSIFIER)
    fresh = set()
    if theirs is not None and mine is not None and theirs.shape[0] != mine.shape[0] \
            and theirs.shape[1:] == mine.shape[1:]:
        state_dict = {k: v for k, v in state_dict.items() if k != _CLASSIFIER}
        fresh = {_CLASSIFIER}
    missing = [k for k in own if k not in state_dict and not k.endswith(".alpha") and k not in fresh]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise CheckpointError(f"{source}: weights are not a bireid_resnet18 of this shape ({what}; "
                              f"{len(missing)} missing, {len(unexpected)} unexpected)")
    for k, v in state_dict.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{source}: {k} has shape {list(v.shape)}, the model expects {list(own[k].shape)} "
                                  f"(another width or embedding size?)")
    model.load_state_dict({**own, **state_dict})
    return model


def binary_complexity(model: nn.Module, input_size=(128, 64)) -> dict:
    """Counts of one eval forward at `input_size`: binary / real MACs and weights.

    - `binary_macs`: MACs of binary convs / linears; `float_macs`: every other Conv / Linear
      (QuantConv2d without quantizers, nn.Conv2d, nn.Linear; BN, PReLU, pooling, adds not counted);
    - `binary_weights` / `float_params`: their weight counts (float_params also counts the
      real layers' biases, BN and PReLU parameters, alphas of the binary layers);
    - `ops` = binary_macs / 64 + float_macs (Bi-Real's convention); `storage_bits` = 1 per binary
      weight + 32 per real parameter.
    """
    counts = {"binary_macs": 0, "float_macs": 0}
    used = {}

    def hook(module, inputs, output):
        used[id(module)] = module
        per_out = output.numel() // output.shape[0]
        if isinstance(module, QuantConv2d) or isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = per_out * kh * kw * module.in_channels // module.groups
        elif isinstance(module, (QuantLinear, nn.Linear)):
            macs = per_out * module.in_features
        else:
            return
        counts["binary_macs" if is_binary(module) else "float_macs"] += macs

    trace_leaf_modules(model, input_size, hook)
    binary_weights = sum(m.weight.numel() for m in used.values() if is_binary(m))
    params = sum(p.numel() for m in used.values() for p in m.parameters(recurse=False))
    float_params = params - binary_weights
    return {**counts, "binary_weights": binary_weights, "float_params": float_params,
            "ops": counts["binary_macs"] / 64.0 + counts["float_macs"],
            "storage_bits": binary_weights + 32 * float_params}
