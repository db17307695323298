"""One firmware image for several variants of one graph (edgereid.firmware.variants): a split-BN
model exported per modality runs each variant bit-exact from one image (host build under ASan +
UBSan; QEMU mps2-an386 as a target test), equal constants are stored once, a graph that differs
is refused naming the first op or tensor, and the export asks for the modality of a split model."""
import dataclasses
import shutil
import subprocess

import numpy as np
import pytest
import torch

from edgereid.errors import ExportError, FirmwareError, HilError
from edgereid.tflite import parse_graph
from edgereid.tflite.builder import build_model
from edgereid.tflite.writer import write_graph

_MISSING_HOST = [t for t in ("gcc", "make") if shutil.which(t) is None]
_MISSING_ARM = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc", "make") if shutil.which(t) is None]
SIZE = (32, 16)


def _tiny_split_model():
    """A search-space architecture with every BN split, each modality's BNs drawn apart (random
    init would make the two BNs equal and the test say nothing): scales in [0.5, 1.5)."""
    from edgereid.models.searched import build_from_architecture
    from edgereid.models.switchable import switchable_bns
    from edgereid.search_space.architecture import Architecture, Block, Head, Stem

    torch.manual_seed(0)
    arch = Architecture(input_shape=(*SIZE, 3), stem=Stem(8, 3, 2, "split"),
                        blocks=(Block(16, 1, 3, 2, 2, bn=("split",) * 3), Block(16, 1, 3, 1, 1, bn=("split",) * 2)),
                        head=Head(16, "split"))
    model = build_from_architecture(arch, 10).eval()
    g = torch.Generator().manual_seed(1)
    for bn in switchable_bns(model):
        for norm in bn.norms():
            c = norm.num_features
            norm.weight.data = torch.rand(c, generator=g) + 0.5
            norm.bias.data = torch.randn(c, generator=g) * 0.1
            norm.running_mean = torch.randn(c, generator=g) * 0.1
            norm.running_var = torch.rand(c, generator=g) + 0.5
    return model


@pytest.fixture(scope="module")
def split_exports(tmp_path_factory):
    """The tiny split-BN model as int8 .tflite per modality, each calibrated on its own images."""
    from edgereid.compress import quantize
    from edgereid.export import export_tflite, read_export_metadata, select_modality

    out = tmp_path_factory.mktemp("split")
    model = _tiny_split_model()
    paths = {}
    for seed, m in enumerate(("visible", "infrared")):
        calib = [torch.randn(8, 3, *SIZE, generator=torch.Generator().manual_seed(10 + seed))]
        q = quantize(select_modality(model, m), calib)
        paths[m] = export_tflite(q, out / f"{m}.tflite", input_size=SIZE, int8=True, model_name="tiny", modality=m)
        assert read_export_metadata(paths[m])["modality"] == m
    return paths


def test_export_of_a_split_model_needs_its_modality(tmp_path):
    from edgereid.export import export_tflite, select_modality
    from edgereid.models.switchable import switchable_bns

    model = _tiny_split_model()
    with pytest.raises(ExportError, match=r"has 7 split \(per-modality\) BN layers: export one modality at a time"):
        export_tflite(model, tmp_path / "f.tflite", input_size=SIZE)
    with pytest.raises(ExportError, match="modality 'thermal': expected 'visible' or 'infrared'"):
        select_modality(model, "thermal")
    assert not (tmp_path / "f.tflite").exists()
    plain = select_modality(model, "infrared")
    assert not switchable_bns(plain) and switchable_bns(model)   # a copy; the model keeps its switches
    x = torch.randn(2, 3, *SIZE)
    from edgereid.models import modality

    with torch.no_grad(), modality(model, "infrared"):
        assert torch.equal(plain(x), model(x))


def test_export_cli_takes_the_modality_of_a_split_checkpoint(tmp_path, capsys):
    from click.testing import CliRunner

    from edgereid.cli import cli, main
    from edgereid.engine.checkpoint import save_checkpoint
    from edgereid.export import read_export_metadata

    model = _tiny_split_model()
    ckpt = save_checkpoint(tmp_path / "split.pt", model_name="arch",
                           model_args={"num_classes": 10, "architecture": model.architecture.to_dict()},
                           state_dict=model.state_dict(), preprocess={"size": list(SIZE)})
    out = str(tmp_path / "x.tflite")
    for argv, message in (([], "error: arch has 7 split (per-modality) BN layers: export one modality at a time"),
                          (["--int8", "--dataset", "synthetic", "--modality", "infrared"],
                           "error: --modality infrared: dataset synthetic has no infrared training images"),
                          (["--modality", "infrared", "--align-to", str(ckpt)],
                           "error: --align-to applies to --format tflite --int8")):
        with pytest.raises(SystemExit) as exc:
            main(["export", str(ckpt), *argv, "--out", out])
        # a clean checkout first synthesizes the dataset (a progress bar); the error is one line after it
        lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        assert exc.value.code == 2 and errors == [lines[-1]] and lines[-1].startswith(message), lines[-3:]
    assert not (tmp_path / "x.tflite").exists()
    res = CliRunner().invoke(cli, ["export", str(ckpt), "--modality", "infrared", "--out", str(tmp_path / "f.tflite")])
    assert res.exit_code == 0, res.output
    assert read_export_metadata(tmp_path / "f.tflite")["modality"] == "infrared"


# ---- the variant image from small builder models (no torch) ------------------------------------

def _spec(out_scale: float, out_zp: int, seed: int = 7) -> dict:
    x = {"name": "x", "shape": [1, 6, 5, 3], "scale": 0.05, "zero_point": -3}
    return {"name": "v", "seed": seed, "inputs": [x], "ops": [
        {"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "activation": "RELU"},
        {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "output": {"scale": out_scale, "zero_point": out_zp}},
        {"op": "MEAN", "axis": [1, 2], "keep_dims": False},
        {"op": "FULLY_CONNECTED", "units": 6, "per_channel": True}]}


def _write(tmp_path, name: str, data: bytes):
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    return path


def test_equal_constants_are_stored_once_and_the_rest_per_variant(tmp_path):
    from edgereid.firmware.frontend import read_tflite
    from edgereid.firmware.variants import lower_variants

    a = _write(tmp_path, "a", build_model(_spec(0.04, 2)))
    b = _write(tmp_path, "b", build_model(_spec(0.06, -4)))   # same weights, other requantisation
    lv = lower_variants([read_tflite(a), read_tflite(b)], ["a", "b"])
    decls = "\n".join(d for layer in lv.per_layer for d in layer)
    # op 1's output scale differs: its multipliers/shifts (and the params with the zero point) are per
    # variant, its filter and bias and every other layer's constants are stored once.
    assert "op1_filter[" in decls and "op1_filter_v" not in decls and "op0_filter_v" not in decls
    assert "op1_mult_v0[" in decls and "op1_mult_v1[" in decls
    assert lv.sharing.weights_shared_bytes == lv.sharing.weights_variant_bytes[0] > 0
    assert 0 < lv.sharing.per_variant_bytes < lv.sharing.variant_bytes[0]
    # The call is written once and picks the per-variant constants from tables.
    assert lv.selected_calls[1] is not None and lv.selected_calls[0] is None

    other = _write(tmp_path, "c", build_model(_spec(0.04, 2, seed=8)))   # other weights: nothing in common
    lv2 = lower_variants([read_tflite(a), read_tflite(other)], ["a", "c"])
    assert lv2.sharing.weights_shared_bytes == 0


def _dw_unit_variant(data: bytes, w_scale: float, conv_scale_factor: float) -> bytes:
    """`data` with every filter scale of its 1x1 depthwise (op 0) `w_scale` (1.0 makes the rescale
    exactly 1.0, which lowers to ereid_depthwise_conv_1x1_unit_s8; else the wrapper runs) and the
    filter scales of its conv (op 1) times `conv_scale_factor` (other requantisation constants)."""
    g = parse_graph(data)
    w = g.tensors[g.ops[0].inputs[1]]
    g.tensors[w.index] = dataclasses.replace(w, scales=(w_scale,) * len(w.scales))
    w = g.tensors[g.ops[1].inputs[1]]
    g.tensors[w.index] = dataclasses.replace(w, scales=tuple(s * conv_scale_factor for s in w.scales))
    return write_graph(g)


DW_SPEC = {"name": "dw", "seed": 3, "inputs": [{"name": "x", "shape": [1, 4, 3, 5], "scale": 0.5, "zero_point": -3}],
           "ops": [{"op": "DEPTHWISE_CONV_2D", "kernel": [1, 1], "output": {"scale": 0.5, "zero_point": 2}},
                   {"op": "CONV_2D", "filters": 4, "kernel": [1, 1]}]}


@pytest.mark.skipif(bool(_MISSING_HOST), reason=f"{', '.join(_MISSING_HOST)} not installed")
def test_builder_variants_bit_exact_on_host_under_sanitizers_table_and_switch_paths(tmp_path):
    """Per-variant constants by table (op 1's requantisation) and by switch (op 0's kernel differs:
    the unit 1x1 depthwise in one variant only), each variant against its own reference, through
    the default app (`firmware VARIANT in out`) and the HIL app."""
    from edgereid.firmware.bitexact import random_inputs, reference_outputs
    from edgereid.firmware.variants import build_variant_firmware
    from edgereid.hil.variants import run_hil_variants

    base = build_model(DW_SPEC)
    models = {"unit": _dw_unit_variant(base, 1.0, 1.0), "wrapper": _dw_unit_variant(base, 0.75, 1.5)}
    paths = [(name, _write(tmp_path, name, data)) for name, data in models.items()]
    built = build_variant_firmware(paths, "host", tmp_path / "fw", sanitize=True)
    assert built.switches == 1 and built.tables >= 1
    model_c = (tmp_path / "fw" / "model.c").read_text()
    assert "ereid_depthwise_conv_1x1_unit_s8(" in model_c and "switch (ereid_model_variant)" in model_c
    for k, (name, data) in enumerate(models.items()):
        xs = random_inputs(data, 3, seed=1)
        wants = reference_outputs(data, xs)
        for x, want in zip(xs, wants):
            # the app takes a name or an index
            exe = [str(built.executable), name if k == 0 else str(k)]
            got = run_firmware_variant(exe, x, want, tmp_path)
            assert np.array_equal(got, want)
    results = run_hil_variants(paths, "host", n=3, seed=2, sanitize=True)
    assert [r.passed for r in results] == [True, True], "\n".join(r.format() for r in results)
    assert results[0].output_bytes > 0


def run_firmware_variant(cmd, x, like, workdir):
    src, dst = workdir / "input.bin", workdir / "output.bin"
    src.write_bytes(np.ascontiguousarray(x).tobytes())
    proc = subprocess.run([*cmd, str(src), str(dst)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return np.frombuffer(dst.read_bytes(), dtype=like.dtype).reshape(like.shape)


def test_a_graph_that_differs_is_refused_naming_the_first_op_or_tensor(tmp_path):
    from edgereid.firmware.variants import build_variant_firmware

    a = _write(tmp_path, "a", build_model(_spec(0.04, 2)))
    wider = _spec(0.04, 2)
    wider["ops"][0]["filters"] = 6
    b = _write(tmp_path, "b", build_model(wider))
    with pytest.raises(FirmwareError, match=r"variant b \(.*b\.tflite\): op 0 \(CONV_2D\) uses tensor 1 "
                                            r"'t0_w': shape \[6, 3, 3, 3\] where the first variant has \[8, 3, 3, 3\]"):
        build_variant_firmware([("a", a), ("b", b)], "host", tmp_path / "fw")
    strided = _spec(0.04, 2)
    strided["ops"][1]["stride"] = [2, 2]
    c = _write(tmp_path, "c", build_model(strided))
    with pytest.raises(FirmwareError, match=r"op 1 \(DEPTHWISE_CONV_2D\) option stride_h is 2, variant a has 1"):
        build_variant_firmware([("a", a), ("c", c)], "host", tmp_path / "fw")
    short = _spec(0.04, 2)
    short["ops"].pop()
    d = _write(tmp_path, "d", build_model(short))
    with pytest.raises(FirmwareError, match="has 3 ops, variant a has 4"):
        build_variant_firmware([("a", a), ("d", d)], "host", tmp_path / "fw")
    assert not (tmp_path / "fw").exists()   # nothing half-written


@pytest.mark.skipif(bool(_MISSING_HOST), reason=f"{', '.join(_MISSING_HOST)} not installed")
def test_cli_builds_and_checks_a_variant_image(tmp_path):
    from click.testing import CliRunner

    from edgereid.cli import cli

    a = _write(tmp_path, "a", build_model(_spec(0.04, 2)))
    b = _write(tmp_path, "b", build_model(_spec(0.06, -4)))
    res = CliRunner().invoke(cli, ["build-firmware", "--variant", f"near={a}", "--variant", f"far={b}", "--board",
                                   "host", "--out", str(tmp_path / "fw"), "--report"])
    assert res.exit_code == 0, res.output
    assert "with 2 variants (near, far)" in res.output and "int8 weights: one variant" in res.output
    assert "#define EREID_MODEL_VARIANT_FAR 1" in (tmp_path / "fw" / "model.h").read_text()
    res = CliRunner().invoke(cli, ["hil", "--variant", f"near={a}", "--variant", f"far={b}", "--board", "host",
                                   "--n", "2"])
    assert res.exit_code == 0 and res.output.count("PASS: output equals") == 2, res.output
    for argv, message in ((["build-firmware", "--board", "host", "--out", str(tmp_path / "x")], "needs --model"),
                          (["build-firmware", "--model", str(a), "--variant", f"near={a}", "--variant", f"far={b}",
                            "--board", "host", "--out", str(tmp_path / "x")], "not both"),
                          (["hil", "--board", "host"], "hil needs --model")):
        res = CliRunner().invoke(cli, argv)
        assert res.exit_code == 2 and message in res.output, res.output


def test_align_rounding_ties_moves_only_ties_in_full_range_channels(tmp_path):
    from edgereid.export.shared_weights import align_rounding_ties

    g = parse_graph(build_model(_spec(0.04, 2)))
    w = g.tensors[g.ops[0].inputs[1]]            # CONV_2D filter [8, 3, 3, 3], axis 0
    q = np.frombuffer(w.data, np.int8).reshape(w.shape).astype(np.int32).copy()
    q[:, 0, 0, 0] = 127                          # every channel quantized at full range, as a fold gives
    g.tensors[w.index] = dataclasses.replace(w, data=q.astype(np.int8).tobytes())
    ref = write_graph(g)

    def bump(c: int, by: int):
        flat = q[c].reshape(-1)
        k = int(np.flatnonzero(np.abs(flat) < 100)[0])
        flat[k] += by

    bump(0, 1)       # a tie: aligned
    bump(1, 2)       # not a tie: left
    q[2] = q[2] // 2  # a widened channel (largest |q| < 127): left, whatever its differences
    bump(2, 1)
    g.tensors[w.index] = dataclasses.replace(w, data=q.astype(np.int8).tobytes())
    other = _write(tmp_path, "other", write_graph(g))
    data, ties = align_rounding_ties(ref, other, out=tmp_path / "aligned.tflite")
    assert (ties.values, ties.channels, ties.filters) == (1, 1, 0)
    got = np.frombuffer(parse_graph(data).tensors[w.index].data, np.int8).reshape(w.shape)
    want = np.frombuffer(parse_graph(ref).tensors[w.index].data, np.int8).reshape(w.shape)
    assert np.array_equal(got[0], want[0]) and not np.array_equal(got[1], want[1])
    assert np.array_equal(got[2], q[2]) and np.array_equal(got[3:], want[3:])
    assert (tmp_path / "aligned.tflite").read_bytes() == data
    with pytest.raises(ExportError, match="expected two exports of one graph"):
        align_rounding_ties(ref, build_model(DW_SPEC))


def test_variant_names_and_count_are_checked(tmp_path):
    from edgereid.firmware.variants import parse_variants

    a = _write(tmp_path, "a", build_model(_spec(0.04, 2)))
    with pytest.raises(FirmwareError, match="at least 2 variants, got 1"):
        parse_variants([("a", a)])
    with pytest.raises(FirmwareError, match="variant name '9x': expected a letter"):
        parse_variants([("9x", a), ("b", a)])
    with pytest.raises(FirmwareError, match="variant name 'A' is given twice"):
        parse_variants([("a", a), ("A", a)])
    with pytest.raises(FirmwareError, match="expected NAME=MODEL.tflite"):
        parse_variants([f"a={a}", str(a)])
    with pytest.raises(FirmwareError, match="variant b: model .*nope.tflite does not exist"):
        parse_variants([f"a={a}", f"b={tmp_path / 'nope.tflite'}"])


# ---- the split-BN model: host under sanitizers, QEMU --------------------------------------------

@pytest.mark.skipif(bool(_MISSING_HOST), reason=f"{', '.join(_MISSING_HOST)} not installed")
def test_split_bn_variants_bit_exact_on_host_under_sanitizers(tmp_path, split_exports):
    from edgereid.firmware.variants import build_variant_firmware
    from edgereid.hil.runner import Reference, run_image
    from edgereid.hil.variants import run_hil_variants

    variants = [("visible", split_exports["visible"]), ("infrared", split_exports["infrared"])]
    results = run_hil_variants(variants, "host", n=4, seed=3, sanitize=True, out_dir=tmp_path / "hil")
    assert [r.passed for r in results] == [True, True], "\n".join(r.format() for r in results)
    # Folding a per-modality BN scale (> 0 here) leaves the int8 weights as they were: all stored once.
    built = build_variant_firmware(variants, "host", tmp_path / "fw")
    sh = built.sharing
    assert sh.weights_shared_bytes == sh.weights_variant_bytes[0] == sh.weights_variant_bytes[1] > 0
    assert sh.per_variant_bytes > 0 and built.tables > 0
    # The switch matters: the infrared reference against the image left on variant 0 differs,
    # and a variant index out of range is refused.
    image = tmp_path / "hil" / "firmware"
    ref = Reference(split_exports["infrared"])
    wrong = run_image(image, "host", ref, ref.random_inputs(2, 3), variant=0)
    assert not wrong.passed
    with pytest.raises(HilError, match="the image has 2 variants, no variant 2"):
        run_image(image, "host", ref, ref.random_inputs(1, 3), variant=2)
    # A VARIANT request whose payload is not one u32 is refused by the device (bad length).
    from edgereid.hil import protocol as P
    from edgereid.hil.transports import HilClient, HostTransport

    with HostTransport(image) as transport:
        client = HilClient(transport, timeout=10.0, retries=0)
        client.hello()
        with pytest.raises(HilError, match="device reported bad length for VARIANT"):
            client.request(P.VARIANT, b"\x01\x00\x00")


@pytest.mark.skipif(bool(_MISSING_ARM), reason=f"{', '.join(_MISSING_ARM)} not installed")
def test_split_bn_variants_bit_exact_in_qemu(tmp_path, split_exports):
    from edgereid.hil.variants import run_hil_variants

    variants = [f"visible={split_exports['visible']}", f"infrared={split_exports['infrared']}"]
    results = run_hil_variants(variants, "mps2-an386", n=4, seed=3)
    assert [r.passed for r in results] == [True, True], "\n".join(r.format() for r in results)
    assert all(r.unit == "instructions" and r.counts for r in results)
