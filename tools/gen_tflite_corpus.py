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


def write_corpus(out: Path, seed: int = 0) -> dict[str, Path]:
    """Write every corpus model (model i gets seed + i) and corpus.json into `out`."""
    index, paths = {}, {}
    for i, (name, spec) in enumerate(corpus_specs().items()):
        spec = dict(spec, seed=seed + i)
        paths[name] = write_bytes(Path(out) / f"{name}.tflite", build_model(spec))
        index[name] = spec
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
        print("\n".join(specs))
        return 0
    if args.out is None:
        ap.error("--out is required")
    write_corpus(args.out, args.seed)
    print(f"wrote {len(specs)} models to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
