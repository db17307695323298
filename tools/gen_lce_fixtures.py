#!/usr/bin/env python3
"""Build small Larq/Keras binary models, convert them with Larq Compute Engine's own
converter, run them through LCE's interpreter and write the results as test fixtures.

    .venv/bin/python tools/gen_lce_fixtures.py [--out tests/fixtures/lce] [--venv DIR]
                                               [--only NAME ...] [--list] [--check]

Two Pythons take part. The models are built and converted in a side venv (DIR, default
~/.cache/edgereid/lce-venv; created with `python3.11 -m venv` and the pinned versions
of DESIGN.md when missing): TensorFlow, tf-keras, larq, larq-compute-engine. It is never
a runtime or CI dependency. This script re-runs itself there (`--convert-into`) and gets
the .tflite files back; everything else runs in edgereid's own environment: the reader
(edgereid.tflite.read_graph) checks each graph holds the ops the fixture is meant to
have, and LCE's interpreter with the reference bconv kernel (edgereid.tflite.LceRunner)
gives the outputs; in a graph that also holds builtin ops, op by op, the builtin ones
on LiteRT's BUILTIN_REF (see reference_outputs: LCE runs them with optimized kernels).

Per fixture NAME, in --out:
  NAME.tflite          the converted model (one input, one output)
  NAME.edge_input.npy  one input of edge values (float: +-0, NaN, +-inf among normals;
                       int8: values around the zero point and the ends of the range)
  NAME.outputs.npy     the reference's outputs, stacked on a new axis 0, for the input
                       sets `seeded_inputs(graph inputs, SEEDED_SETS, SEED)` (not stored:
                       the manifest holds their sha256) then the edge input; absent when
                       the reference refuses the model (the manifest holds its message)
and manifest.json: per fixture its description, the options it covers, its ops (Lce*
options as stored), graph input/output dtype/shape/quantization, sha256 of each file;
plus a coverage table (option -> fixtures). Weights come from numpy generators seeded per
fixture, int8 ranges from a calibration pass on seeded data: the same run writes the same
bytes (--check verifies that against what is in --out).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "lce"
DEFAULT_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgereid" / "lce-venv"
SIDE_PACKAGES = ("tensorflow==2.16.1", "tf-keras==2.16.0", "keras==3.3.3", "larq==0.13.3",
                 "larq-compute-engine==0.16.0", "flatbuffers==24.3.25", "protobuf==4.25.3", "numpy==1.26.4")
SEED = 0            # seeded_inputs seed of every fixture
SEEDED_SETS = 4     # seeded input sets per fixture (then one set of edge values)
CALIBRATION_SAMPLES = 16

# ---- the fixtures ------------------------------------------------------------------------
# `build(L)` runs in the side venv only: L holds the layer helpers (see _Layers) and
# returns the Keras output of L.x. `ops`: the op kinds the converted graph must hold, in
# order ("CUSTOM:" left off the Lce ones). `covers`: the options the fixture exercises,
# in the vocabulary of tests/test_lce_fixtures.py, which derives them from the graph again.


@dataclass(frozen=True)
class Fixture:
    name: str
    description: str
    input_shape: tuple[int, ...]      # without the batch dimension (1)
    ops: tuple[str, ...]
    covers: tuple[str, ...]
    build: object
    int8_input: tuple[float, float] | None = None    # fake-quant range of the input: an int8 model
    refused: bool = False             # LCE's reference kernel refuses it: a bad-input fixture
    patch: dict | None = None         # {op index: {option: value}} set in the converted file (see write_fixture)
    seed: int = 0                     # weights seed (set from the fixture's position)


def _mixed_net(L):
    y = L.fq()(L.conv(8, 3)(L.x))
    y = L.bn()(L.qconv(40, 3, padding="same", pad_values=1.0)(y))
    y = L.maxpool(2, 2, "valid")(y)
    y = L.fq()(L.bn()(L.qconv(24, 3, padding="same", pad_values=1.0)(y)))
    y = L.fq()(L.K.layers.GlobalAveragePooling2D()(y))
    return L.fq()(L.dense(10)(y))


def _mixed_residual(L):
    y = L.fq()(L.bn()(L.qconv(32, 3, padding="same", pad_values=1.0)(L.x)))
    y = L.fq()(L.K.layers.Add()([L.x, y]))
    return L.fq()(L.bn()(L.qconv(40, 3)(y)))


def _q(*more):
    return ("LceQuantize:input=float32",) + more


def _qi(*more):
    return ("LceQuantize:input=int8",) + more


F = [
    Fixture("bconv_valid_c3", "float in, 3x3 VALID binary conv 3 -> 17 channels, BN folded into the float output "
            "transform", (7, 9, 3), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=VALID", "LceBconv2d:stride=1",
               "LceBconv2d:channels_in%32!=0", "LceBconv2d:channels_out%32!=0", "LceBconv2d:kernel=3x3",
               "LceBconv2d:fused_activation=NONE"),
            lambda L: L.bn()(L.qconv(17, 3)(L.x))),
    Fixture("bconv_same1_s2_c17", "SAME with pad_values=1, stride 2, 17 -> 40 channels, odd input size",
            (8, 7, 17), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=SAME,pad_values=1", "LceBconv2d:stride=2",
               "LceBconv2d:channels_in%32!=0", "LceBconv2d:kernel=3x3"),
            lambda L: L.bn()(L.qconv(40, 3, strides=2, padding="same", pad_values=1.0)(L.x))),
    Fixture("bconv_same0_s2_c40", "SAME with pad_values=0 (even channels_in), stride 2, 40 -> 64 channels",
            (7, 8, 40), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=SAME,pad_values=0", "LceBconv2d:stride=2",
               "LceBconv2d:channels_in%32!=0", "LceBconv2d:kernel=3x3"),
            lambda L: L.bn()(L.qconv(64, 3, strides=2, padding="same", pad_values=0.0)(L.x))),
    Fixture("bconv_same0_dil2_c64", "SAME with pad_values=0, dilation 2, 64 (two full words) -> 33 channels",
            (6, 7, 64), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=SAME,pad_values=0", "LceBconv2d:dilation=2",
               "LceBconv2d:channels_in%32==0", "LceBconv2d:kernel=3x3"),
            lambda L: L.bn()(L.qconv(33, 3, padding="same", pad_values=0.0, dilation_rate=2)(L.x))),
    Fixture("bconv_same1_dil2_c70", "SAME with pad_values=1, dilation 2, 70 channels (3 words, 6 bits in the last)",
            (7, 7, 70), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=SAME,pad_values=1", "LceBconv2d:dilation=2",
               "LceBconv2d:channels_in%32!=0"),
            lambda L: L.bn()(L.qconv(16, 3, padding="same", pad_values=1.0, dilation_rate=2)(L.x))),
    Fixture("bconv_valid_k3x2_dil1x2_c17", "non-square 3x2 kernel, dilation 1x2, VALID", (9, 9, 17),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:padding=VALID", "LceBconv2d:dilation=asymmetric",
               "LceBconv2d:kernel=non-square"),
            lambda L: L.bn()(L.qconv(8, (3, 2), dilation_rate=(1, 2))(L.x))),
    Fixture("bconv_1x1_c64", "1x1 binary conv, 64 -> 33 channels", (4, 5, 64), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:kernel=1x1", "LceBconv2d:channels_in%32==0",
               "LceBconv2d:padding=VALID"),
            lambda L: L.bn()(L.qconv(33, 1)(L.x))),
    Fixture("bconv_1x1_s2_c40", "1x1 binary conv, stride 2, 40 -> 20 channels", (5, 6, 40),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:kernel=1x1", "LceBconv2d:stride=2"),
            lambda L: L.bn()(L.qconv(20, 1, strides=2)(L.x))),
    Fixture("bconv_k1x3_s2x1_c1", "one input channel, 1x3 kernel, stride 2x1, no BN (multiplier 1, bias 0)",
            (9, 8, 1), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:stride=asymmetric", "LceBconv2d:kernel=non-square",
               "LceBconv2d:channels_in%32!=0"),
            lambda L: L.qconv(5, (1, 3), strides=(2, 1))(L.x)),
    Fixture("bconv_relu_same1_c17", "ReLU fused into the binary conv (no BN between)", (6, 7, 17),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:fused_activation=RELU",
               "LceBconv2d:padding=SAME,pad_values=1"),
            lambda L: L.K.layers.ReLU()(L.qconv(24, 3, padding="same", pad_values=1.0)(L.x))),
    Fixture("bconv_relu6_valid_c40", "ReLU6 fused into the binary conv", (6, 6, 40), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:fused_activation=RELU6", "LceBconv2d:padding=VALID"),
            lambda L: L.K.layers.ReLU(6.0)(L.qconv(16, 3)(L.x))),
    Fixture("bconv_relun1_same1_s2_c40", "clip to [-1, 1] fused (RELU_N1_TO_1), SAME pad_values=1, stride 2",
            (7, 6, 40), ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:fused_activation=RELU_N1_TO_1",
               "LceBconv2d:padding=SAME,pad_values=1", "LceBconv2d:stride=2"),
            lambda L: L.clip(-1.0, 1.0)(L.qconv(16, 3, strides=2, padding="same", pad_values=1.0)(L.x))),
    Fixture("patched_relu_same0_c40", "SAME pad_values=0 with a fused ReLU: the converter never fuses an "
            "activation into a pad_values=0 conv (it writes a separate float RELU), so the converted no-BN conv "
            "gets fused_activation_function=RELU patched in (edgereid.tflite writer)", (6, 5, 40),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:output=float32", "LceBconv2d:fused_activation=RELU", "LceBconv2d:padding=SAME,pad_values=0",
               "LceBconv2d:fused_activation+SAME,pad_values=0"),
            lambda L: L.qconv(24, 3, padding="same", pad_values=0.0)(L.x), patch={1: {"fused_activation_function": 1}}),
    Fixture("bitpacked_c3_c70", "two binary convs in a row: the first writes bitpacked output (70 channels, "
            "thresholds; BN with negative scales flips filters), the second reads it", (8, 8, 3),
            ("LceQuantize", "LceBconv2d", "LceBconv2d"),
            _q("LceBconv2d:output=bitpacked", "LceBconv2d:output=float32",
               "LceBconv2d:output=bitpacked,channels_out%32!=0",
               "LceBconv2d:padding=SAME,pad_values=1", "LceBconv2d:padding=VALID"),
            lambda L: L.bn()(L.qconv(17, 3)(L.bn()(L.qconv(70, 3, padding="same", pad_values=1.0)(L.x))))),
    Fixture("bitpacked_s2_c40_c32", "bitpacked output of exactly one word (32 channels) after a stride-2 VALID "
            "conv, then a 1x1 conv", (7, 8, 40), ("LceQuantize", "LceBconv2d", "LceBconv2d"),
            _q("LceBconv2d:output=bitpacked", "LceBconv2d:stride=2", "LceBconv2d:kernel=1x1",
               "LceBconv2d:channels_in%32==0"),
            lambda L: L.bn()(L.qconv(17, 1)(L.bn()(L.qconv(32, 3, strides=2)(L.x))))),
    Fixture("bmaxpool_2x2_valid", "binary max pool 2x2 VALID between two binary convs", (8, 8, 8),
            ("LceQuantize", "LceBconv2d", "LceBMaxPool2d", "LceBconv2d"),
            _q("LceBMaxPool2d:padding=VALID", "LceBconv2d:output=bitpacked"),
            lambda L: L.bn()(L.qconv(16, 3)(L.maxpool(2, 2, "valid")(
                L.bn()(L.qconv(32, 3, padding="same", pad_values=1.0)(L.x)))))),
    Fixture("bmaxpool_3x3_s2_same_c70", "binary max pool 3x3 stride 2 SAME (windows clipped at the edges) on 70 "
            "channels (3 words)", (9, 9, 8), ("LceQuantize", "LceBconv2d", "LceBMaxPool2d", "LceBconv2d"),
            _q("LceBMaxPool2d:padding=SAME", "LceBconv2d:output=bitpacked",
               "LceBconv2d:output=bitpacked,channels_out%32!=0",
               "LceBconv2d:channels_in%32!=0"),
            lambda L: L.bn()(L.qconv(16, 3)(L.maxpool(3, 2, "same")(
                L.bn()(L.qconv(70, 3, padding="same", pad_values=1.0)(L.x)))))),
    Fixture("groups2_same1_c64", "grouped binary conv: 2 groups of 32 input channels, 34 outputs", (6, 6, 64),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:groups=2", "LceBconv2d:output=float32", "LceBconv2d:padding=SAME,pad_values=1"),
            lambda L: L.bn()(L.qconv(34, 3, padding="same", pad_values=1.0, groups=2)(L.x))),
    Fixture("groups_bitpacked_c64", "grouped binary conv with bitpacked output (2 groups, 128 channels), then a "
            "1x1 conv with 4 groups", (6, 6, 64), ("LceQuantize", "LceBconv2d", "LceBconv2d"),
            _q("LceBconv2d:groups=2", "LceBconv2d:groups=4", "LceBconv2d:output=bitpacked",
               "LceBconv2d:kernel=1x1"),
            lambda L: L.bn()(L.qconv(20, 1, groups=4)(L.bn()(
                L.qconv(128, 3, padding="same", pad_values=1.0, groups=2)(L.x))))),
    Fixture("groups4_same0_c128", "grouped binary conv, 4 groups, SAME with pad_values=0", (4, 5, 128),
            ("LceQuantize", "LceBconv2d"),
            _q("LceBconv2d:groups=4", "LceBconv2d:padding=SAME,pad_values=0"),
            lambda L: L.bn()(L.qconv(24, 3, padding="same", pad_values=0.0, groups=4)(L.x))),
    Fixture("dequantize_float_c40", "a sign as the model output: bitpacked conv output -> LceDequantize to float",
            (6, 6, 8), ("LceQuantize", "LceBconv2d", "LceDequantize"),
            _q("LceDequantize:output=float32", "LceBconv2d:output=bitpacked",
               "LceBconv2d:output=bitpacked,channels_out%32!=0"),
            lambda L: L.sign()(L.bn()(L.qconv(40, 3)(L.x)))),
    Fixture("i8_bconv_same1_c17", "int8 in (zero point -43) -> LceQuantize from int8 -> binary conv with int8 "
            "output (fake-quant ranges in the graph)", (6, 7, 17), ("LceQuantize", "LceBconv2d"),
            _qi("LceBconv2d:output=int8", "LceBconv2d:padding=SAME,pad_values=1", "LceBconv2d:channels_in%32!=0"),
            lambda L: L.fq()(L.bn()(L.qconv(40, 3, padding="same", pad_values=1.0)(L.x))), int8_input=(-2.0, 4.0)),
    Fixture("i8_bconv_same0_s2_c40", "int8 output, SAME pad_values=0, stride 2", (7, 7, 40),
            ("LceQuantize", "LceBconv2d"),
            _qi("LceBconv2d:output=int8", "LceBconv2d:padding=SAME,pad_values=0", "LceBconv2d:stride=2"),
            lambda L: L.fq()(L.bn()(L.qconv(24, 3, strides=2, padding="same", pad_values=0.0)(L.x))),
            int8_input=(-3.0, 1.5)),
    Fixture("i8_bconv_relu_valid_c40", "int8 output with a fused ReLU (no BN), VALID", (6, 6, 40),
            ("LceQuantize", "LceBconv2d"),
            _qi("LceBconv2d:output=int8", "LceBconv2d:fused_activation=RELU", "LceBconv2d:padding=VALID"),
            lambda L: L.fq()(L.K.layers.ReLU()(L.qconv(24, 3)(L.x))), int8_input=(-1.0, 3.0)),
    Fixture("patched_i8_relu6_same0_c64", "int8 output, SAME pad_values=0, RELU6 patched in (see "
            "patched_relu_same0_c40)", (5, 5, 64), ("LceQuantize", "LceBconv2d"),
            _qi("LceBconv2d:output=int8", "LceBconv2d:fused_activation=RELU6", "LceBconv2d:padding=SAME,pad_values=0",
                "LceBconv2d:fused_activation+SAME,pad_values=0"),
            lambda L: L.fq()(L.qconv(16, 3, padding="same", pad_values=0.0)(L.x)), int8_input=(-2.0, 2.0),
            patch={1: {"fused_activation_function": 3}}),
    Fixture("i8_dequantize_c17_c70", "int8 in -> bitpacked conv output (70 channels) -> LceDequantize to int8 "
            "(asymmetric range: -1 saturates)", (5, 6, 17), ("LceQuantize", "LceBconv2d", "LceDequantize"),
            _qi("LceDequantize:output=int8", "LceBconv2d:output=bitpacked",
                "LceBconv2d:output=bitpacked,channels_out%32!=0"),
            lambda L: L.fq(-0.5, 2.0)(L.sign()(L.bn()(L.qconv(70, 3, padding="same", pad_values=1.0)(L.x)))),
            int8_input=(-2.0, 4.0)),
    Fixture("i8_bconv_maxpool", "int8 binary conv output into an int8 MAX_POOL_2D", (6, 6, 8),
            ("LceQuantize", "LceBconv2d", "MAX_POOL_2D"),
            _qi("LceBconv2d:output=int8", "int8:MAX_POOL_2D"),
            lambda L: L.maxpool(2, 2, "valid")(L.fq()(L.bn()(L.qconv(16, 3, padding="same", pad_values=1.0)(L.x)))),
            int8_input=(-2.0, 2.0)),
    Fixture("mixed_int8_net", "int8 CONV_2D stem -> LceQuantize -> bitpacked conv -> binary max pool -> int8 "
            "binary conv -> MEAN -> int8 FULLY_CONNECTED", (8, 8, 3),
            ("CONV_2D", "LceQuantize", "LceBconv2d", "LceBMaxPool2d", "LceBconv2d", "MEAN", "FULLY_CONNECTED"),
            _qi("int8:CONV_2D", "int8:MEAN", "int8:FULLY_CONNECTED", "LceBconv2d:output=bitpacked",
                "LceBconv2d:output=int8", "LceBMaxPool2d:padding=VALID"),
            _mixed_net,
            int8_input=(-3.0, 3.0)),
    Fixture("mixed_int8_residual", "int8 binary conv added to its int8 input (ADD), the sum binarized again by "
            "LceQuantize from int8", (6, 6, 32),
            ("LceQuantize", "LceBconv2d", "ADD", "LceQuantize", "LceBconv2d"),
            _qi("int8:ADD", "LceBconv2d:output=int8", "LceBconv2d:channels_in%32==0"),
            _mixed_residual,
            int8_input=(-2.0, 2.0)),
    Fixture("refused_same0_odd_c3", "SAME with pad_values=0 and an odd channels_in (3): the converter writes it, "
            "LCE's reference kernel refuses it (bad-input fixture: no outputs)", (6, 6, 3),
            ("LceQuantize", "LceBconv2d"),
            _q("refused:LceBconv2d:padding=SAME,pad_values=0,channels_in odd"),
            lambda L: L.bn()(L.qconv(16, 3, padding="same", pad_values=0.0)(L.x)), refused=True),
]
FIXTURES = {f.name: dataclasses.replace(f, seed=1000 + i) for i, f in enumerate(F)}
del F


# ---- side venv: build and convert -----------------------------------------------------------

class _Layers:
    """The Keras layers the fixtures are made of, for one model build.

    `fq()` is a fake-quant of the range found by the calibration pass (the first pass
    records the tensor instead); `fq(lo, hi)` a fixed range."""

    def __init__(self, tf, lq, shape, ranges):
        self.tf, self.lq, self.K = tf, lq, tf.keras
        self.x = self.K.Input(shape, batch_size=1, name="x")
        self.ranges, self.probes = ranges, []

    def qconv(self, filters, kernel, strides=1, padding="valid", pad_values=0.0, dilation_rate=1, groups=1):
        return self.lq.layers.QuantConv2D(filters, kernel, strides=strides, padding=padding, pad_values=pad_values,
                                          dilation_rate=dilation_rate, groups=groups, input_quantizer="ste_sign",
                                          kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                                          use_bias=False)

    def bn(self):
        return self.K.layers.BatchNormalization()

    def sign(self):
        return self.lq.quantizers.SteSign()

    def maxpool(self, size, stride, padding):
        return self.K.layers.MaxPool2D(size, stride, padding=padding)

    def clip(self, lo, hi):
        tf = self.tf
        return self.K.layers.Lambda(lambda t: tf.clip_by_value(t, lo, hi))

    def fq(self, lo=None, hi=None):
        tf, K = self.tf, self.K

        def fake_quant(lo, hi):
            return K.layers.Lambda(lambda t: tf.quantization.fake_quant_with_min_max_args(t, min=lo, max=hi,
                                                                                           num_bits=8))
        if lo is not None:
            return fake_quant(lo, hi)

        def apply(t):   # indexed when applied: fq()(fq()(t)) builds the inner one first
            index = len(self.probes)
            self.probes.append(t)
            return t if self.ranges is None else fake_quant(*self.ranges[index])(t)
        return apply

    def conv(self, filters, kernel):
        return _fq_layers(self.tf)[0](filters, kernel)

    def dense(self, units):
        return _fq_layers(self.tf)[1](units)


_FQ_LAYERS = []


def _fq_layers(tf):
    """An int8 conv / dense for the converter: float weights through per-channel fake quant."""
    if _FQ_LAYERS:
        return _FQ_LAYERS
    K = tf.keras

    def fake_quant_weights(kernel, axes):
        """Per output channel (conv: axes [0, 1, 2]) or per tensor (dense: the converter refuses a
        per-channel MatMul weight, 'tfl.transpose op has mismatched quantized axes')."""
        limit = tf.reduce_max(tf.abs(kernel), axis=axes)
        if axes is None:
            return tf.quantization.fake_quant_with_min_max_vars(kernel, -limit, limit, num_bits=8, narrow_range=True)
        return tf.quantization.fake_quant_with_min_max_vars_per_channel(kernel, -limit, limit, num_bits=8,
                                                                        narrow_range=True)

    class FakeQuantConv(K.layers.Layer):
        def __init__(self, filters, kernel, **kw):
            super().__init__(**kw)
            self.filters, self.size = filters, kernel

        def build(self, shape):
            self.kernel = self.add_weight(name="kernel", shape=(self.size, self.size, shape[-1], self.filters))
            self.bias = self.add_weight(name="bias", shape=(self.filters,))

        def call(self, x):
            return tf.nn.bias_add(tf.nn.conv2d(x, fake_quant_weights(self.kernel, [0, 1, 2]), 1, "SAME"), self.bias)

    class FakeQuantDense(K.layers.Layer):
        def __init__(self, units, **kw):
            super().__init__(**kw)
            self.units = units

        def build(self, shape):
            self.kernel = self.add_weight(name="kernel", shape=(shape[-1], self.units))
            self.bias = self.add_weight(name="bias", shape=(self.units,))

        def call(self, x):
            return tf.nn.bias_add(tf.matmul(x, fake_quant_weights(self.kernel, None)), self.bias)

    _FQ_LAYERS.extend([FakeQuantConv, FakeQuantDense])
    return _FQ_LAYERS


def _set_weights(model, seed, np):
    """Every weight from numpy's generator seeded with `seed`, in layer order. BN statistics
    are drawn on the scale of the binary conv before it (sums in [-K, K]); about a third of
    the BN scales are negative (the converter then flips those filters for bitpacked output)."""
    rng = np.random.default_rng(seed)
    fan_in = 1
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "QuantConv2D":
            kernel = layer.kernel.shape.as_list()
            fan_in = kernel[0] * kernel[1] * kernel[2]
            layer.set_weights([rng.standard_normal(kernel).astype(np.float32)])
        elif kind == "BatchNormalization":
            n = layer.gamma.shape[0]
            gamma = rng.uniform(0.5, 1.5, n) * np.where(rng.uniform(size=n) < 0.35, -1.0, 1.0)
            beta = rng.normal(0.0, 1.0, n)
            mean = rng.normal(0.0, 0.5 * np.sqrt(fan_in), n)
            var = rng.uniform(0.5, 2.0, n) * fan_in
            layer.set_weights([w.astype(np.float32) for w in (gamma, beta, mean, var)])
        elif kind in ("FakeQuantConv", "FakeQuantDense"):
            kernel, bias = (w.shape for w in layer.get_weights())
            fan = int(np.prod(kernel[:-1]))
            layer.set_weights([(rng.standard_normal(kernel) / np.sqrt(fan)).astype(np.float32),
                               rng.normal(0.0, 0.1, bias).astype(np.float32)])
        elif layer.get_weights():
            raise RuntimeError(f"no seeded weights for layer {layer.name} ({kind})")


def _convert_all(names, out_dir: Path) -> int:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings
    warnings.filterwarnings("ignore")
    import numpy as np
    import tensorflow as tf
    import larq as lq
    import larq_compute_engine as lce
    from importlib.metadata import version

    def build(fx, ranges):
        tf.keras.backend.clear_session()
        L = _Layers(tf, lq, fx.input_shape, ranges)
        x = L.x
        if fx.int8_input is not None:
            L.x = L.fq(*fx.int8_input)(x)
        model = tf.keras.Model(x, fx.build(L))
        _set_weights(model, fx.seed, np)
        return model, L

    out_dir.mkdir(parents=True, exist_ok=True)
    versions = {p: version(p) for p in ("tensorflow", "tf-keras", "keras", "larq", "larq-compute-engine",
                                        "flatbuffers", "protobuf", "numpy")}
    for name in names:
        fx = FIXTURES[name]
        model, L = build(fx, None)
        kwargs = {}
        if fx.int8_input is not None:
            ranges = []
            if L.probes:  # calibrate every fq(): the 0.5..99.5 percentiles of its input on seeded data
                rng = np.random.default_rng(fx.seed + 1)
                lo, hi = fx.int8_input
                data = rng.uniform(lo, hi, (CALIBRATION_SAMPLES, *fx.input_shape)).astype(np.float32)
                probe = tf.keras.Model(model.inputs, L.probes)
                values = probe.predict(data, batch_size=1, verbose=0)
                values = values if isinstance(values, list) else [values]
                for v in values:
                    lo_v, hi_v = np.percentile(v, [0.5, 99.5])
                    ranges.append((float(min(lo_v, 0.0)), float(max(hi_v, 1e-3))))
            model, L = build(fx, ranges)
            kwargs = {"inference_input_type": tf.int8, "inference_output_type": tf.int8}
        data = lce.convert_keras_model(model, **kwargs)
        (out_dir / f"{name}.tflite").write_bytes(data)
        print(f"[convert] {name}: {len(data)} bytes", file=sys.stderr)
    (out_dir / "versions.json").write_text(json.dumps(versions, indent=1, sort_keys=True))
    return 0


# ---- this environment: venv, reference runs, files ------------------------------------------

def ensure_venv(venv: Path) -> Path:
    """The side venv's python, creating the venv with the pinned packages when missing."""
    python = venv / "bin" / "python"
    pins = dict(p.split("==") for p in SIDE_PACKAGES)
    probe = ("import sys; from importlib.metadata import version\n"
             f"sys.exit(any(version(p) != v for p, v in {pins!r}.items()))")
    if python.is_file():
        if subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0:
            return python
        print(f"[venv] {venv} lacks some of {' '.join(SIDE_PACKAGES)}: installing", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *SIDE_PACKAGES], check=True)
        return python
    base = shutil.which("python3.11")
    if base is None:
        raise SystemExit("python3.11 is needed to create the side venv (TensorFlow 2.16 wheels)")
    print(f"[venv] creating {venv} with {' '.join(SIDE_PACKAGES)}", file=sys.stderr)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *SIDE_PACKAGES], check=True)
    return python


def convert(python: Path, names, out_dir: Path) -> dict:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), str(Path(__file__).resolve()), "--convert-into", str(out_dir), *names],
                   check=True, env=env)
    return json.loads((out_dir / "versions.json").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edge_inputs(spec, seed):
    """One input set of edge values: float: normals with +0, -0, NaN, +inf, -inf spread in;
    int8: the values around the zero point and the two ends of the range, cycled."""
    import numpy as np
    shape, dtype = tuple(spec.shape), np.dtype(spec.dtype)
    n = int(np.prod(shape))
    if dtype == np.float32:
        x = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
        x[0::7] = 0.0
        x[3::11] = -0.0
        x[5::97], x[6::89], x[2::83] = np.nan, np.inf, -np.inf
        return x.reshape(shape)
    zp = spec.zero_points[0] if spec.zero_points else 0
    cycle = np.array([zp - 1, zp, zp + 1, -128, 127, zp - 2, zp + 2], dtype=np.int64)
    return np.clip(np.resize(cycle, n), -128, 127).astype(dtype).reshape(shape)


def _tensor_entry(t) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "scales": list(t.scales),
            "zero_points": list(t.zero_points)}


def reference_outputs(model: Path, xs):
    """The reference outputs of `model` for each input in `xs` (edgereid.tflite.reference_runner:
    Lce* ops on LCE's interpreter with the reference bconv, builtin ops of a mixed graph on
    LiteRT BUILTIN_REF)."""
    from edgereid.tflite import reference_runner

    with reference_runner(model) as runner:
        return [runner.run([x])[0] for x in xs]


def write_fixture(fx: Fixture, tflite: Path, out: Path) -> dict:
    """Check the converted graph, run the reference, write the files; the manifest entry."""
    import numpy as np
    from edgereid.errors import TFLiteError
    from edgereid.tflite import read_graph, seeded_inputs, write_graph

    graph = read_graph(tflite)
    if fx.patch:   # an option combination the converter never writes: set it in the converted graph
        for index, options in fx.patch.items():
            op = graph.ops[index]
            if not op.is_custom or not set(options) <= set(op.options):
                raise SystemExit(f"{fx.name}: op {index} ({op.kind}) has no options {sorted(options)} to patch")
            graph.ops[index] = dataclasses.replace(op, options={**op.options, **options})
        tflite = tflite.with_name(f"{fx.name}.patched.tflite")
        tflite.write_bytes(write_graph(graph))
        graph = read_graph(tflite)
    kinds = [op.kind.replace("CUSTOM:", "") for op in graph.ops]
    if tuple(kinds) != fx.ops:
        raise SystemExit(f"{fx.name}: the converter wrote ops {kinds}; expected {list(fx.ops)}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SystemExit(f"{fx.name}: {len(graph.inputs)} inputs, {len(graph.outputs)} outputs; expected 1 and 1")
    x_spec, y_spec = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    want_in = "int8" if fx.int8_input is not None else "float32"
    if x_spec.dtype != want_in:
        raise SystemExit(f"{fx.name}: graph input is {x_spec.dtype}; expected {want_in}")
    seeded = np.stack([s[0] for s in seeded_inputs([x_spec], SEEDED_SETS, SEED)])
    xs = np.concatenate([seeded, edge_inputs(x_spec, fx.seed)[None]])
    shutil.copyfile(tflite, out / f"{fx.name}.tflite")
    np.save(out / f"{fx.name}.edge_input.npy", xs[-1])
    entry = {"name": fx.name, "description": fx.description, "covers": sorted(fx.covers),
             "files": {"tflite": f"{fx.name}.tflite", "edge_input": f"{fx.name}.edge_input.npy"},
             "ops": [{"kind": op.kind, **({"options": op.options} if op.is_custom else {})} for op in graph.ops],
             "input": _tensor_entry(x_spec), "output": _tensor_entry(y_spec),
             "input_sets": {"seeded_inputs": {"count": SEEDED_SETS, "seed": SEED,
                                              "sha256": hashlib.sha256(seeded.tobytes()).hexdigest()},
                            "then": "edge_input"},
             "weights_seed": fx.seed}
    oracle = "per-op" if any(not op.is_custom for op in graph.ops) else "lce"
    entry["oracle"] = oracle
    try:
        ys = np.stack(reference_outputs(tflite, list(xs)))
        if fx.refused:
            raise SystemExit(f"{fx.name}: expected LCE's reference kernel to refuse it, it ran")
        np.save(out / f"{fx.name}.outputs.npy", ys)
        entry["files"]["outputs"] = f"{fx.name}.outputs.npy"
        entry["reference"] = "ok"
    except TFLiteError as exc:
        if not fx.refused:
            raise
        message = [line.strip().removeprefix("(ERROR: ") for line in str(exc).splitlines() if "bconv2d.cc" in line]
        entry["reference"] = {"refused": message[0] if message else str(exc).splitlines()[-1]}
        (out / f"{fx.name}.outputs.npy").unlink(missing_ok=True)
    entry["sha256"] = {role: _sha256(out / fname) for role, fname in entry["files"].items()}
    return entry


def generate(out: Path, venv: Path, names) -> dict:
    python = ensure_venv(venv)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    entries = {e["name"]: e for e in old.get("fixtures", []) if e["name"] in FIXTURES}
    with tempfile.TemporaryDirectory(prefix="lce-fixtures.") as tmp:
        versions = convert(python, names, Path(tmp))
        for name in names:
            entries[name] = write_fixture(FIXTURES[name], Path(tmp) / f"{name}.tflite", out)
            print(f"[fixture] {name}: {[op['kind'].replace('CUSTOM:', '') for op in entries[name]['ops']]}",
                  file=sys.stderr)
    fixtures = [entries[n] for n in FIXTURES if n in entries]
    coverage: dict[str, list[str]] = {}
    for e in fixtures:
        for c in e["covers"]:
            coverage.setdefault(c, []).append(e["name"])
    manifest = {
        "generator": "tools/gen_lce_fixtures.py",
        "converter": "larq_compute_engine.convert_keras_model (TF_USE_LEGACY_KERAS=1)",
        "reference": {"lce": "the whole graph on Larq Compute Engine's interpreter, reference bconv kernel "
                             "(edgereid.tflite.LceRunner)",
                      "per-op": "op by op: Lce* ops on LCE's interpreter (reference bconv), builtin ops on LiteRT "
                                "BUILTIN_REF (LCE's interpreter runs builtin ops with optimized kernels)"},
        "versions": versions,
        "fixtures": fixtures,
        "coverage": dict(sorted(coverage.items())),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="side venv (created when missing)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="regenerate these fixtures only")
    ap.add_argument("--list", action="store_true", help="list the fixtures and exit")
    ap.add_argument("--check", action="store_true",
                    help="regenerate into a temporary folder and compare every file with --out")
    ap.add_argument("--convert-into", type=Path, help=argparse.SUPPRESS)   # the side venv's half
    ap.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.convert_into:
        return _convert_all(args.names, args.convert_into)
    if args.list:
        for fx in FIXTURES.values():
            print(f"{fx.name:<30} {fx.description}")
        return 0
    names = args.only or list(FIXTURES)
    unknown = sorted(set(names) - set(FIXTURES))
    if unknown:
        raise SystemExit(f"unknown fixture(s) {', '.join(unknown)}; --list names them")
    sys.path.insert(0, str(ROOT))
    if args.check:
        with tempfile.TemporaryDirectory(prefix="lce-fixtures-check.") as tmp:
            fresh = generate(Path(tmp), args.venv, names)
            differ = [f"{n}{s}" for n in names for s in (".tflite", ".edge_input.npy", ".outputs.npy")
                      if (Path(tmp) / f"{n}{s}").is_file() != (args.out / f"{n}{s}").is_file()
                      or ((Path(tmp) / f"{n}{s}").is_file()
                          and _sha256(Path(tmp) / f"{n}{s}") != _sha256(args.out / f"{n}{s}"))]
        committed = json.loads((args.out / "manifest.json").read_text()) if (args.out / "manifest.json").is_file() \
            else {"fixtures": []}
        committed = {e["name"]: e for e in committed["fixtures"]}
        differ += [f"manifest entry {e['name']}" for e in fresh["fixtures"] if committed.get(e["name"]) != e]
        if differ:
            print("differ from " + str(args.out) + ": " + ", ".join(differ))
            return 1
        print(f"{len(names)} fixture(s) regenerate byte for byte")
        return 0
    manifest = generate(args.out, args.venv, names)
    total = sum((args.out / f).stat().st_size for e in manifest["fixtures"] for f in e["files"].values())
    print(f"{len(manifest['fixtures'])} fixtures in {args.out} ({total:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
