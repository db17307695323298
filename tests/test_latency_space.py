"""Search space: sampling, JSON round trip, validation, fusion, and the .tflite it builds."""
import dataclasses
import random

import pytest

from edgereid.errors import ModelError
from edgereid.latency.fusion import RULES, architecture_kernels, fuse
from edgereid.latency.space_kernels import space_kernels
from edgereid.latency.tflite_ops import read_kernels
from edgereid.ops import Precision
from edgereid.search_space import (Architecture, Block, Head, Stem, count_macs, expand_layers, load_architecture,
                                   load_space, sample, save_architecture, to_tflite)

LITERT = RULES["litert-v1"]


def test_sampler_is_deterministic_and_varies():
    space = load_space("mcu")
    a = [sample(space, random.Random(7)) for _ in range(2)]
    assert a[0] == a[1]
    drawn = {sample(space, random.Random(s)).to_json() for s in range(20)}
    assert len(drawn) == 20
    for s in range(20):
        arch = sample(space, random.Random(s))
        assert arch.input_shape == (128, 64, 3)
        for block, choices in zip(arch.blocks, space.blocks):
            assert block.width in choices.widths and block.depth in choices.depths
            assert block.kernel in choices.kernels and block.stride in choices.strides
            assert len(block.bn) == block.num_bn_layers


def test_architecture_json_round_trip(tmp_path):
    arch = sample(load_space("mcu"), random.Random(3))
    path = save_architecture(arch, tmp_path / "a.json")
    assert load_architecture(path) == arch
    assert Architecture.from_json(arch.to_json()) == arch


@pytest.mark.parametrize("change, field", [
    (dict(blocks=(Block(width=16, kernel=4, bn=("shared",) * 3),)), "blocks[0].kernel"),
    (dict(blocks=(Block(width=16, bn=("shared",)),)), "blocks[0].bn"),
    (dict(blocks=()), "at least one block"),
    (dict(stem=Stem(width=0)), "stem.width"),
])
def test_invalid_architecture_names_the_field(change, field):
    good = dict(input_shape=(32, 16, 3), stem=Stem(width=8), blocks=(Block(width=16, bn=("shared",) * 3),),
                head=Head(embedding=32))
    with pytest.raises(ModelError, match=field.replace("[", r"\[").replace("]", r"\]")):
        Architecture(**{**good, **change})


def test_precision_is_parsed_where_it_comes_in():
    assert Block(width=16, precision="int4", bn=("shared",) * 3).precision is Precision.INT4
    with pytest.raises(ModelError, match=r"Block\.precision is 'int3'; expected one of int8, int4, binary"):
        Block(width=16, precision="int3", bn=("shared",) * 3)
    arch = sample(load_space("tiny"), random.Random(0))
    d = arch.to_dict()
    assert [b["precision"] for b in d["blocks"]] == ["int8"] * len(arch.blocks)      # JSON keeps the strings
    assert Architecture.from_dict(d) == arch
    d["blocks"][1]["precision"] = "fp16"
    with pytest.raises(ModelError, match=r"blocks\[1\]\.precision is 'fp16'; expected one of int8, int4, binary"):
        Architecture.from_dict(d, "a.json")
    space = load_space("tiny")
    assert space.with_precisions(("int8",)) == space
    with pytest.raises(ModelError, match=r"with_precisions is 'int2'"):
        space.with_precisions(("int2",))
    with pytest.raises(ModelError, match="none of"):
        space.with_precisions((Precision.BINARY,))


def test_corrupt_architecture_file(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_architecture(bad)


def test_fusion_folds_bn_and_relu_into_the_conv():
    arch = Architecture(input_shape=(16, 8, 3), stem=Stem(width=8),
                        blocks=(Block(width=8, depth=2, expand=2, bn=("split", "shared") * 3),),
                        head=Head(embedding=16))
    layers = expand_layers(arch)
    fused = fuse(layers, LITERT)
    # every source layer is inside exactly one kernel
    assert sorted(n for f in fused for n in f.layers) == sorted(layer.name for layer in layers)
    ops = [(f.kernel.op, f.kernel.act) for f in fused]
    assert ops == [("CONV_2D", "RELU"),                                                    # stem+bn+relu
                   ("CONV_2D", "RELU"), ("DEPTHWISE_CONV_2D", "RELU"), ("CONV_2D", "NONE"), ("ADD", "NONE"),
                   ("CONV_2D", "RELU"), ("DEPTHWISE_CONV_2D", "RELU"), ("CONV_2D", "NONE"), ("ADD", "NONE"),
                   ("MEAN", "NONE"), ("FULLY_CONNECTED", "NONE")]
    assert fused[0].layers == ("stem", "stem.bn", "stem.relu")
    # the residual ADD reads the project conv and the unit's input kernel
    assert fused[4].inputs == ("block0.unit0.project", "stem")
    assert sum(f.kernel.macs for f in fused if f.kernel.op != "ADD" and f.kernel.op != "MEAN") == count_macs(arch)


def test_tflite_graph_has_exactly_the_fused_kernels(tmp_path):
    """What LiteRT would run (read back from the built file) equals the fusion rules' kernels."""
    for seed in (0, 1):
        arch = sample(load_space("tiny"), random.Random(seed))
        path = to_tflite(arch, tmp_path / f"a{seed}.tflite", seed=seed)
        assert [f.kernel for f in read_kernels(path)] == [f.kernel for f in architecture_kernels(arch, LITERT)]


def test_tflite_runs_in_litert(tmp_path):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    arch = sample(load_space("tiny"), random.Random(5))
    interp = Interpreter(model_path=str(to_tflite(arch, tmp_path / "a.tflite")), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert tuple(inp["shape"]) == (1, 32, 16, 3) and inp["dtype"] == np.int8
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.int8))
    interp.invoke()
    assert interp.get_tensor(out["index"]).shape[-1] == arch.head.embedding


@pytest.mark.parametrize("precision, ops", [("int4", {"CONV_2D"}), ("binary", {"CUSTOM:LceQuantize", "CUSTOM:LceBconv2d"})])
def test_int4_and_binary_blocks_are_written_and_read_back_as_their_kernels(tmp_path, precision, ops):
    from edgereid.tflite.reader import read_graph

    arch = Architecture(input_shape=(16, 8, 3), stem=Stem(width=8),
                        blocks=(Block(width=8, expand=2, precision=precision, bn=("shared",) * 3),),
                        head=Head(embedding=16))
    kernels = [f.kernel for f in architecture_kernels(arch, LITERT)]
    # low-bit weights on the block's full convs only: the stem, depthwise and head stay int8
    assert {k.precision for k in kernels if k.op == "CONV_2D"} == {Precision.INT8, Precision(precision)}
    assert all(k.precision is Precision.INT8 for k in kernels if k.op != "CONV_2D")
    assert all(k.key().split("/")[-2] == k.precision.value for k in kernels)
    path = to_tflite(arch, tmp_path / "b.tflite")
    graph = read_graph(path)
    assert ops <= {op.kind for op in graph.ops}
    # the file reads back as exactly these kernels (an LceQuantize + LceBconv2d pair is one binary CONV_2D)
    assert [f.kernel for f in read_kernels(path)] == kernels


def test_binary_architecture_runs_in_lce_interpreter(tmp_path):
    import numpy as np

    from edgereid.tflite import LceRunner, lce_available

    if not lce_available():
        pytest.skip("Larq Compute Engine's interpreter is not installed (tools/setup.sh installs it)")
    arch = sample(load_space("mcu-mixed").with_precisions(["binary"]), random.Random(3))
    arch = dataclasses.replace(arch, input_shape=(32, 16, 3))
    with LceRunner(to_tflite(arch, tmp_path / "b.tflite")) as runner:
        x = np.random.default_rng(0).integers(-128, 128, runner.inputs[0].shape).astype(np.int8)
        (y,) = runner.run([x])
    assert y.dtype == np.int8 and y.shape[-1] == arch.head.embedding and len(np.unique(y)) > 4


def test_mixed_space_adds_int4_and_binary_twins_of_the_block_convs():
    mixed = {k.key(): k for k in space_kernels(load_space("mcu-mixed"), LITERT)}
    int8 = {k.key() for k in space_kernels(load_space("mcu"), LITERT)}
    assert int8 <= set(mixed)
    extra = [k for key, k in mixed.items() if key not in int8]
    assert {k.precision for k in extra} == {Precision.INT4, Precision.BINARY}
    assert all(k.op == "CONV_2D" and k.kernel_h == 1 for k in extra)


def test_space_kernels_cover_every_sampled_architecture():
    space = load_space("mcu")
    keys = {k.key() for k in space_kernels(space, LITERT)}
    for seed in range(50):
        for f in architecture_kernels(sample(space, random.Random(seed)), LITERT):
            assert f.kernel.key() in keys
