"""edgereid diff: per-layer firmware tensors against LiteRT BUILTIN_REF, and the first layer
that differs (a kernel bug injected into the generated project's copy of one kernel)."""
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from edgereid.errors import FirmwareError, HilError

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                reason="needs gcc and make")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs qemu-system-arm and arm-none-eabi-gcc")

SPEC = {
    "name": "diff_demo", "seed": 3,
    "inputs": [{"name": "x", "shape": [1, 32, 16, 3], "scale": 0.05, "zero_point": -3}],
    "ops": [{"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "SAME",
             "activation": "RELU6"},
            {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "stride": [1, 1], "padding": "SAME"},
            {"op": "MAX_POOL_2D", "kernel": [2, 2], "stride": [2, 2], "padding": "VALID"},
            {"op": "RESHAPE", "shape": [1, 4, 8, 8]},
            {"op": "CONV_2D", "filters": 16, "kernel": [1, 1], "stride": [1, 1], "padding": "SAME"}],
}
BUGGY_LAYER = 2          # MAX_POOL_2D: its kernel gets one flipped output bit
FLIPPED_BYTE = 5


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from edgereid.tflite.builder import build_model

    path = tmp_path_factory.mktemp("diff") / "diff_demo.tflite"
    path.write_bytes(build_model(SPEC))
    return path


def test_clean_build_has_no_differing_layer(model, tmp_path):
    from edgereid.hil.diff import diff_firmware, flip_kernel_output

    result = diff_firmware(model, "host", seed=1, out_dir=tmp_path / "out", sanitize=True)
    assert result.passed, result.format()
    assert [t.layer for t in result.tensors] == list(range(len(SPEC["ops"])))
    assert all(t.ran and t.bytes_differing == 0 for t in result.tensors)
    report = json.loads((tmp_path / "out" / "diff.json").read_text())
    assert report["passed"] and report["first_differing_layer"] is None
    assert "| 2 | MAX_POOL_2D |" in (tmp_path / "out" / "diff.md").read_text()
    assert (tmp_path / "out" / "firmware" / "firmware").is_file()


def test_injected_kernel_bug_names_the_first_differing_layer(model):
    from edgereid.hil.diff import diff_firmware, flip_kernel_output

    result = diff_firmware(model, "host", seed=1, edit_project=flip_kernel_output(BUGGY_LAYER, FLIPPED_BYTE))
    first = result.first_differing
    assert first is not None and first.layer == BUGGY_LAYER, result.format()
    assert (first.op, first.bytes_differing, first.elements_differing, first.max_abs_diff) == \
        ("MAX_POOL_2D", 1, 1, 1.0)
    assert all(t.bytes_differing == 0 for t in result.tensors if t.layer < BUGGY_LAYER)
    # the RESHAPE aliases the pooled bytes: the same one byte differs there
    assert result.tensors[BUGGY_LAYER + 1].bytes_differing == 1
    assert f"first differing layer: {BUGGY_LAYER} (MAX_POOL_2D" in result.format()
    assert not result.passed


@needs_qemu
def test_injected_bug_on_qemu_m4(model):
    from edgereid.hil.diff import diff_firmware, flip_kernel_output

    clean = diff_firmware(model, "mps2-an386", seed=2)
    assert clean.passed, clean.format()
    buggy = diff_firmware(model, "mps2-an386", seed=2, edit_project=flip_kernel_output(BUGGY_LAYER, FLIPPED_BYTE))
    assert buggy.first_differing.layer == BUGGY_LAYER, buggy.format()


def test_npy_input_must_match_the_model(model, tmp_path):
    from edgereid.hil.diff import diff_firmware, flip_kernel_output

    good = tmp_path / "x.npy"
    np.save(good, np.random.default_rng(0).integers(-128, 128, size=(1, 32, 16, 3), dtype=np.int8))
    result = diff_firmware(model, "host", input_path=good)
    assert result.passed and result.input == str(good), result.format()
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 32, 16, 3), np.float32))
    with pytest.raises(FirmwareError, match="the model takes int8"):
        diff_firmware(model, "host", input_path=bad)


def test_parse_dump_refuses_truncated_replies():
    from edgereid.hil.diff import parse_dump

    record = struct.pack("<IIII", 0, 0, 1, 3) + b"\x01\x02\x03"
    status, out = parse_dump(struct.pack("<I", 1) + record + struct.pack("<i", 0))
    assert status == 0 and out == {(0, 0): (True, b"\x01\x02\x03")}
    with pytest.raises(HilError, match="says 3 bytes"):
        parse_dump(struct.pack("<I", 1) + record[:-1] + struct.pack("<i", 0))
    with pytest.raises(HilError, match="after its 1 records"):
        parse_dump(struct.pack("<I", 1) + record + b"\0" + struct.pack("<i", 0))


def test_cli_diff(model, tmp_path):
    from click.testing import CliRunner

    from edgereid.cli import cli

    runner = CliRunner()
    ok = runner.invoke(cli, ["diff", str(model), "--board", "host", "--input", "4", "--out", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output
    assert "no layer differs" in ok.output and (tmp_path / "o" / "diff.md").is_file()
    bad = runner.invoke(cli, ["diff", str(model), "--board", "host", "--input", "-1"])
    assert bad.exit_code == 2 and "--input" in bad.output


def test_lce_graph_is_diffed_against_the_segmented_reference():
    from edgereid.hil.diff import diff_firmware
    from edgereid.tflite.reference import lce_available

    if not lce_available():
        pytest.skip("Larq Compute Engine not installed")
    model = Path(__file__).parent / "fixtures" / "lce" / "mixed_int8_net.tflite"
    result = diff_firmware(model, "host", seed=0)
    assert result.passed and "Larq" in result.reference, result.format()
    assert any(t.op.startswith("CUSTOM:Lce") for t in result.tensors)


def test_patched_build_is_diffed_outside_its_stages(model):
    from edgereid.hil.diff import diff_firmware

    result = diff_firmware(model, "host", seed=3, patches="auto")
    inside = [t for t in result.tensors if t.in_patch_stage]
    assert inside and result.passed, result.format()
    assert all(t.ran and t.bytes_differing == 0 for t in result.tensors if not t.in_patch_stage)
