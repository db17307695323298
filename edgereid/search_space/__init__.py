"""The hardware-aware search space: architectures, spaces, sampling, and int8 TFLite builds.

`sample(load_space("mcu"), random.Random(0))` draws an `Architecture`;
`to_tflite(arch, path, seed)` writes it as a full-int8 .tflite with random weights
(enough for latency), built directly with the firmware's flatbuffer builder.
"""
from edgereid.search_space.architecture import (Architecture, Block, Head, Stem, load_architecture,
                                                save_architecture)
from edgereid.search_space.layers import Layer, count_macs, expand_layers
from edgereid.search_space.space import (DEFAULT_SPACE, BlockChoices, SearchSpace, StemChoices, list_spaces,
                                         load_space, sample)

__all__ = ["Architecture", "Block", "Head", "Stem", "load_architecture", "save_architecture", "Layer",
           "count_macs", "expand_layers", "DEFAULT_SPACE", "BlockChoices", "SearchSpace", "StemChoices",
           "list_spaces", "load_space", "sample", "to_tflite"]


def to_tflite(arch, path, seed: int = 0):
    from edgereid.search_space.tflite import to_tflite as _to_tflite

    return _to_tflite(arch, path, seed)
