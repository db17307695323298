"""HIL: protocol, board bring-up under QEMU (UART, tick scale), real-MCU cross builds,
the host board (the HIL firmware as a local process on pipes, under ASan + UBSan),
resynchronisation under injected faults, `--out` safety, and end-to-end runs against
LiteRT BUILTIN_REF."""
import dataclasses
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgereid.boards import load_board
from edgereid.errors import HilError
from edgereid.hil import protocol as P
from edgereid.firmware.build import SANITIZE_FLAGS
from edgereid.hil.image import HIL_DIR, build_hil_image
from edgereid.hil.runner import run_image
from edgereid.hil.transports import HilClient, HostTransport, QemuTransport

REPO = Path(__file__).resolve().parent.parent
STUB = REPO / "tests" / "fixtures" / "hil_stub"
QEMU_BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547"]
REAL_BOARDS = ["stm32h743", "stm32f746", "nrf52840"]

needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None,
                                reason="qemu-system-arm not installed (apt-get install qemu-system-arm)")
needs_arm_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                   reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc / make not installed")


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
        assert dec.next_frame() is None      # the rest of the bad frame holds no frame
    dec.feed(good)                           # decoder recovers after a bad frame
    assert dec.next_frame().payload == b"abc"
    assert dec.corrupted == 4


def test_decoder_bounds_lengths_and_resynchronises_inside_a_bad_frame():
    a = P.encode(P.INFER | P.REPLY, 1, bytes(range(40)))
    b = P.encode(P.ECHO | P.REPLY, 2, b"next")
    # A corrupted length above the bound: the header is noise, the next frame comes at once
    # (before: the decoder waited for up to 64 MiB).
    dec = P.FrameDecoder(max_payload=64)
    huge = bytearray(a)
    huge[7] = 0x40                           # length 0x400000xx
    dec.feed(bytes(huge) + b)
    assert dec.next_frame() == P.Frame(P.ECHO | P.REPLY, 2, b"next")
    # A corrupted length within the bound swallows the next frame: CRC error, then the
    # frame inside it is found.
    longer = bytearray(a)
    longer[4] = 44                           # 40 -> 44 payload bytes
    dec = P.FrameDecoder(max_payload=64)
    dec.feed(bytes(longer) + b)
    with pytest.raises(HilError, match="CRC"):
        dec.next_frame()
    assert dec.next_frame() == P.Frame(P.ECHO | P.REPLY, 2, b"next")
    # A dropped byte: the short frame takes the next frame's first bytes; both are found
    # again in order (the bad one refused, the good one returned).
    dec = P.FrameDecoder(max_payload=64)
    dec.feed(a[:20] + a[21:] + b)
    with pytest.raises(HilError, match="CRC"):
        dec.next_frame()
    assert dec.next_frame().seq == 2
    # The default bound is finite.
    assert P.FrameDecoder().max_payload <= P.MAX_PAYLOAD < 64 << 20


@needs_gcc
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


@needs_qemu
@pytest.mark.timeout(120)
def test_qemu_is_killed_when_python_crashes(stub_images):
    """The issue's case: Python died in the reference run and qemu-system-arm ran on."""
    _assert_child_dies_with_parent(f"QemuTransport('mps2-an386', 'cortex-m4', {str(stub_images['mps2-an386'])!r})")


# ---- host board: the HIL firmware as a local process on pipes --------------------

ASAN_CFLAGS = tuple(SANITIZE_FLAGS.split())


@pytest.fixture(scope="module")
def host_stub(tmp_path_factory):
    """The stub model's HIL executable for the host board, under ASan + UBSan (any finding
    ends the process with a report on stderr: the tests check it stays quiet)."""
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed")
    out = tmp_path_factory.mktemp("hil_host")
    return build_hil_image(load_board("host"), STUB, out / "hil_stub_host", extra_cflags=ASAN_CFLAGS)


def _host(host_stub):
    return HostTransport(host_stub)


def _quiet(transport):
    """The child is still running and said nothing on stderr (no sanitizer report)."""
    assert transport.alive, transport.stderr_tail()
    assert transport.stderr_tail() == ""


@needs_gcc
def test_host_board_speaks_the_protocol_on_stdin_stdout(host_stub):
    with _host(host_stub) as transport:
        client = HilClient(transport, timeout=10, retries=0)
        payload = bytes(range(256))           # every byte value crosses the pipe raw (\r, \n, 0x1a, 0xff)
        assert client.echo(payload) == payload
        assert client.echo(b"") == b""
        info = client.hello()
        assert (info.input_bytes, info.output_bytes, info.num_layers) == (16, 16, 2)
        assert info.counter_unit == P.UNIT_NANOSECONDS and info.clock_hz == 0
        assert info.max_payload == 256
        if os.uname().machine == "x86_64":
            assert info.core == load_board("host").core == "x86-64"
        r1 = client.infer(_stub_input(1000))
        r2 = client.infer(_stub_input(30_000_000))
        assert r1.output == _stub_output(_stub_input(1000))
        assert r2.output == _stub_output(_stub_input(30_000_000))
        # nanoseconds: 30M loop iterations take milliseconds, 1000 take microseconds
        assert r2.layer_counts[0] > 1_000_000 > r1.layer_counts[0]
        assert r2.total_count >= sum(r2.layer_counts)
        _quiet(transport)
        proc = transport.proc
    assert proc.poll() is not None            # closed with the transport


@needs_gcc
def test_host_process_ends_when_its_input_closes(host_stub):
    transport = _host(host_stub)
    try:
        HilClient(transport, timeout=10, retries=0).hello()
        transport.proc.stdin.close()
        assert transport.proc.wait(timeout=10) == 0
    finally:
        transport.close()


def _raw_exchange(transport, data: bytes, want: int, timeout: float = 5.0) -> list:
    """Write raw bytes, collect `want` frames (or fail after `timeout`)."""
    dec = P.FrameDecoder()
    transport.write(data)
    frames, deadline = [], time.monotonic() + timeout
    while len(frames) < want:
        frame = dec.next_frame()
        if frame is not None:
            frames.append(frame)
            continue
        assert time.monotonic() < deadline, f"only {frames} within {timeout} s"
        dec.feed(transport.read(0.2))
    return frames


@needs_gcc
def test_device_refuses_bad_lengths_before_reading_and_resynchronises(host_stub):
    """The firmware's receiver: a length it would not accept is refused from the header
    alone (no waiting for bytes that will not come), and after any rejected frame it
    parses the bytes it had read again, so a frame inside them is still answered."""
    with _host(host_stub) as transport:
        # corrupted lengths: huge, and small but not the model's input size
        for length in (0x7FFFFFF0, 5):
            bad = bytearray(P.encode(P.INFER, 9, _stub_input(1)))
            bad[4:8] = struct.pack("<I", length)
            err, = _raw_exchange(transport, bytes(bad[:8]), 1)
            assert (err.type, err.seq) == (P.ERROR, 9)
            assert P.parse_error(err.payload)[:2] == (P.ERR_BAD_LENGTH, P.INFER)
            # the rest of that frame is noise to it; the next request is answered
            ok, = _raw_exchange(transport, bytes(bad[8:]) + P.encode(P.ECHO, 10, b"after"), 1)
            assert (ok.type, ok.seq, ok.payload) == (P.ECHO | P.REPLY, 10, b"after")
        # HELLO carries no payload; an unknown type is refused at once too
        err, = _raw_exchange(transport, P.encode(P.HELLO, 11, b"x"), 1)
        assert P.parse_error(err.payload)[0] == P.ERR_BAD_LENGTH
        err, = _raw_exchange(transport, P.encode(0x55, 12, b"")[:8], 1)
        assert (err.seq, P.parse_error(err.payload)[0]) == (12, P.ERR_UNKNOWN_TYPE)
        # a dropped byte: INFER short by one swallows the start of the ECHO behind it;
        # the device reports the INFER (bad CRC) and still answers the ECHO
        infer = P.encode(P.INFER, 13, _stub_input(7))
        err, ok = _raw_exchange(transport, infer[:12] + infer[13:] + P.encode(P.ECHO, 14, b"inside"), 2)
        assert (err.type, err.seq, P.parse_error(err.payload)[0]) == (P.ERROR, 13, P.ERR_BAD_CRC)
        assert (ok.type, ok.seq, ok.payload) == (P.ECHO | P.REPLY, 14, b"inside")
        _quiet(transport)


class CorruptLengthOnce:
    """Sets the length field of the first frame written to `length`."""

    def __init__(self, inner, length):
        self.inner, self.name, self.length, self.done = inner, inner.name, length, False

    def write(self, data):
        if not self.done:
            data = bytearray(data)
            data[4:8] = struct.pack("<I", self.length)
            self.done = True
        self.inner.write(bytes(data))

    def read(self, timeout):
        return self.inner.read(timeout)


@needs_gcc
@pytest.mark.parametrize("length", [15, 0x01000010])
def test_client_resends_a_request_whose_length_was_corrupted(host_stub, length):
    with _host(host_stub) as transport:
        client = HilClient(transport, timeout=5, retries=2)
        client.hello()
        client.transport = CorruptLengthOnce(transport, length)
        started = time.monotonic()
        reply = client.infer(_stub_input(3))
        assert reply.output == _stub_output(_stub_input(3)) and client.resends == 1
        assert time.monotonic() - started < 2.5   # answered by the device's ERROR, not a timeout
        # a request that is really too long is refused at once, not resent
        with pytest.raises(HilError, match="bad length"):
            client.echo(bytes(300))
        assert client.resends == 1
        _quiet(transport)


class FaultyLink:
    """Seeded byte faults in both directions: per byte, with probability `rate` each, the
    byte is dropped, has one bit flipped, or gets a random byte inserted before it."""

    def __init__(self, inner, seed, rate):
        self.inner, self.name = inner, inner.name
        self.rng, self.rate = random.Random(seed), rate
        self.faults = Counter()

    def _mangle(self, data, direction):
        out = bytearray()
        for byte in data:
            r = self.rng.random()
            if r < self.rate:
                self.faults[f"drop {direction}"] += 1
                continue
            if r < 2 * self.rate:
                byte ^= 1 << self.rng.randrange(8)
                self.faults[f"flip {direction}"] += 1
            elif r < 3 * self.rate:
                out.append(self.rng.randrange(256))
                self.faults[f"insert {direction}"] += 1
            out.append(byte)
        return bytes(out)

    def write(self, data):
        self.inner.write(self._mangle(data, "to device"))

    def read(self, timeout):
        return self._mangle(self.inner.read(timeout), "to host")


@needs_gcc
@pytest.mark.timeout(120)
def test_injected_drops_and_corruptions_every_inference_completes_or_fails_cleanly(host_stub):
    """Drops, bit flips and inserted bytes in both directions: every inference returns the
    exact output or raises HilError, in bounded time; a corrupted frame is never taken."""
    timeout, retries, n = 0.25, 4, 60
    # one attempt waits at most `timeout` plus one transport read
    bound_per_inference = (retries + 1) * (timeout + 0.5) + 1.0
    with _host(host_stub) as transport:
        link = FaultyLink(transport, seed=7, rate=0.002)
        client = HilClient(link, timeout=timeout, retries=retries)
        outcomes = Counter()
        started = time.monotonic()
        for i in range(n):
            x = _stub_input(1000 + i)
            t0 = time.monotonic()
            try:
                reply = client.infer(x, timeout=timeout)
            except HilError as exc:
                outcomes["HilError"] += 1
                assert "no reply" in str(exc) or "device reported" in str(exc) or "HELLO" in str(exc), exc
            else:
                assert reply.output == _stub_output(x), f"inference {i}: a corrupted reply was accepted"
                outcomes["ok"] += 1
            assert time.monotonic() - t0 < bound_per_inference
        elapsed = time.monotonic() - started
        _quiet(transport)
    assert sum(outcomes.values()) == n
    assert sum(link.faults.values()) >= 20, link.faults          # the faults really happened
    assert {k.split()[0] for k in link.faults} == {"drop", "flip", "insert"}
    assert client.resends > 0 and client.decoder.corrupted + client.resends > 0
    assert outcomes["ok"] >= 0.8 * n, (outcomes, link.faults)    # resynchronisation works
    assert elapsed < n * bound_per_inference


@needs_gcc
def test_host_process_is_killed_when_python_crashes(host_stub):
    """A crash (here SIGSEGV, as LiteRT's was) runs no `finally`: the child must die anyway."""
    _assert_child_dies_with_parent(f"HostTransport({str(host_stub)!r})")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _assert_child_dies_with_parent(make_transport: str):
    script = textwrap.dedent(f"""
        import os, signal, sys
        from edgereid.hil.transports import HilClient, HostTransport, QemuTransport
        t = {make_transport}
        print(t.proc.pid, flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGSEGV)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO)
    child = int(proc.stdout.readline())
    assert _alive(child)
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=30) == -signal.SIGSEGV
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), f"child {child} outlived its crashed parent"


class FailingReference:
    input_bytes = output_bytes = 16

    def run(self, x):
        return _stub_output(x.tobytes())


@needs_gcc
@pytest.mark.parametrize("error", [HilError("link lost"), KeyboardInterrupt()])
def test_run_image_stops_the_child_on_any_failure(host_stub, error):
    started = []

    def wrapper(transport):
        started.append(transport)

        class Failing:
            name = transport.name

            def write(self, data):
                raise error

            def read(self, timeout):
                return b""
        return Failing()

    inputs = [np.frombuffer(_stub_input(10), np.uint8)]
    with pytest.raises(type(error)):
        run_image(host_stub, "host", FailingReference(), inputs, transport_wrapper=wrapper)
    assert len(started) == 1 and started[0].proc.poll() is not None


@needs_gcc
def test_run_image_on_host_with_faults_still_passes(host_stub):
    inputs = [np.frombuffer(_stub_input(100 * (i + 1)), np.uint8) for i in range(8)]
    links = []

    def faulty(transport):
        links.append(FaultyLink(transport, seed=3, rate=0.003))
        return links[0]
    result = run_image(host_stub, "host", FailingReference(), inputs, model_name="stub", timeout=0.5,
                       retries=6, transport_wrapper=faulty)
    assert result.passed and result.unit == "ns" and len(result.counts) == 8
    assert result.target == "host (local process)"
    assert sum(links[0].faults.values()) > 0 and result.resends > 0


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


@needs_gcc
def test_end_to_end_run_hil_on_host(e2e_model, tmp_path):
    from edgereid.hil import run_hil

    result = run_hil(e2e_model, "host", n=3, seed=1, report=tmp_path / "report.md")
    assert result.passed, result.format()
    assert result.unit == "ns" and result.target == "host (local process)"
    assert [layer["name"] for layer in result.per_layer] == ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"]
    assert all(c > 0 for c in result.counts)
    text = (tmp_path / "report.md").read_text()
    assert "median ns" in text and "clock_gettime" in text


@needs_gcc
def test_cli_hil_on_host(e2e_model, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "hil", "--model", str(e2e_model),
                           "--board", "host", "--n", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "ns per inference on host (local process)" in proc.stdout
    assert list(tmp_path.iterdir()) == []              # nothing written without --out / --report


# ---- `hil --out`: never loses what the user had ------------------------------------

def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _cli_hil(cwd, *args):
    return subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "hil", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@needs_gcc
def test_hil_out_refuses_a_folder_with_foreign_files(e2e_model, tmp_path):
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "thesis.tex").write_text("mine")
    (out / "notes" / "a.txt").write_text("also mine")
    before = _tree(tmp_path)
    proc = _cli_hil(tmp_path, "--model", e2e_model, "--board", "host", "--n", "1", "--out", "out")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "error: --out folder out holds files edgereid did not write" in proc.stderr
    assert "thesis.tex" in proc.stderr and "notes/" in proc.stderr
    assert _tree(tmp_path) == before                    # nothing touched, nothing left behind


@needs_gcc
def test_hil_out_dot_is_a_clear_error(e2e_model, tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    before = _tree(tmp_path)
    proc = _cli_hil(tmp_path, "--model", e2e_model, "--board", "host", "--n", "1", "--out", ".")
    assert proc.returncode == 2 and "error: --out folder . is the working folder" in proc.stderr
    assert _tree(tmp_path) == before


@needs_gcc
def test_hil_out_replaces_its_own_output_and_touches_nothing_else(e2e_model, tmp_path):
    from edgereid.hil import run_hil

    (tmp_path / "sibling.txt").write_text("x")
    out = tmp_path / "fw"
    first = run_hil(e2e_model, "host", n=1, out_dir=out)
    assert first.passed and Path(first.image) == out / "firmware" and (out / "Makefile").is_file()
    assert (out / "runtime" / "host" / "ereid_board_host.c").is_file()   # the project builds on its own
    second = run_hil(e2e_model, "host", n=1, out_dir=out)              # an earlier output: replaced
    assert second.passed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw", "sibling.txt"]
    # a build that fails leaves the earlier output as it was and no temporary folder
    before = _tree(out)
    host = load_board("host")
    broken = dataclasses.replace(host, toolchain=dataclasses.replace(host.toolchain, cc="edgereid-no-such-cc"))
    with pytest.raises(Exception, match="edgereid-no-such-cc"):
        run_hil(e2e_model, broken, n=1, out_dir=out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw", "sibling.txt"]
