"""The committed Larq Compute Engine fixtures (tests/fixtures/lce, written by
tools/gen_lce_fixtures.py with LCE's own converter): no TensorFlow needed here.

- every fixture reads (edgereid.tflite.read_graph) into the ops, options, I/O and LCE
  format invariants its manifest entry records, and its files are the ones hashed there;
- the options it claims to cover are derived again from its graph (not trusted), and
  together the fixtures cover every option of issue 10 item 1;
- the reference reproduces the committed outputs exactly: LCE's interpreter
  (edgereid.tflite.LceRunner, reference bconv) for graphs of Lce* ops; op by op, with
  LiteRT BUILTIN_REF for the builtin ops, for mixed graphs (Oracle says why); LCE's
  reference kernel refuses the bad-input fixture with the recorded message;
- the host firmware (ASan + UBSan) matches the committed outputs and the live reference
  on 64 random inputs per fixture bit for bit (float by bit pattern, -0.0 == +0.0). A
  fixture holding an op the firmware does not lower is an expected failure (strict,
  FirmwareError), which fails as soon as the lowering registers the op (drop the mark).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import EdgereidError, FirmwareError, TFLiteError
from edgereid.tflite import LceRunner, lce_available, read_graph, reference_runner, seeded_inputs
from edgereid.tflite.reference import SegmentedRunner

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lce"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
ENTRIES = {e["name"]: e for e in MANIFEST["fixtures"]}
RUNNABLE = [n for n, e in ENTRIES.items() if e["reference"] == "ok"]
REFUSED = [n for n, e in ENTRIES.items() if e["reference"] != "ok"]

needs_lce = pytest.mark.skipif(not lce_available(), reason="Larq Compute Engine runtime not installed (tools/setup.sh)")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc/make not installed")

# Issue 10, item 1: every option the firmware must lower, each covered by a fixture.
REQUIRED = {
    "LceQuantize:input=float32", "LceQuantize:input=int8",
    "LceBconv2d:output=float32", "LceBconv2d:output=int8", "LceBconv2d:output=bitpacked",
    "LceBconv2d:padding=VALID", "LceBconv2d:padding=SAME,pad_values=0", "LceBconv2d:padding=SAME,pad_values=1",
    "LceBconv2d:stride=2", "LceBconv2d:dilation=2", "LceBconv2d:groups=2",
    "LceBconv2d:fused_activation=RELU", "LceBconv2d:fused_activation=RELU6",
    "LceBconv2d:fused_activation=RELU_N1_TO_1",
    "LceBconv2d:channels_in%32!=0", "LceBconv2d:output=bitpacked,channels_out%32!=0",
    "LceDequantize:output=float32", "LceDequantize:output=int8",
    "LceBMaxPool2d:padding=VALID", "LceBMaxPool2d:padding=SAME",
}
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}


def _words(channels: int) -> int:
    return (channels + 31) // 32


def derived_features(graph, entry) -> set[str]:
    """The options a fixture exercises, read off its graph."""
    features = set()
    t = graph.tensors
    for op in graph.ops:
        if not op.is_custom:
            tensors = [t[i] for i in (*op.inputs, *op.outputs) if i >= 0 and not t[i].is_const]
            if all(x.dtype == "int8" for x in tensors):
                features.add(f"int8:{op.kind}")
            continue
        code, o = op.custom_code, op.options
        if code == "LceQuantize":
            features.add(f"LceQuantize:input={t[op.inputs[0]].dtype}")
        elif code == "LceDequantize":
            features.add(f"LceDequantize:output={t[op.outputs[0]].dtype}")
        elif code == "LceBMaxPool2d":
            features.add(f"LceBMaxPool2d:padding={'VALID' if o['padding'] == 1 else 'SAME'}")
        elif code == "LceBconv2d":
            out, filt = t[op.outputs[0]], t[op.inputs[1]]
            cout, kh, kw, fwords = filt.shape
            cin = o["channels_in"]
            groups = _words(cin) // fwords if fwords != _words(cin) else 1
            cin_g = cin // groups
            kind = {"int32": "bitpacked"}.get(out.dtype, out.dtype)
            features.add(f"LceBconv2d:output={kind}")
            if kind == "bitpacked" and cout % 32:
                features.add("LceBconv2d:output=bitpacked,channels_out%32!=0")
            same0 = o["padding"] == 0 and o["pad_values"] == 0
            features.add("LceBconv2d:padding=VALID" if o["padding"] == 1 else
                         f"LceBconv2d:padding=SAME,pad_values={o['pad_values']}")
            strides, dilations = (o["stride_height"], o["stride_width"]), (o["dilation_height_factor"],
                                                                           o["dilation_width_factor"])
            features.add(f"LceBconv2d:stride={max(strides)}")
            if strides[0] != strides[1]:
                features.add("LceBconv2d:stride=asymmetric")
            if max(dilations) > 1:
                features.add(f"LceBconv2d:dilation={max(dilations)}")
            if dilations[0] != dilations[1]:
                features.add("LceBconv2d:dilation=asymmetric")
            act = ACTIVATIONS[o["fused_activation_function"]]
            features.add(f"LceBconv2d:fused_activation={act}")
            if act != "NONE" and same0:
                features.add("LceBconv2d:fused_activation+SAME,pad_values=0")
            features.add("LceBconv2d:channels_in%32==0" if cin % 32 == 0 else "LceBconv2d:channels_in%32!=0")
            if cout % 32:
                features.add("LceBconv2d:channels_out%32!=0")
            features.add(f"LceBconv2d:kernel={kh}x{kw}" if kh == kw else "LceBconv2d:kernel=non-square")
            if groups > 1:
                features.add(f"LceBconv2d:groups={groups}")
            if entry["reference"] != "ok" and same0 and cin_g % 2:
                features.add("refused:LceBconv2d:padding=SAME,pad_values=0,channels_in odd")
    return features


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _input_sets(name: str) -> list[np.ndarray]:
    """The seeded sets (edgereid.tflite.seeded_inputs, as the manifest says), then the edge input."""
    entry = ENTRIES[name]
    spec = entry["input_sets"]["seeded_inputs"]
    shape, dtype = tuple(entry["input"]["shape"]), np.dtype(entry["input"]["dtype"])
    seeded = [s[0] for s in seeded_inputs([(shape, dtype)], spec["count"], spec["seed"])]
    return seeded + [np.load(FIXTURES / entry["files"]["edge_input"])]


def _outputs(name: str) -> np.ndarray:
    return np.load(FIXTURES / ENTRIES[name]["files"]["outputs"])


def _assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Bytes equal; float compared by bit pattern with -0.0 == +0.0."""
    assert got.dtype == want.dtype and got.shape == want.shape, (what, got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype.kind == "f":
        got, want = np.where(got == 0, 0, got).astype(want.dtype), np.where(want == 0, 0, want).astype(want.dtype)
        got, want = got.view(np.uint32), want.view(np.uint32)
    bad = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    assert bad.size == 0, (f"{what}: {bad.size} of {want.size} elements differ, first at flat index {bad[0]}: "
                           f"got {got.reshape(-1)[bad[0]]}, want {want.reshape(-1)[bad[0]]}")


# ---- files and graphs -----------------------------------------------------------------------

@pytest.mark.unit
def test_files_are_the_hashed_ones_and_small():
    listed = {"manifest.json"}
    for entry in MANIFEST["fixtures"]:
        for role, fname in entry["files"].items():
            assert _sha256(FIXTURES / fname) == entry["sha256"][role], (entry["name"], fname)
            listed.add(fname)
    assert {p.name for p in FIXTURES.iterdir()} == listed, "files in tests/fixtures/lce not in the manifest"
    total = sum((FIXTURES / f).stat().st_size for f in listed)
    assert total < 1_000_000, f"LCE fixtures take {total:,} bytes; keep them under 1 MB"
    assert set(REFUSED) and all("outputs" not in ENTRIES[n]["files"] for n in REFUSED)


@pytest.mark.unit
@pytest.mark.parametrize("name", list(ENTRIES))
def test_fixture_reads_into_its_manifest_entry(name):
    entry = ENTRIES[name]
    graph = read_graph(FIXTURES / entry["files"]["tflite"])
    assert [op.kind for op in graph.ops] == [o["kind"] for o in entry["ops"]]
    for op, want in zip(graph.ops, entry["ops"]):
        if op.is_custom:
            assert op.options == want["options"], (op.index, op.kind)
    assert len(graph.inputs) == 1 and len(graph.outputs) == 1
    for tensor, want in ((graph.tensors[graph.inputs[0]], entry["input"]), (graph.tensors[graph.outputs[0]],
                                                                              entry["output"])):
        assert (list(tensor.shape), tensor.dtype, list(tensor.zero_points)) == \
            (want["shape"], want["dtype"], want["zero_points"])
        assert [np.float32(s) for s in tensor.scales] == [np.float32(s) for s in want["scales"]]
    if "outputs" in entry["files"]:
        ys = _outputs(name)
        assert ys.shape == (entry["input_sets"]["seeded_inputs"]["count"] + 1, *entry["output"]["shape"])
        assert ys.dtype == np.dtype(entry["output"]["dtype"])


@pytest.mark.unit
@pytest.mark.parametrize("name", list(ENTRIES))
def test_graph_follows_the_lce_format(name):
    """Bitpacked tensors are int32 [..., ceil(C/32)]; a binary conv carries multiplier and bias
    (float / int8 output) or thresholds (bitpacked output), never both; its filter is
    [Cout, KH, KW, words of one group] and the output has Cout channels."""
    graph = read_graph(FIXTURES / ENTRIES[name]["files"]["tflite"])
    t = graph.tensors
    for op in graph.ops:
        if op.custom_code == "LceQuantize":
            x, y = t[op.inputs[0]], t[op.outputs[0]]
            assert y.dtype == "int32" and y.shape == (*x.shape[:-1], _words(x.shape[-1])), op.index
        elif op.custom_code == "LceDequantize":
            x, y = t[op.inputs[0]], t[op.outputs[0]]
            assert x.dtype == "int32" and x.shape == (*y.shape[:-1], _words(y.shape[-1])), op.index
        elif op.custom_code == "LceBMaxPool2d":
            x, y = t[op.inputs[0]], t[op.outputs[0]]
            assert x.dtype == y.dtype == "int32" and x.shape[-1] == y.shape[-1], op.index
        elif op.custom_code == "LceBconv2d":
            x, filt, y = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
            cin, cout = op.options["channels_in"], filt.shape[0]
            assert x.dtype == "int32" and x.shape[-1] == _words(cin) and filt.dtype == "int32", op.index
            assert filt.is_const and _words(cin) % filt.shape[-1] == 0, op.index
            mult, bias, threshold = (op.inputs[k] if len(op.inputs) > k else -1 for k in (2, 3, 4))
            if y.dtype == "int32":
                assert mult == bias == -1 and threshold >= 0 and t[threshold].shape == (cout,), op.index
                assert y.shape[-1] == _words(cout), op.index
            else:
                assert threshold == -1 and t[mult].shape == t[bias].shape == (cout,), op.index
                assert y.dtype in ("float32", "int8") and y.shape[-1] == cout, op.index


@pytest.mark.unit
@pytest.mark.parametrize("name", list(ENTRIES))
def test_claimed_options_are_in_the_graph(name):
    entry = ENTRIES[name]
    derived = derived_features(read_graph(FIXTURES / entry["files"]["tflite"]), entry)
    assert set(entry["covers"]) <= derived, sorted(set(entry["covers"]) - derived)


@pytest.mark.unit
def test_coverage_table_covers_issue_10_item_1():
    table: dict[str, list[str]] = {}
    for entry in MANIFEST["fixtures"]:
        for feature in entry["covers"]:
            table.setdefault(feature, []).append(entry["name"])
    assert MANIFEST["coverage"] == table
    assert not REQUIRED - set(table), f"no fixture covers {sorted(REQUIRED - set(table))}"
    assert any(f.startswith("int8:") for f in table), "no fixture mixes Lce ops with int8 builtin ops"


@pytest.mark.unit
@pytest.mark.parametrize("name", list(ENTRIES))
def test_inputs_are_seeded_inputs_then_edge_values(name):
    entry = ENTRIES[name]
    sets = _input_sets(name)
    seeded = np.stack(sets[:-1])
    assert hashlib.sha256(seeded.tobytes()).hexdigest() == entry["input_sets"]["seeded_inputs"]["sha256"]
    edge = sets[-1]
    assert edge.shape == tuple(entry["input"]["shape"]) and edge.dtype == np.dtype(entry["input"]["dtype"])
    if edge.dtype == np.float32:     # LceQuantize: +0, -0 and NaN give bit 0 (+1), so they are worth a set
        assert np.isnan(edge).any() and np.isinf(edge).any()
        assert (np.signbit(edge) & (edge == 0)).any() and (~np.signbit(edge) & (edge == 0)).any()
    else:                            # LceQuantize from int8: bit = q < zero_point
        zp = entry["input"]["zero_points"][0]
        assert {zp - 1, zp, zp + 1, -128, 127} <= set(edge.reshape(-1).tolist())


@pytest.mark.unit
def test_comparison_is_by_bit_pattern_with_signed_zeros_equal():
    a = np.array([0.0, 1.0, -2.5], dtype=np.float32)
    _assert_same(np.array([-0.0, 1.0, -2.5], dtype=np.float32), a, "signed zero")
    with pytest.raises(AssertionError, match="1 of 3 elements differ"):
        _assert_same(np.array([0.0, np.nextafter(np.float32(1), np.float32(2)), -2.5], dtype=np.float32), a, "ulp")
    with pytest.raises(AssertionError):
        _assert_same(np.array([0, 1, -3], dtype=np.int8), np.array([0, 1, -2], dtype=np.int8), "int8")


# ---- the reference: LCE's interpreter, op by op with BUILTIN_REF in mixed graphs --------------

class Oracle:
    """The bit-exact reference of one fixture (DESIGN.md, "Bit-exactness"): a graph of Lce* ops
    runs whole on LCE's interpreter (reference bconv); a graph that also holds builtin ops
    runs in segments, Lce* ops on LCE's interpreter and builtin ops on LiteRT BUILTIN_REF: LCE's
    interpreter runs builtin ops with TFLite's optimized kernels, which are not the reference
    (test_lce_runs_builtin_ops_with_optimized_kernels)."""

    def __init__(self, name: str):
        entry = ENTRIES[name]
        self.runner = reference_runner(FIXTURES / entry["files"]["tflite"])
        self.per_op = isinstance(self.runner, SegmentedRunner)
        assert entry["oracle"] == ("per-op" if self.per_op else "lce"), name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.runner.run([x])[0]

    def close(self):
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.mark.integration
@needs_lce
@pytest.mark.parametrize("name", RUNNABLE)
def test_reference_reproduces_committed_outputs(name):
    if ENTRIES[name]["oracle"] == "per-op":
        pytest.importorskip("ai_edge_litert")
    want = _outputs(name)
    with Oracle(name) as oracle:
        for i, x in enumerate(_input_sets(name)):
            got = oracle.run(x)
            assert got.dtype == want.dtype and np.array_equal(got.view(np.uint8), want[i].view(np.uint8)), \
                f"{name} input set {i}"


@pytest.mark.integration
@needs_lce
def test_lce_runs_builtin_ops_with_optimized_kernels():
    """Why mixed graphs run op by op: LCE's interpreter and LiteRT BUILTIN_REF disagree on the
    int8 CONV_2D of mixed_int8_net (by one, on a few outputs per input)."""
    pytest.importorskip("ai_edge_litert")
    from edgereid.tflite import LiteRTRunner, write_graph
    graph = read_graph(FIXTURES / ENTRIES["mixed_int8_net"]["files"]["tflite"])
    conv = graph.ops[0]
    assert conv.kind == "CONV_2D"
    one = write_graph(dataclasses.replace(graph, ops=[conv], outputs=conv.outputs, metadata={}))
    differ = 0
    with LceRunner(one) as lce, LiteRTRunner(one, reference_kernels=True) as ref:
        for (x,) in seeded_inputs([graph.tensors[graph.inputs[0]]], 16, 1):
            a, b = lce.run([x])[0].astype(np.int32), ref.run([x])[0].astype(np.int32)
            assert np.abs(a - b).max() <= 1
            differ += int((a != b).sum())
    assert differ > 0


@pytest.mark.integration
@needs_lce
@pytest.mark.parametrize("name", REFUSED)
def test_lce_reference_kernel_refuses_the_bad_input_fixture(name):
    message = ENTRIES[name]["reference"]["refused"]
    with pytest.raises(TFLiteError) as info:
        LceRunner(FIXTURES / ENTRIES[name]["files"]["tflite"])
    assert message in str(info.value)


# ---- host firmware --------------------------------------------------------------------------

def _missing_lowerings(name: str) -> list[str]:
    """The op kinds of fixture `name` the firmware does not lower (yet)."""
    try:
        importlib.import_module("edgereid.firmware.lowering_lce")   # where the Lce* lowerings are to live
    except ModuleNotFoundError as exc:
        if exc.name != "edgereid.firmware.lowering_lce":
            raise
    from edgereid.firmware import supported_ops
    kinds = {o["kind"] for o in ENTRIES[name]["ops"]}
    return sorted(kinds - supported_ops())


def _firmware_params(names, raises):
    params = []
    for name in names:
        missing = _missing_lowerings(name)
        marks = [pytest.mark.xfail(bool(missing), strict=True, raises=raises,
                                   reason=f"the firmware does not lower {', '.join(missing)} yet "
                                          "(edgereid/firmware/lowering_lce.py, issue 10 item 1)")] if missing else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.fixture(scope="module")
def host_build(tmp_path_factory):
    """build(name): the fixture's host firmware under ASan + UBSan, built once per module."""
    from edgereid.firmware import build_firmware

    root = tmp_path_factory.mktemp("lce-firmware")
    cache, builds = root / "objects", {}

    def build(name):
        if name not in builds:
            builds[name] = build_firmware(FIXTURES / ENTRIES[name]["files"]["tflite"], "host", root / name,
                                          sanitize=True, object_cache=cache)
        return builds[name]
    return build


@pytest.mark.integration
@needs_gcc
@pytest.mark.parametrize("name", _firmware_params(RUNNABLE, FirmwareError))
def test_host_firmware_matches_committed_outputs(name, tmp_path, host_build):
    from edgereid.firmware.bitexact import run_firmware

    result = host_build(name)
    want = _outputs(name)
    for i, x in enumerate(_input_sets(name)):
        _assert_same(run_firmware(result.executable, x, want[i], tmp_path), want[i], f"{name} input set {i}")


RANDOM_SETS, RANDOM_SEED = 64, 1


@pytest.mark.integration
@needs_gcc
@needs_lce
@pytest.mark.parametrize("name", _firmware_params(RUNNABLE, FirmwareError))
def test_host_firmware_matches_lce_interpreter_on_64_random_inputs(name, tmp_path, host_build):
    """Issue 10, "What must show": 64 random inputs per fixture, every output byte equal to
    the reference (live, not committed: Oracle), host build under ASan and UBSan."""
    from edgereid.firmware.bitexact import run_firmware

    if ENTRIES[name]["oracle"] == "per-op":
        pytest.importorskip("ai_edge_litert")
    result = host_build(name)
    entry = ENTRIES[name]
    spec = (tuple(entry["input"]["shape"]), np.dtype(entry["input"]["dtype"]))
    with Oracle(name) as oracle:
        for i, (x,) in enumerate(seeded_inputs([spec], RANDOM_SETS, RANDOM_SEED)):
            want = oracle.run(x)
            _assert_same(run_firmware(result.executable, x, want, tmp_path), want, f"{name} random input {i}")


@pytest.mark.integration
@needs_gcc
@pytest.mark.parametrize("name", _firmware_params(REFUSED, AssertionError))
def test_firmware_refuses_the_bad_input_fixture_in_one_line(name, tmp_path):
    """SAME with pad_values=0 and an odd channels_in: the reference kernel refuses it, so the
    firmware has nothing to match; it must say so, naming the op index and the option."""
    from edgereid.firmware import build_firmware

    op = next(i for i, o in enumerate(ENTRIES[name]["ops"]) if o["kind"] == "CUSTOM:LceBconv2d")
    try:
        build_firmware(FIXTURES / ENTRIES[name]["files"]["tflite"], "host", tmp_path / "fw")
    except EdgereidError as exc:
        text = str(exc)
    else:
        pytest.fail(f"{name}: the firmware built a model LCE's reference kernel refuses")
    assert "\n" not in text and f"op {op}" in text and "pad_values" in text, text
