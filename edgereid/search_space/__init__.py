"""The hardware-aware search space: architectures, spaces, sampling, fusion, and int8 TFLite builds.

`sample(load_space("mcu"), random.Random(0))` draws an `Architecture`;
`fused_layers(arch, RULES["litert-v1"])` lists the kernels it runs;
`to_tflite(arch, path, seed)` writes it as an int8-activation .tflite with random weights
(enough for latency), built with edgereid.tflite.builder from the op registry's specs.
"""
from edgereid.search_space.architecture import (Architecture, Block, Head, Stem, load_architecture,
                                                save_architecture)
from edgereid.search_space.fusion import RULES, FusionRules, fuse, fused_layers
from edgereid.search_space.layers import Layer, count_macs, expand_layers
from edgereid.search_space.space import (DEFAULT_SPACE, BlockChoices, SearchSpace, StemChoices, list_spaces,
                                         load_space, sample)
from edgereid.search_space.tflite import to_tflite

__all__ = ["Architecture", "Block", "Head", "Stem", "load_architecture", "save_architecture", "RULES",
           "FusionRules", "fuse", "fused_layers", "Layer", "count_macs", "expand_layers", "DEFAULT_SPACE",
           "BlockChoices", "SearchSpace", "StemChoices", "list_spaces", "load_space", "sample", "to_tflite"]
