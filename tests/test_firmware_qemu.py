"""Generated firmware, end to end, on every emulated Cortex-M board: a corpus network
compiled by edgereid.firmware, run over the HIL UART in QEMU, compared byte for byte
with LiteRT BUILTIN_REF; the DSP and portable (-DEREID_NO_DSP) builds on the M4 agree;
the host build is clean under ASan/UBSan; packed multi-input models and the
FULLY_CONNECTED double-rescale requantizer are pinned. The full corpus sweep is
tools/check_firmware_qemu.py."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ai_edge_litert")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from edgereid.boards import load_board  # noqa: E402
from edgereid.hil.runner import Reference, build_image, run_hil  # noqa: E402
from edgereid.hil.transports import HilClient, QemuTransport  # noqa: E402

MISSING = [tool for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "make") if shutil.which(tool) is None]
needs_cortex_m = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                                    "(apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)")
needs_host_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                    reason="host gcc / make not installed")
N_INPUTS = 4
# Two 3x3 convs (DSP inner loops) and a requantized residual ADD whose skip input stays
# live across both convs (arena reuse), in a graph small enough for a fast test.
MODEL = "net_residual_block"


@pytest.fixture(scope="module")
def residual_model(tmp_path_factory):
    from gen_tflite_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"))[MODEL]


@needs_cortex_m
@pytest.mark.parametrize("board", ["mps2-an500", "mps3-an547"])
def test_corpus_network_bit_exact_in_qemu(board, residual_model, tmp_path):
    result = run_hil(residual_model, board, n=N_INPUTS, seed=5, out_dir=tmp_path / "fw")
    assert result.passed, result.format()
    assert result.mismatched_bytes == 0 and result.output_bytes == 8 * 8 * 8
    # the per-layer hook is on in HIL builds by default (no rebuild, no extra flags)
    assert "-DEREID_LAYER_HOOK" in (tmp_path / "fw" / "Makefile").read_text()
    assert [layer["name"] for layer in result.per_layer] == ["CONV_2D", "CONV_2D", "ADD"]
    assert all(layer["min"] > 0 for layer in result.per_layer)


def _outputs(image: Path, board, reference: Reference, inputs) -> tuple[list[bytes], float]:
    with QemuTransport(board.run.qemu_machine, board.run.qemu_cpu, image) as transport:
        client = HilClient(transport, timeout=10.0)
        client.hello()
        replies = [client.infer(x.tobytes(), timeout=60.0) for x in inputs]
    return [r.output for r in replies], min(r.total_count for r in replies) / board.run.ticks_per_instruction


@needs_cortex_m
def test_m4_dsp_and_portable_builds_identical_and_bit_exact(residual_model, tmp_path):
    board = load_board("mps2-an386")
    reference = Reference(residual_model)
    inputs = reference.random_inputs(N_INPUTS, seed=7)
    expected = [reference.run(x) for x in inputs]
    runs = {}
    for name, dsp in (("dsp", True), ("portable", False)):
        image = build_image(residual_model, board, tmp_path / name, dsp=dsp)
        disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", str(image)], capture_output=True,
                                     text=True, check=True).stdout
        runs[name] = (*_outputs(image, board, reference, inputs), "smlad" in disassembly)
    (dsp_out, dsp_count, dsp_smlad), (portable_out, portable_count, portable_smlad) = runs["dsp"], runs["portable"]
    assert dsp_out == portable_out
    assert dsp_out == expected
    # the switch really selects the code path: SMLAD only in the DSP image, which runs fewer instructions
    assert dsp_smlad and not portable_smlad
    assert "-DEREID_NO_DSP" in (tmp_path / "portable" / "Makefile").read_text()
    assert dsp_count < portable_count


@needs_host_gcc
def test_corpus_network_host_build_under_sanitizers(residual_model, tmp_path):
    from edgereid.firmware.bitexact import check_model

    result = check_model(residual_model.read_bytes(), MODEL, num_inputs=N_INPUTS, seed=3, sanitize=True,
                         workdir=tmp_path)
    assert result.exact, f"{result.mismatched_elements} of {result.elements} output elements differ"
    assert result.elements == N_INPUTS * 8 * 8 * 8


# Two inputs whose first is 5 bytes: the second starts after 3 padding bytes (offset 8).
TWO_INPUT_SPEC = {
    "name": "two_inputs_padded", "seed": 11,
    "inputs": [{"name": "a", "shape": [1, 1, 1, 5], "scale": 0.02, "zero_point": -9},
               {"name": "b", "shape": [1, 4, 3, 5], "scale": 0.05, "zero_point": 4}],
    "ops": [{"op": "ADD", "inputs": ["b", "a"], "activation": "RELU", "name": "sum"},
            {"op": "CONV_2D", "filters": 4, "kernel": 3, "name": "conv"}],
}


@pytest.mark.parametrize("board", [
    pytest.param("host", marks=needs_host_gcc), pytest.param("mps2-an386", marks=needs_cortex_m)])
def test_two_input_model_packed_buffer_bit_exact(board, tmp_path):
    from edgereid.firmware import build_firmware
    from edgereid.tflite.builder import build_model

    model = tmp_path / "two_inputs_padded.tflite"
    model.write_bytes(build_model(TWO_INPUT_SPEC))
    reference = Reference(model)
    assert reference.input_offsets == [0, 8] and reference.input_bytes == 8 + 60
    inputs = reference.random_inputs(3, seed=2)
    if board == "host":
        exe = build_firmware(model, "host", tmp_path / "fw").executable
        assert "EREID_MODEL_INPUT_BYTES 68" in (tmp_path / "fw" / "model.h").read_text()
        for i, x in enumerate(inputs):
            (tmp_path / "in.bin").write_bytes(x.tobytes())
            subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
            assert (tmp_path / "out.bin").read_bytes() == reference.run(x), f"input {i}"
    else:
        result = run_hil(model, board, n=3, seed=2)
        assert result.passed, result.format()


@needs_host_gcc
@pytest.mark.parametrize("model_name", ["fc_relu", "fc_per_channel"])
def test_fully_connected_rounds_once_like_litert(model_name, tmp_path):
    """Double rounding (the conv requantizer) gave 1 and 3 wrong bytes on these 64 inputs;
    LiteRT's int8 FULLY_CONNECTED rescales in double and rounds once, half away from zero
    (found by tools/check_firmware_qemu.py; ties pinned in test_firmware_compiler.py)."""
    from edgereid.firmware import build_firmware
    from gen_tflite_corpus import write_corpus

    model = write_corpus(tmp_path / "corpus")[model_name]
    reference = Reference(model)
    exe = build_firmware(model, "host", tmp_path / "fw").executable
    wrong = 0
    for x in reference.random_inputs(64, seed=0):
        (tmp_path / "in.bin").write_bytes(x.tobytes())
        subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True)
        got, want = (tmp_path / "out.bin").read_bytes(), reference.run(x)
        wrong += sum(a != b for a, b in zip(got, want))
    assert wrong == 0, f"{wrong} output bytes differ from LiteRT BUILTIN_REF"
