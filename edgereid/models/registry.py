"""Model names -> constructors, and a parameter / MAC counter."""
from torch import nn

from edgereid.errors import ModelError
from edgereid.models.complexity import trace_leaf_modules
from edgereid.models.bireid import BiReIDResNet
from edgereid.models.resnet import ResNet
from edgereid.models.sclnet import SCLNet
from edgereid.models.searched import build_from_architecture
from edgereid.models.switchable import make_switchable

_MODELS = {
    "resnet18": lambda num_classes, **kw: ResNet("resnet18", num_classes, **kw),
    "resnet34": lambda num_classes, **kw: ResNet("resnet34", num_classes, **kw),
    "sclnet": lambda num_classes, **kw: SCLNet(num_classes, **kw),
    "bireid_resnet18": lambda num_classes, **kw: BiReIDResNet(num_classes, **kw),
}


# Models defined by an argument rather than a name alone: not in list_models().
ARCHITECTURE_MODEL = "arch"  # build_model("arch", num_classes, architecture=Architecture or its dict)


def _build_arch(num_classes: int, embedding_dim=None, width=1.0, architecture=None):
    if architecture is None:
        raise ModelError("model 'arch' needs architecture= (an edgereid.search_space.Architecture or its dict)")
    model = build_from_architecture(architecture, num_classes)
    if embedding_dim is not None and embedding_dim != model.embedding_dim:
        raise ModelError(f"model 'arch': embedding_dim {embedding_dim} differs from the architecture's "
                         f"head.embedding {model.embedding_dim}")
    if width != 1.0:
        raise ModelError(f"model 'arch': width multiplier {width} given; the architecture fixes every width")
    return model


def list_models() -> list[str]:
    """The named backbones (buildable from a name alone); `"arch"` (a search-space point) is not listed."""
    return sorted(_MODELS)


def build_model(name: str, num_classes: int, embedding_dim: int | None = None, width: float = 1.0,
                **kw) -> nn.Module:
    """Build a registered model; `embedding_dim=None` keeps the backbone's channel count.

    `build_model("arch", num_classes, architecture=arch)` builds a search-space point
    (`edgereid.models.searched`); pass `arch.to_dict()` where the arguments are stored
    (checkpoints keep `model_args` as plain data). `bn_switches=` ("shared", "split" or a
    0/1 string, one per BN) makes a named backbone's BNs switchable per modality (CM-NAS).
    """
    if name == ARCHITECTURE_MODEL:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ModelError(f"num_classes for {name} must be a positive integer, got {num_classes!r}")
        unknown = sorted(set(kw) - {"architecture"})
        if unknown:
            raise ModelError(f"invalid arguments for model {name}: {', '.join(unknown)}")
        model = _build_arch(num_classes, embedding_dim, width, kw.get("architecture"))
        model.model_name = name
        return model
    if name not in _MODELS:
        raise ModelError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes for {name} must be a positive integer, got {num_classes!r}")
    if not width > 0:
        raise ModelError(f"width for {name} must be > 0, got {width!r}")
    if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 1):
        raise ModelError(f"embedding_dim for {name} must be a positive integer, got {embedding_dim!r}")
    switches = kw.pop("bn_switches", None)
    try:
        model = _MODELS[name](num_classes, embedding_dim=embedding_dim, width=width, **kw)
    except TypeError as exc:  # an unknown keyword for this architecture
        raise ModelError(f"invalid arguments for model {name}: {exc}") from None
    if switches is not None:   # CM-NAS: every BN shared or split per modality
        make_switchable(model, switches)
    model.model_name = name
    return model


def model_complexity(model: nn.Module, input_size=(256, 128)) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one eval-mode forward at `input_size` (H, W).

    Both count only what the deployed (eval-mode) forward uses: train-only heads and
    classifiers are left out, since they never reach the exported model. MACs are
    counted for Conv2d and Linear layers (kernel_h * kernel_w * in/groups * out per
    output position); BN, activations, pooling and adds are not counted.
    """
    used, macs = {}, [0]

    def hook(module, inputs, output):
        used[id(module)] = module
        # nn.Conv2d / nn.Linear, and layers shaped like them (edgereid.models.binary's QuantConv2d / QuantLinear)
        if isinstance(module, nn.Conv2d) or all(hasattr(module, a) for a in ("kernel_size", "in_channels", "groups")):
            kh, kw = module.kernel_size
            macs[0] += output.numel() // output.shape[0] * kh * kw * module.in_channels // module.groups
        elif isinstance(module, nn.Linear) or hasattr(module, "in_features"):
            macs[0] += output.numel() // output.shape[0] * module.in_features

    trace_leaf_modules(model, input_size, hook)
    params = sum(p.numel() for m in used.values() for p in m.parameters(recurse=False))
    return params, macs[0]
