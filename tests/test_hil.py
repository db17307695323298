"""HIL: protocol, board bring-up under QEMU (UART, tick scale), real-MCU cross builds,
and end-to-end runs against LiteRT BUILTIN_REF."""
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgereid.boards import load_board
from edgereid.errors import HilError
from edgereid.hil import protocol as P
from edgereid.hil.image import HIL_DIR, build_hil_image
from edgereid.hil.runner import run_image
from edgereid.hil.transports import HilClient, QemuTransport

REPO = Path(__file__).resolve().parent.parent
STUB = REPO / "tests" / "fixtures" / "hil_stub"
QEMU_BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547"]
REAL_BOARDS = ["stm32h743", "stm32f746", "nrf52840"]

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm not installed (apt-get install qemu-system-arm)")
needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")


# ---- protocol ------------------------------------------------------------------

def test_crc_is_zlib_crc32():
    assert P.crc32(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")


def test_frame_round_trip_and_layout():
    payload = bytes(range(256)) * 3
    raw = P.encode(P.INFER, 200, payload)
    assert raw[:2] == P.MAGIC and raw[2] == P.INFER and raw[3] == 200
    assert struct.unpack_from("<I", raw, 4)[0] == len(payload)
    assert struct.unpack_from("<I", raw, len(raw) - 4)[0] == zlib.crc32(raw[2:-4])
    frame = P.decode(raw)
    assert (frame.type, frame.seq, frame.payload) == (P.INFER, 200, payload)


def test_payload_round_trips():
    hello = P.Hello(1, P.UNIT_SYSTICK, 24576, 128, 21, 25_000_000, 24576, "cortex-m4")
    assert P.parse_hello(P.pack_hello(hello)) == hello
    reply = P.InferReply(0, 123456789012, (5, 6, 7), b"\x80\x7f" * 8)
    assert P.parse_infer(P.pack_infer(reply), 16) == reply
    with pytest.raises(HilError, match="expected"):
        P.parse_infer(P.pack_infer(reply), 17)
    assert P.parse_error(P.pack_error(P.ERR_BAD_CRC, P.INFER, "bad CRC")) == (1, P.INFER, "bad CRC")


def test_decoder_skips_noise_and_detects_corruption():
    good = P.encode(P.ECHO | P.REPLY, 7, b"abc")
    dec = P.FrameDecoder()
    dec.feed(b"boot banner\r\n\xe7" + good[:5])
    assert dec.next_frame() is None          # split frame: wait for the rest
    dec.feed(good[5:])
    assert dec.next_frame() == P.Frame(P.ECHO | P.REPLY, 7, b"abc")
    for pos in (2, 3, 9, len(good) - 1):     # type, seq, payload, crc
        bad = bytearray(good)
        bad[pos] ^= 0x10
        dec.feed(bytes(bad))
        with pytest.raises(HilError, match="CRC"):
            dec.next_frame()
    dec.feed(good)                           # decoder recovers after a bad frame
    assert dec.next_frame().payload == b"abc"


@needs_arm_gcc
def test_firmware_crc_matches_zlib_on_host(tmp_path):
    """hil_protocol.c is portable C: its CRC must equal zlib's."""
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("host gcc not installed")
    main = tmp_path / "crc_main.c"
    main.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "hil_protocol.h"\n'
        "void ereid_uart_putc(uint8_t b) { (void)b; }\nuint8_t ereid_uart_getc(void) { return 0; }\n"
        "void ereid_uart_write(const void *d, uint32_t n) { (void)d; (void)n; }\n"
        "void ereid_uart_read(void *d, uint32_t n) { (void)d; (void)n; }\n"
        "int main(void) { static uint8_t buf[1000]; uint32_t i; for (i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 7);\n"
        '  printf("%08x %08x\\n", (unsigned)ereid_crc32_update(0, (const uint8_t *)"123456789", 9),\n'
        "         (unsigned)ereid_crc32_update(ereid_crc32_update(0, buf, 400), buf + 400, 600)); return 0; }\n")
    exe = tmp_path / "crc"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{HIL_DIR}", f"-I{REPO / 'firmware/runtime'}",
                    str(main), str(HIL_DIR / "hil_protocol.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    buf = bytes((i * 7) & 0xFF for i in range(1000))
    assert out == [f"{zlib.crc32(b'123456789'):08x}", f"{zlib.crc32(buf):08x}"]


# ---- real MCU boards: they cannot run here, but must build with -Werror ----------

def _symbols(elf: Path) -> dict:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (l.split() for l in out.splitlines()) if len(parts) == 3}


@needs_arm_gcc
@pytest.mark.parametrize("name", REAL_BOARDS)
def test_real_mcu_image_builds_with_werror(name, tmp_path):
    board = load_board(name)
    elf = build_hil_image(board, STUB, tmp_path / f"{name}.elf")
    syms = _symbols(elf)
    # datasheet flash base: RM0433 (H743), RM0385 (F746), nRF52840 PS v1.7
    flash_origin = {"stm32h743": 0x08000000, "stm32f746": 0x08000000, "nrf52840": 0x0}[name]
    assert syms["ereid_vector_table"] == flash_origin  # vector table first in flash
    vectors = subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".vectors", str(elf), "/dev/stdout"],
                             capture_output=True, check=True).stdout
    initial_sp, reset = struct.unpack_from("<II", vectors)
    assert initial_sp == syms["__StackTop"] and reset == syms["Reset_Handler"] | 1
    assert "SysTick_Handler" in syms and "ereid_cycles_now" in syms


# ---- QEMU boards: bring-up -----------------------------------------------------

@pytest.fixture(scope="module")
def stub_images(tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    out = tmp_path_factory.mktemp("hil_stub")
    return {name: build_hil_image(load_board(name), STUB, out / f"{name}.elf") for name in QEMU_BOARDS}


def _open(name, images):
    board = load_board(name)
    return board, QemuTransport(board.run.qemu_machine, board.run.qemu_cpu, images[name])


def _stub_input(loops: int) -> bytes:
    return struct.pack("<I", loops) + bytes(range(3, 15))


def _stub_output(tensor: bytes) -> bytes:
    return bytes(((b ^ 0xA5) + i) & 0xFF for i, b in enumerate(tensor))


@needs_qemu
@pytest.mark.parametrize("name", QEMU_BOARDS)
def test_qemu_board_uart_hello_and_tick_scale(name, stub_images):
    board, transport = _open(name, stub_images)
    with transport:
        client = HilClient(transport, timeout=10, retries=1)
        payload = bytes(range(256))           # every byte value crosses the UART raw
        assert client.echo(payload) == payload
        info = client.hello()
        assert (info.input_bytes, info.output_bytes, info.num_layers) == (16, 16, 2)
        assert info.core == board.core and info.counter_unit == P.UNIT_SYSTICK
        assert info.clock_hz == board.clock_hz
        short, long_ = 100_000, 1_500_000
        r1 = client.infer(_stub_input(short))
        r2 = client.infer(_stub_input(long_))
        assert r2.output == _stub_output(_stub_input(long_))
        # layer 0 runs `subs; bne` `loops` times: 2 instructions per loop
        per_tick = 1.0 / board.run.ticks_per_instruction
        measured = (r2.layer_counts[0] - r1.layer_counts[0]) * per_tick
        assert measured == pytest.approx(2 * (long_ - short), rel=0.01)
        assert r2.layer_counts[0] * per_tick == pytest.approx(2 * long_, rel=0.01)
        assert r2.total_count >= sum(r2.layer_counts)


@needs_qemu
def test_systick_wraps_are_counted(stub_images):
    """A span longer than the 24-bit SysTick (2^24 ticks = 671M instructions on mps2)
    would lose whole wraps without the wrap interrupt; 2^24 + a bit must not."""
    board, transport = _open("mps3-an547", stub_images)
    loops = int((1 << 24) * 31.25 / 2) + 2_000_000      # just over one wrap on an547
    with transport:
        reply = HilClient(transport, timeout=120, retries=0).infer(_stub_input(loops))
    assert reply.layer_counts[0] / board.run.ticks_per_instruction == pytest.approx(2 * loops, rel=0.01)


class CorruptFirstWrite:
    """Flips one payload bit in the first frame sent: the device must answer ERROR
    (bad CRC) and the client must resend."""

    def __init__(self, inner):
        self.inner, self.name, self.corrupted = inner, inner.name, False

    def write(self, data):
        if not self.corrupted and len(data) > 12:
            data = bytearray(data)
            data[10] ^= 0x01
            self.corrupted = True
        self.inner.write(bytes(data))

    def read(self, timeout):
        return self.inner.read(timeout)


@needs_qemu
def test_device_reports_bad_crc_and_client_resends(stub_images):
    board, transport = _open("mps2-an386", stub_images)
    with transport:
        seen = []
        client = HilClient(CorruptFirstWrite(transport), timeout=10, retries=2)
        original = client.decoder.next_frame

        def spy():
            frame = original()
            if frame is not None:
                seen.append(frame.type)
            return frame
        client.decoder.next_frame = spy
        assert client.echo(b"0123456789abcdef") == b"0123456789abcdef"
        assert seen[0] == P.ERROR and client.resends == 1
        # a frame longer than the device buffer is refused, not waited for
        with pytest.raises(HilError, match="bad length"):
            client.echo(bytes(300))


@needs_qemu
def test_no_reply_is_a_bounded_hil_error(stub_images, tmp_path):
    board = load_board("mps2-an386")
    # the mps2-an386 image on the mps3-an547 machine: its UART is elsewhere, nothing answers
    with QemuTransport("mps3-an547", "cortex-m55", stub_images["mps2-an386"]) as transport:
        client = HilClient(transport, timeout=0.5, retries=2)
        with pytest.raises(HilError, match=r"no reply from mps3-an547 \(QEMU\) after 2 retries of HELLO"):
            client.hello()
    assert board.name == "mps2-an386"


class StubReference:
    """The stub model's exact function, shaped like runner.Reference."""

    input_bytes = output_bytes = 16

    def __init__(self, wrong_byte=None):
        self.wrong_byte = wrong_byte

    def run(self, x):
        out = bytearray(_stub_output(x.tobytes()))
        if self.wrong_byte is not None:
            out[self.wrong_byte] ^= 0xFF
        return bytes(out)


@needs_qemu
def test_runner_compares_bytes_and_reports(stub_images, tmp_path):
    inputs = [np.frombuffer(_stub_input(1000 * (i + 1)), np.uint8) for i in range(3)]
    ok = run_image(stub_images["mps2-an500"], "mps2-an500", StubReference(), inputs, model_name="stub")
    assert ok.passed and ok.unit == "instructions" and len(ok.counts) == 3
    assert [layer["name"] for layer in ok.per_layer] == ["layer 0", "layer 1"]
    assert ok.per_layer[0]["min"] == pytest.approx(2000, rel=0.05)
    bad = run_image(stub_images["mps2-an500"], "mps2-an500", StubReference(wrong_byte=5), inputs,
                    model_name="stub")
    assert not bad.passed and bad.mismatched_inferences == 3 and bad.mismatched_bytes == 3
    assert (bad.mismatches[0].inference, bad.mismatches[0].offset) == (0, 5)
    text = bad.format()
    assert "inference 0 byte 5: expected" in text and "FAIL" in text
    md = ok.write_report(tmp_path / "r.md").read_text()
    assert "| 0 | layer 0 |" in md
    js = ok.write_report(tmp_path / "r.json").read_text()
    assert '"passed": true' in js


# ---- CLI -----------------------------------------------------------------------

def test_cli_missing_model_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "hil", "--model",
                           str(tmp_path / "none.tflite"), "--board", "mps2-an386"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "error: model" in proc.stderr


# ---- end to end: .tflite -> edgereid.firmware -> QEMU -> compare with LiteRT -------

E2E_SPEC = {
    "name": "hil_e2e", "seed": 3,
    "inputs": [{"name": "x", "shape": [1, 32, 16, 3], "scale": 0.05, "zero_point": -3}],
    "ops": [{"op": "CONV_2D", "filters": 8, "kernel": [3, 3], "stride": [2, 2], "padding": "SAME",
             "activation": "RELU6"},
            {"op": "DEPTHWISE_CONV_2D", "kernel": [3, 3], "stride": [1, 1], "padding": "SAME"},
            {"op": "MAX_POOL_2D", "kernel": [2, 2], "stride": [2, 2], "padding": "VALID"}],
}


@pytest.fixture(scope="module")
def e2e_model(tmp_path_factory):
    from edgereid.tflite.builder import build_model

    path = tmp_path_factory.mktemp("hil_e2e") / "hil_e2e.tflite"
    path.write_bytes(build_model(E2E_SPEC))
    return path


@needs_qemu
@pytest.mark.parametrize("name", ["mps2-an500", "mps3-an547"])
def test_end_to_end_run_hil(name, e2e_model, tmp_path):
    from edgereid.hil import run_hil

    result = run_hil(e2e_model, name, n=3, seed=1, report=tmp_path / "report.json")
    assert result.passed, result.format()
    assert result.n == 3 and result.output_bytes == 8 * 4 * 8
    assert [layer["name"] for layer in result.per_layer] == ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"]
    assert all(layer["min"] > 0 for layer in result.per_layer)
    assert sum(layer["median"] for layer in result.per_layer) <= min(result.counts)
    assert '"passed": true' in (tmp_path / "report.json").read_text()


@needs_qemu
def test_end_to_end_cli_exit_code(e2e_model, tmp_path):
    report = tmp_path / "layers.md"
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "hil", "--model",
                           str(e2e_model), "--board", "mps2-an386", "--n", "2", "--report", str(report)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "instructions per inference on mps2-an386 (QEMU)" in proc.stdout
    assert "| 0 | CONV_2D |" in report.read_text()
