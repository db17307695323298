"""What edgereid knows about each op kind, in one place.

One `OpKind` per TFLite op name. Given a kernel configuration (anything with the
fields of `edgereid.ops.Kernel`) it answers: output shape, MACs, bytes read, weight
and bias bytes at a weight precision, the configuration of a search-space layer of
this kind (`fields`), the configuration of an op read from a .tflite graph (`read`:
the key fields), and the `edgereid.tflite.builder` spec that writes it as a
single-kernel micro-model (`builder_op`, `micro_input`).

Ops not registered here (a host model may hold any op) get the base `OpKind`: no
weights, one element operation per input element, no builder.
"""
from __future__ import annotations

from edgereid.errors import ModelError, TFLiteError
from edgereid.ops.precision import PRECISIONS, Precision

BIAS_BYTES = 4          # int32 bias per output channel (int8 and int4 weights)
BINARY_PARAM_BYTES = 8  # float32 post_activation_multiplier + post_activation_bias per output channel (LCE)
WORD_BITS = 32          # LCE bitpacks along the last axis into int32 words


def out_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """TFLite's output size along one axis (no dilation)."""
    if padding == "VALID":
        return (size - kernel) // stride + 1
    return -(-size // stride)


def hwc(shape) -> tuple[int, int, int]:
    """NHWC (or lower rank) shape as H, W, C, dropping the batch dimension."""
    dims = [int(d) for d in shape]
    if len(dims) == 4:
        return dims[1], dims[2], dims[3]
    if len(dims) == 3:
        return 1, dims[1], dims[2]
    if len(dims) == 2:
        return 1, 1, dims[1]
    n = 1
    for d in dims:
        n *= d
    return 1, 1, n


def _words(channels: int) -> int:
    return -(-channels // WORD_BITS)


def _padding_name(value, default: str) -> str:
    """Builtin options give "SAME"/"VALID"; LCE's FlexBuffer options give 0 (SAME) / 1 (VALID)."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return ("SAME", "VALID")[value] if value in (0, 1) else default
    return str(value)


_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")   # TFLite's enum order


def _activation_name(value) -> str:
    """Builtin options give the name; LCE's FlexBuffer options give the enum's integer."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(_ACTIVATIONS):
        return _ACTIVATIONS[value]
    return str(value)


def _option(options: dict, *names, default=1):
    """The first of `names` present in `options` (builtin and LCE options spell strides differently)."""
    for name in names:
        if name in options:
            return options[name]
    return default


class OpKind:
    """A weightless op over its (first) input: the base every op kind refines."""

    weighted = False       # has a weight tensor (the precision applies to it)
    operands = 1           # full-size input tensors it reads

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ---- shapes and costs ---------------------------------------------------
    def output_shape(self, k) -> tuple[int, int, int]:
        return (out_size(k.in_h, k.kernel_h, k.stride_h, k.padding),
                out_size(k.in_w, k.kernel_w, k.stride_w, k.padding), k.out_c)

    def macs(self, k) -> int:
        """Multiply-accumulates; element operations (one per input element) for weightless ops."""
        return k.in_h * k.in_w * k.in_c

    def input_bytes(self, k) -> int:
        return self.operands * k.in_h * k.in_w * k.in_c

    def weight_count(self, k) -> int:
        return 0

    def weight_bytes(self, k, precision=None) -> int:
        """Bytes of the weight tensor at `precision` (default: the kernel's own)."""
        return 0

    def bias_bytes(self, k, precision=None) -> int:
        """Bytes of the per-output-channel constants (bias, or LCE's multiplier and bias)."""
        return 0

    # ---- configurations -----------------------------------------------------
    def fields(self, in_shape, out_c: int, kernel: int = 1, stride: int = 1,
               precision: Precision = Precision.INT8) -> dict:
        """Kernel fields of a search-space layer of this kind reading an H x W x C tensor."""
        h, w, c = in_shape
        return dict(in_h=h, in_w=w, in_c=c, out_c=out_c, precision=precision)

    def read(self, op, graph) -> dict:
        """Kernel fields (the key fields) of `op` in `graph` (an edgereid.tflite.ir.Graph)."""
        ins = [graph.tensor(t) for t in op.inputs if t >= 0]
        outs = [graph.tensor(t) for t in op.outputs if t >= 0]
        if not ins or not outs:
            raise TFLiteError(f"{graph.source}: op {op.index} ({op.kind}) has no input or no output tensor")
        h, w, c = hwc(ins[0].shape)
        fields = dict(in_h=h, in_w=w, in_c=c, out_c=hwc(outs[0].shape)[2],
                      precision=self.precision_of(op, ins, outs, graph),
                      act=_activation_name(op.options.get("fused_activation_function", "NONE")))
        fields.update(self._geometry(op, ins, fields))
        return fields

    def _geometry(self, op, ins, fields) -> dict:
        return {}

    def precision_of(self, op, ins, outs, graph) -> Precision:
        """int8 when the op touches an int8 tensor; a float-only (or int16...) op has no table precision."""
        dtypes = sorted({t.dtype for t in ins + outs})
        if "int8" in dtypes:
            return Precision.INT8
        raise TFLiteError(f"{graph.source}: op {op.index} ({op.kind}) reads and writes {'/'.join(dtypes)} tensors "
                          f"only; latency tables describe {', '.join(PRECISIONS)} kernels")

    # ---- building -----------------------------------------------------------
    def micro_input(self, k) -> tuple[tuple[int, int, int], tuple[str, ...]]:
        """Input shape (H, W, C) of a micro-model running `k` alone, and the op's inputs in it."""
        return (k.in_h, k.in_w, k.in_c), ("input",) * self.operands

    # Weight precisions other than int8 the builder writes for this kind ("weights": <precision>).
    builder_precisions: tuple[Precision, ...] = ()

    def builder_op(self, k, name: str, inputs) -> dict:
        """The edgereid.tflite.builder op spec of `k`: int8, or another weight precision the builder
        writes for this kind (int4: INT4 filters; binary: an LCE binary conv; activations int8)."""
        if k.precision is not Precision.INT8 and k.precision not in self.builder_precisions:
            raise ModelError(f"{name}: {k.precision} kernels cannot be built as TFLite with the builder "
                             f"({k.key()})")
        op = {"name": name, "inputs": list(inputs), "op": self.name, **self._builder_options(k, name)}
        return op if k.precision is Precision.INT8 else {**op, "weights": k.precision.value}

    def _builder_options(self, k, name: str) -> dict:
        raise ModelError(f"{name}: no builder for kernel {k.key()}")


class WeightedOp(OpKind):
    """An op with a weight tensor [Cout, KH, KW, Cin / groups] (or its layout's equivalent)."""

    weighted = True
    builder_precisions = (Precision.INT4,)

    def macs(self, k) -> int:
        oh, ow, oc = self.output_shape(k)
        return oh * ow * oc * k.kernel_h * k.kernel_w * (k.in_c // k.groups)

    def weight_count(self, k) -> int:
        return k.kernel_h * k.kernel_w * (k.in_c // k.groups) * k.out_c

    def weight_bytes(self, k, precision=None) -> int:
        p = Precision.parse(k.precision if precision is None else precision)
        if p is Precision.INT8:
            return self.weight_count(k)
        if p is Precision.INT4:
            return -(-self.weight_count(k) // 2)         # two 4-bit weights per byte
        # LCE: filter int32 [Cout, KH, KW, ceil(Cin_g / 32)], bitpacked along the input channels
        return 4 * k.out_c * k.kernel_h * k.kernel_w * _words(k.in_c // k.groups)

    def bias_bytes(self, k, precision=None) -> int:
        p = Precision.parse(k.precision if precision is None else precision)
        return (BINARY_PARAM_BYTES if p is Precision.BINARY else BIAS_BYTES) * k.out_c

    def precision_of(self, op, ins, outs, graph) -> Precision:
        if len(ins) < 2:
            raise TFLiteError(f"{graph.source}: op {op.index} ({op.kind}) has no weight tensor")
        dtype = ins[1].dtype
        if dtype in ("int8", "int4"):
            return Precision(dtype)
        raise TFLiteError(f"{graph.source}: op {op.index} ({op.kind}) has {dtype} weights; latency tables "
                          f"describe {', '.join(PRECISIONS)} kernels")


class Conv2D(WeightedOp):
    # A binary CONV_2D is written as LceQuantize + LceBconv2d with int8 activations in and out.
    builder_precisions = (Precision.INT4, Precision.BINARY)

    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        return dict(super().fields(in_shape, out_c, kernel, stride, precision), kernel_h=kernel, kernel_w=kernel,
                    stride_h=stride, stride_w=stride, groups=1, padding="SAME")

    def _geometry(self, op, ins, fields) -> dict:
        f = [int(d) for d in ins[1].shape]       # OHWI
        return dict(kernel_h=f[1], kernel_w=f[2], stride_h=int(_option(op.options, "stride_h")),
                    stride_w=int(_option(op.options, "stride_w")),
                    padding=_padding_name(op.options.get("padding"), "SAME"),
                    groups=max(1, fields["in_c"] // max(1, f[3])))

    def _builder_options(self, k, name) -> dict:
        if k.groups != 1:
            raise ModelError(f"{name}: grouped CONV_2D (groups {k.groups}) has no TFLite builtin")
        return dict(kernel=[k.kernel_h, k.kernel_w], stride=[k.stride_h, k.stride_w], padding=k.padding,
                    activation=k.act, filters=k.out_c)


class DepthwiseConv2D(WeightedOp):
    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        c = in_shape[2]
        return dict(super().fields(in_shape, c, kernel, stride, precision), kernel_h=kernel, kernel_w=kernel,
                    stride_h=stride, stride_w=stride, groups=c, padding="SAME")

    def _geometry(self, op, ins, fields) -> dict:
        f = [int(d) for d in ins[1].shape]       # 1HWO
        return dict(kernel_h=f[1], kernel_w=f[2], stride_h=int(_option(op.options, "stride_h")),
                    stride_w=int(_option(op.options, "stride_w")),
                    padding=_padding_name(op.options.get("padding"), "SAME"), groups=fields["in_c"])

    def _builder_options(self, k, name) -> dict:
        if k.out_c != k.in_c or k.groups != k.in_c:
            raise ModelError(f"{name}: depthwise kernel {k.key()} is not one filter per input channel")
        return dict(kernel=[k.kernel_h, k.kernel_w], stride=[k.stride_h, k.stride_w], padding=k.padding,
                    activation=k.act)


class FullyConnected(WeightedOp):
    """Reads its input flattened: the configuration is 1 x 1 x (H*W*C)."""

    def output_shape(self, k) -> tuple[int, int, int]:
        return 1, 1, k.out_c

    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        h, w, c = in_shape
        return super().fields((1, 1, h * w * c), out_c, precision=precision)

    def _geometry(self, op, ins, fields) -> dict:
        return dict(in_h=1, in_w=1, in_c=int(ins[1].shape[-1]))

    def micro_input(self, k):
        return (1, 1, k.in_c), ("input",)

    def _builder_options(self, k, name) -> dict:
        return dict(units=k.out_c, activation=k.act)


class Add(OpKind):
    operands = 2

    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        return super().fields(in_shape, in_shape[2], precision=precision)

    def _builder_options(self, k, name) -> dict:
        return dict(activation=k.act)


class Mean(OpKind):
    """Global mean over H x W (keep_dims): the kernel window is the whole input."""

    def output_shape(self, k) -> tuple[int, int, int]:
        return 1, 1, k.out_c

    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        h, w, c = in_shape
        return dict(super().fields(in_shape, c, precision=precision), kernel_h=h, kernel_w=w, padding="VALID")

    def _geometry(self, op, ins, fields) -> dict:
        return dict(kernel_h=fields["in_h"], kernel_w=fields["in_w"], padding="VALID")

    def _builder_options(self, k, name) -> dict:
        return dict(axis=[1, 2], keep_dims=True)


class Pool2D(OpKind):
    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.INT8) -> dict:
        return dict(super().fields(in_shape, in_shape[2], precision=precision), kernel_h=kernel, kernel_w=kernel,
                    stride_h=stride, stride_w=stride, padding="VALID")

    def _geometry(self, op, ins, fields) -> dict:
        o = op.options
        return dict(kernel_h=int(_option(o, "filter_height")), kernel_w=int(_option(o, "filter_width")),
                    stride_h=int(_option(o, "stride_h", "stride_height")),
                    stride_w=int(_option(o, "stride_w", "stride_width")),
                    padding=_padding_name(o.get("padding"), "SAME"))

    def _builder_options(self, k, name) -> dict:
        return dict(kernel=[k.kernel_h, k.kernel_w], stride=[k.stride_h, k.stride_w], padding=k.padding,
                    activation=k.act)


class LceOp(OpKind):
    """A Larq Compute Engine custom op: binary by definition (bitpacked tensors)."""

    def precision_of(self, op, ins, outs, graph) -> Precision:
        return Precision.BINARY


class LceBconv2d(LceOp, WeightedOp):
    """Binary conv; filter int32 [Cout, KH, KW, ceil(Cin_g / 32)], input bitpacked int32 [1, H, W, ceil(Cin / 32)]."""

    def fields(self, in_shape, out_c, kernel=1, stride=1, precision=Precision.BINARY) -> dict:
        return dict(super().fields(in_shape, out_c, kernel, stride, Precision.BINARY), kernel_h=kernel,
                    kernel_w=kernel, stride_h=stride, stride_w=stride, groups=1, padding="SAME")

    def _geometry(self, op, ins, fields) -> dict:
        f = [int(d) for d in ins[1].shape]
        x = ins[0]
        in_c = op.options.get("channels_in")
        if in_c is None:   # without the options, the packed input says at most 32 channels per word
            in_c = fields["in_c"] * WORD_BITS if x.dtype == "int32" else fields["in_c"]
        in_c = int(in_c)
        return dict(in_c=in_c, kernel_h=f[1], kernel_w=f[2],
                    stride_h=int(_option(op.options, "stride_height", "stride_h")),
                    stride_w=int(_option(op.options, "stride_width", "stride_w")),
                    padding=_padding_name(op.options.get("padding"), "SAME"),
                    groups=max(1, _words(in_c) // max(1, f[3])))


class LceBMaxPool2d(LceOp, Pool2D):
    """Binary max pool: AND of the window's bitpacked words."""


def _registry() -> dict[str, OpKind]:
    kinds = [Conv2D("CONV_2D"), DepthwiseConv2D("DEPTHWISE_CONV_2D"), FullyConnected("FULLY_CONNECTED"),
             Add("ADD"), Mean("MEAN"), Pool2D("MAX_POOL_2D"), Pool2D("AVERAGE_POOL_2D"),
             LceBconv2d("CUSTOM:LceBconv2d"), LceBMaxPool2d("CUSTOM:LceBMaxPool2d"),
             LceOp("CUSTOM:LceQuantize"), LceOp("CUSTOM:LceDequantize")]
    kinds += [OpKind(name) for name in ("RESHAPE", "QUANTIZE", "DEQUANTIZE", "MUL", "CONCATENATION", "PAD")]
    # Coverage ops the firmware runs (issue 12 item 0): element-wise, one operation per input element.
    kinds += [OpKind(name) for name in ("TRANSPOSE", "PRELU", "RELU", "RELU6", "RELU_N1_TO_1")]
    return {k.name: k for k in kinds}


OPS: dict[str, OpKind] = _registry()


def op_kind(name: str) -> OpKind:
    """The registered kind `name`, or the base (weightless, no builder) for any other op."""
    kind = OPS.get(name)
    return kind if kind is not None else OpKind(name)
