#!/usr/bin/env python3
"""Write a corpus of small int8 .tflite models covering every op and option the
firmware supports, plus a few small networks. Same seed, same bytes.

    python tools/gen_tflite_corpus.py --out DIR [--seed 0] [--list]

Each model is DIR/<name>.tflite; DIR/corpus.json lists name -> spec.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgereid.atomic import write_bytes, write_text  # noqa: E402
from edgereid.tflite.builder import build_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_coverage import coverage_builders  # noqa: E402

COVERAGE_SEED_BASE = 1000   # the coverage models' seeds: base seed + this + their index


def _x(shape, zp=-5, scale=0.04, name="x", dtype="int8"):
    return {"name": name, "shape": shape, "scale": scale, "zero_point": zp, "dtype": dtype}


def corpus_specs() -> dict[str, dict]:
    specs: dict[str, dict] = {}

    def add(name, inputs, ops, **extra):
        specs[name] = {"name": name, "inputs": inputs, "ops": ops, **extra}

    img = [1, 9, 8, 5]  # odd channel count on purpose
    for k in (1, 3, 5):
        for stride in (1, 2):
            for padding in ("SAME", "VALID"):
                for act in ("NONE", "RELU", "RELU6"):
                    add(f"conv_{k}x{k}_s{stride}_{padding.lower()}_{act.lower()}", [_x(img, zp=7)],
                        [{"op": "CONV_2D", "filters": 6, "kernel": k, "stride": stride, "padding": padding,
                          "activation": act}])
    add("conv_3x3_dilation2", [_x(img)], [{"op": "CONV_2D", "filters": 4, "kernel": 3, "dilation": 2}])
    add("conv_3x1_s2x1", [_x(img)], [{"op": "CONV_2D", "filters": 3, "kernel": [3, 1], "stride": [2, 1]}])
    for mult in (1, 2, 3):
        for k in (3, 5):
            for stride in (1, 2):
                add(f"dwconv_{k}x{k}_m{mult}_s{stride}", [_x(img, zp=-20)],
                    [{"op": "DEPTHWISE_CONV_2D", "depth_multiplier": mult, "kernel": k, "stride": stride,
                      "padding": "SAME", "activation": "RELU6"}])
    add("dwconv_3x3_dilation2_valid", [_x(img)],
        [{"op": "DEPTHWISE_CONV_2D", "kernel": 3, "dilation": 2, "padding": "VALID"}])
    for act in ("NONE", "RELU"):
        add(f"fc_{act.lower()}", [_x([2, 37], zp=11)], [{"op": "FULLY_CONNECTED", "units": 9, "activation": act}])
    add("fc_per_channel", [_x([1, 64])], [{"op": "FULLY_CONNECTED", "units": 16, "per_channel": True}])
    add("add_same_shape_relu", [_x(img, name="a"), _x(img, zp=3, scale=0.07, name="b")],
        [{"op": "ADD", "inputs": ["a", "b"], "activation": "RELU"}])
    add("add_broadcast_channel", [_x(img, name="a"), _x([1, 1, 1, 5], zp=-9, scale=0.02, name="b")],
        [{"op": "ADD", "inputs": ["a", "b"]}])
    add("mul_same_shape", [_x(img, name="a"), _x(img, zp=3, scale=0.07, name="b")],
        [{"op": "MUL", "inputs": ["a", "b"]}])
    add("mul_broadcast_channel", [_x(img, name="a"), _x([1, 1, 1, 5], zp=-9, scale=0.02, name="b")],
        [{"op": "MUL", "inputs": ["a", "b"], "activation": "RELU6"}])
    for op in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        for padding in ("SAME", "VALID"):
            add(f"{op.lower()}_3x3_s2_{padding.lower()}", [_x(img)],
                [{"op": op, "kernel": 3, "stride": 2, "padding": padding}])
        add(f"{op.lower()}_2x2_relu", [_x(img)], [{"op": op, "kernel": 2, "stride": 2, "activation": "RELU"}])
    for keep in (True, False):
        add(f"mean_hw_keep{int(keep)}", [_x(img)], [{"op": "MEAN", "axis": [1, 2], "keep_dims": keep}])
    add("mean_channels", [_x(img)], [{"op": "MEAN", "axis": [3], "keep_dims": True}])
    add("mean_hw_same_quant", [_x(img)], [{"op": "MEAN", "axis": [1, 2], "same_quant": True}])
    add("pad_hw", [_x(img, zp=12)], [{"op": "PAD", "paddings": [[0, 0], [1, 2], [2, 1], [0, 0]]}])
    add("padv2_channels", [_x(img)], [{"op": "PAD", "paddings": [[0, 0], [0, 0], [0, 0], [1, 2]], "constant": -77}])
    for axis in (1, 2, 3, -1):
        shapes = [[1, 4, 5, 3], [1, 4, 5, 3]]
        shapes[1][axis] = 2
        add(f"concat_axis{axis}".replace("-", "m"),
            [_x(shapes[0], name="a"), _x(shapes[1], name="b")],
            [{"op": "CONCATENATION", "inputs": ["a", "b"], "axis": axis}])
    for beta in (1.0, 0.25):
        add(f"softmax_beta{beta}".replace(".", "p"), [_x([2, 21], scale=0.1)], [{"op": "SOFTMAX", "beta": beta}])
    for align, half in ((False, False), (True, False), (False, True)):
        add(f"resize_nearest_ac{int(align)}_hp{int(half)}", [_x([1, 3, 4, 5])],
            [{"op": "RESIZE_NEAREST_NEIGHBOR", "size": [7, 9], "align_corners": align,
              "half_pixel_centers": half}])
    add("resize_nearest_upsample2x", [_x([1, 4, 4, 3])], [{"op": "RESIZE_NEAREST_NEIGHBOR", "size": [8, 8]}])
    add("l2_normalization", [_x([3, 32], zp=-3)], [{"op": "L2_NORMALIZATION"}])
    add("reshape_flatten", [_x(img)], [{"op": "RESHAPE", "shape": [1, -1]}])
    add("quantize_dequantize_edges", [_x(img, dtype="float32")],
        [{"op": "CONV_2D", "filters": 4, "kernel": 3}], float_output=True)

    # small multi-op networks
    add("net_conv_bn_relu_stack", [_x([1, 16, 8, 3], dtype="float32", scale=0.02, zp=0)],
        [{"op": "CONV_2D", "filters": 8, "kernel": 3, "stride": 2, "activation": "RELU"},
         {"op": "CONV_2D", "filters": 8, "kernel": 3, "activation": "RELU6"},
         {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "activation": "RELU6"},
         {"op": "CONV_2D", "filters": 12, "kernel": 1, "activation": "RELU"},
         {"op": "MAX_POOL_2D", "kernel": 2, "stride": 2}], float_output=True)
    add("net_residual_block", [_x([1, 8, 8, 8], zp=-2)],
        [{"op": "CONV_2D", "filters": 8, "kernel": 3, "activation": "RELU", "name": "c1", "inputs": ["x"]},
         {"op": "CONV_2D", "filters": 8, "kernel": 3, "name": "c2"},
         {"op": "ADD", "inputs": ["x", "c2"], "activation": "RELU", "name": "sum"}])
    add("net_reid_head", [_x([1, 4, 2, 24], zp=-30)],
        [{"op": "MEAN", "axis": [1, 2], "keep_dims": False},
         {"op": "FULLY_CONNECTED", "units": 16},
         {"op": "L2_NORMALIZATION"}], float_output=True)
    add("net_fr_gal_fusion", [_x([1, 8, 4, 6], name="low"), _x([1, 4, 2, 6], name="high", zp=3)],
        [{"op": "CONV_2D", "filters": 6, "kernel": 1, "inputs": ["high"], "name": "proj"},
         {"op": "RESIZE_NEAREST_NEIGHBOR", "size": [8, 4], "name": "up"},
         {"op": "CONCATENATION", "inputs": ["low", "low"], "axis": 3, "name": "cat"},
         {"op": "CONV_2D", "filters": 6, "kernel": 1, "name": "mix"},
         {"op": "ADD", "inputs": ["mix", "up"], "name": "fused"}])
    return specs


# ---- int4 filters: every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED option again with INT4 weights ----

INT4_PREFIXES = {"conv_": "conv4_", "dwconv_": "dwconv4_", "fc_": "fc4_"}
INT4_WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def int4_filters(tflite: bytes) -> bytes:
    """The same model with every conv / depthwise / FC filter stored as INT4 (two per byte, element 2i in
    the low nibble): values w -> clip(round(w / 16), -7, 7), weight scales x 16, so the accumulator
    keeps its range; the int32 bias is divided by 16 (rounded) and its scale (input scale x weight
    scale) multiplied by 16. DEPTHWISE_CONV_2D stays at op version <= 6 (BUILTIN_REF's limit)."""
    import dataclasses

    import numpy as np

    from edgereid.tflite.ir import pack_int4
    from edgereid.tflite.reader import parse_graph
    from edgereid.tflite.writer import write_graph

    g = parse_graph(tflite)
    tensors = list(g.tensors)
    for op in g.ops:
        if op.kind not in INT4_WEIGHT_OPS:
            continue
        w = tensors[op.inputs[1]]
        if w.dtype != "int8":
            continue
        q = np.clip(np.round(w.array().astype(np.float64) / 16.0), -7, 7).astype(np.int8)
        scales = tuple(float(np.float32(s) * np.float32(16.0)) for s in w.scales)
        tensors[w.index] = dataclasses.replace(w, dtype="int4", scales=scales, data=pack_int4(q.reshape(-1)))
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = tensors[op.inputs[2]]
            bias = np.round(b.array().astype(np.float64) / 16.0).astype(np.int32)
            b_scales = tuple(float(np.float32(s) * np.float32(16.0)) for s in b.scales)
            tensors[b.index] = dataclasses.replace(b, scales=b_scales, data=bias.tobytes())
    g.tensors = tensors
    return write_graph(g)


def int4_corpus_names() -> dict[str, str]:
    """int4 model name -> the int8 corpus model it is derived from (every conv / depthwise / FC option)."""
    names = {}
    for name in corpus_specs():
        for prefix, prefix4 in INT4_PREFIXES.items():
            if name.startswith(prefix):
                names[prefix4 + name[len(prefix):]] = name
    return names


def int4_even_specs() -> dict[str, dict]:
    """int8 specs of int4 models with even channel counts (every filter row starts on a byte): the
    shapes on which the int4 convolutions take their im2col path and the 3x3 depthwise its DSP path
    (the corpus image has 5 channels on purpose, which exercises the mid-byte rows instead)."""
    img = [1, 9, 8, 8]
    specs = {}
    for k, stride, padding in ((1, 1, "VALID"), (1, 2, "VALID"), (3, 1, "SAME"), (3, 2, "VALID"), (5, 1, "SAME")):
        specs[f"conv4_even_{k}x{k}_s{stride}_{padding.lower()}"] = {
            "inputs": [_x(img, zp=3)], "ops": [{"op": "CONV_2D", "filters": 10, "kernel": k, "stride": stride,
                                                "padding": padding, "activation": "RELU"}]}
    specs["conv4_even_3x3_dilation2"] = {"inputs": [_x(img)], "ops": [{"op": "CONV_2D", "filters": 6, "kernel": 3,
                                                                       "dilation": 2, "padding": "SAME"}]}
    specs["dwconv4_even_3x3_m1_s1"] = {"inputs": [_x(img, zp=-20)], "ops": [
        {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "padding": "SAME", "activation": "RELU6"}]}
    specs["fc4_even_per_channel"] = {"inputs": [_x([2, 64], zp=9)], "ops": [
        {"op": "FULLY_CONNECTED", "units": 12, "per_channel": True, "activation": "RELU"}]}
    specs["net4_even_block"] = {"inputs": [_x([1, 8, 8, 8], zp=-2)], "ops": [
        {"op": "CONV_2D", "filters": 16, "kernel": 1, "activation": "RELU6"},
        {"op": "DEPTHWISE_CONV_2D", "kernel": 3, "activation": "RELU6"},
        {"op": "CONV_2D", "filters": 8, "kernel": 3, "stride": 2},
        {"op": "MEAN", "axis": [1, 2], "keep_dims": False},
        {"op": "FULLY_CONNECTED", "units": 10}]}
    return {name: {"name": name, **spec} for name, spec in specs.items()}


def write_corpus(out: Path, seed: int = 0) -> dict[str, Path]:
    """Write every corpus model (model i gets seed + i) and corpus.json into `out`."""
    index, paths = {}, {}
    for i, (name, spec) in enumerate(corpus_specs().items()):
        spec = dict(spec, seed=seed + i)
        paths[name] = write_bytes(Path(out) / f"{name}.tflite", build_model(spec))
        index[name] = spec
    for name4, name in int4_corpus_names().items():  # int4-filter twins of the conv / depthwise / FC models
        paths[name4] = write_bytes(Path(out) / f"{name4}.tflite", int4_filters(paths[name].read_bytes()))
        index[name4] = {"name": name4, "int4_filters_of": name}
    for i, (name4, spec) in enumerate(int4_even_specs().items()):
        spec = dict(spec, seed=seed + 1000 + i)
        paths[name4] = write_bytes(Path(out) / f"{name4}.tflite", int4_filters(build_model(spec)))
        index[name4] = {**spec, "int4_filters": True}
    for i, (name, build) in enumerate(coverage_builders().items()):  # tools/corpus_coverage.py (ModelBuilder)
        paths[name] = write_bytes(Path(out) / f"{name}.tflite", build(seed + COVERAGE_SEED_BASE + i))
        index[name] = {"name": name, "builder": "tools/corpus_coverage.py", "seed": seed + COVERAGE_SEED_BASE + i}
    write_text(Path(out) / "corpus.json", json.dumps(index, indent=1, sort_keys=True) + "\n")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=False, help="output folder")
    ap.add_argument("--seed", type=int, default=0, help="base seed (each model adds its index)")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args(argv)
    specs = corpus_specs()
    if args.list:
        print("\n".join([*specs, *int4_corpus_names(), *coverage_builders()]))
        return 0
    if args.out is None:
        ap.error("--out is required")
    paths = write_corpus(args.out, args.seed)
    print(f"wrote {len(paths)} models to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
