"""HIL framing shared with firmware/hil/hil_protocol.h (keep the constants equal).

    frame = magic(2) | type(1) | seq(1) | length(4, LE) | payload | crc32(4, LE)
    crc32 = zlib.crc32 (IEEE 802.3) of type..payload

Requests go host -> device; the device answers with the request type | 0x80, or
with an ERROR frame (bad CRC, bad length, unknown type) so the host can resend.
Both receivers bound the length they accept and, after a frame they reject, look
for the next magic inside it (resynchronisation). See docs/hil_protocol.md.
"""
import struct
import zlib
from dataclasses import dataclass

from edgereid.errors import HilError

MAGIC = b"\xe7\x1d"
VERSION = 1
HEADER_BYTES = 8
CRC_BYTES = 4

HELLO = 0x01
INFER = 0x02
ECHO = 0x03
REPLY = 0x80
ERROR = 0x7F
REQUESTS = (HELLO, INFER, ECHO)

TYPE_NAMES = {HELLO: "HELLO", INFER: "INFER", ECHO: "ECHO", ERROR: "ERROR",
              HELLO | REPLY: "HELLO reply", INFER | REPLY: "INFER reply", ECHO | REPLY: "ECHO reply"}
# Per-layer dump (edgereid diff): only in images built with -DEREID_LAYER_DUMP, so not in
# REQUESTS (an unknown-type ERROR for it means the image lacks it, not a damaged frame).
DUMP = 0x04
TYPE_NAMES.update({DUMP: "DUMP", DUMP | REPLY: "DUMP reply"})
# Variant selection: only in multi-variant images (edgereid.firmware.variants; model.h defines
# EREID_MODEL_NUM_VARIANTS). Request u32 index; reply i32 status (0, or -1: no such variant) | u32 count.
VARIANT = 0x05
TYPE_NAMES.update({VARIANT: "VARIANT", VARIANT | REPLY: "VARIANT reply"})

ERR_BAD_CRC = 1
ERR_BAD_LENGTH = 2
ERR_UNKNOWN_TYPE = 3
ERR_MODEL_FAILED = 4
ERROR_NAMES = {ERR_BAD_CRC: "bad CRC", ERR_BAD_LENGTH: "bad length",
               ERR_UNKNOWN_TYPE: "unknown type", ERR_MODEL_FAILED: "model failed"}

UNIT_SYSTICK = 1   # SysTick ticks on the core clock (QEMU: scale by ticks_per_instruction)
UNIT_CYCLES = 2    # core clock cycles (DWT CYCCNT on a real part)
UNIT_NANOSECONDS = 3  # wall-clock nanoseconds (the host build: clock_gettime(CLOCK_MONOTONIC))
UNIT_NAMES = {UNIT_SYSTICK: "SysTick ticks", UNIT_CYCLES: "cycles", UNIT_NANOSECONDS: "ns"}

# Payload bounds. No receiver waits for more than the frame it expects can hold.
ECHO_MAX = 256                       # ECHO request and reply
HELLO_REPLY_MAX = 24 + 1 + 255       # fixed fields, core name length, core name
ERROR_MAX = 3 + 256                  # code, type, message (the firmware's are short)
MAX_PAYLOAD = 1 << 24                # absolute cap, before HELLO says what the model needs

_HEAD = struct.Struct("<2sBBI")


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes

    @property
    def name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type 0x{self.type:02x}")


def encode(frame_type: int, seq: int, payload: bytes = b"") -> bytes:
    if not 0 <= frame_type <= 0xFF or not 0 <= seq <= 0xFF:
        raise ValueError(f"frame type {frame_type} and seq {seq} must each fit in one byte")
    head = _HEAD.pack(MAGIC, frame_type, seq, len(payload))
    body = head[2:] + bytes(payload)
    return MAGIC + body + struct.pack("<I", crc32(body))


def infer_reply_bytes(num_layers: int, output_bytes: int) -> int:
    """Payload bytes of an INFER reply: status, total, L, L counts, the output tensor."""
    return _INFER.size + 8 * num_layers + output_bytes


class FrameDecoder:
    """Incremental decoder: feed() bytes as they arrive, next_frame() returns whole ones.

    Bytes before a magic are skipped (a device may print a banner or noise). A header
    whose length is above `max_payload` is taken for noise: its magic is skipped. A frame
    with a bad CRC raises HilError from next_frame() and only its magic is dropped, so a
    real frame that starts inside it (after a dropped byte, or after a corrupted length
    that swallowed the next frame) is still found. A corrupted frame is never returned.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.buffer = bytearray()
        self.max_payload = max_payload
        self.skipped = 0
        self.corrupted = 0

    def feed(self, data: bytes) -> None:
        self.buffer += data

    def next_frame(self) -> Frame | None:
        buf = self.buffer
        while True:
            start = buf.find(MAGIC)
            if start < 0:
                # keep a trailing first magic byte: the second may be on its way
                keep = 1 if buf[-1:] == MAGIC[:1] else 0
                self.skipped += len(buf) - keep
                del buf[: len(buf) - keep]
                return None
            if start:
                self.skipped += start
                del buf[:start]
            if len(buf) < HEADER_BYTES:
                return None
            _, frame_type, seq, length = _HEAD.unpack_from(buf)
            if length > self.max_payload:
                # not a real header: drop this magic and hunt for the next one
                self.skipped += 2
                del buf[:2]
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(buf) < total:
                return None
            body = bytes(buf[2:HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<I", buf, HEADER_BYTES + length)
            if crc != crc32(body):
                # resynchronise: look for the next magic from just after this one
                self.skipped += 2
                self.corrupted += 1
                del buf[:2]
                raise HilError(
                    f"corrupted {TYPE_NAMES.get(frame_type, hex(frame_type))} frame seq {seq} "
                    f"({length} payload bytes): CRC 0x{crc:08x}, expected 0x{crc32(body):08x}")
            del buf[:total]
            return Frame(frame_type, seq, body[HEADER_BYTES - 2:])


def decode(data: bytes) -> Frame:
    """Decode exactly one frame from `data` (tests, offline tools)."""
    decoder = FrameDecoder()
    decoder.feed(data)
    frame = decoder.next_frame()
    if frame is None:
        raise HilError(f"incomplete frame: {len(data)} bytes hold no whole frame")
    return frame


# ---- payloads ---------------------------------------------------------------

@dataclass(frozen=True)
class Hello:
    version: int
    counter_unit: int
    input_bytes: int
    output_bytes: int
    num_layers: int
    clock_hz: int
    max_payload: int
    core: str


_HELLO = struct.Struct("<HBBIIIII")


def parse_hello(payload: bytes) -> Hello:
    if len(payload) < _HELLO.size + 1:
        raise HilError(f"HELLO reply of {len(payload)} bytes, expected at least {_HELLO.size + 1}")
    version, unit, _, inb, outb, layers, clock, maxp = _HELLO.unpack_from(payload)
    core_len = payload[_HELLO.size]
    core = payload[_HELLO.size + 1:_HELLO.size + 1 + core_len].decode("ascii", "replace")
    return Hello(version, unit, inb, outb, layers, clock, maxp, core)


def pack_hello(h: Hello) -> bytes:
    core = h.core.encode("ascii")
    return _HELLO.pack(h.version, h.counter_unit, 0, h.input_bytes, h.output_bytes,
                       h.num_layers, h.clock_hz, h.max_payload) + bytes([len(core)]) + core


@dataclass(frozen=True)
class InferReply:
    status: int
    total_count: int
    layer_counts: tuple
    output: bytes


_INFER = struct.Struct("<iQI")


def parse_infer(payload: bytes, output_bytes: int) -> InferReply:
    if len(payload) < _INFER.size:
        raise HilError(f"INFER reply of {len(payload)} bytes, expected at least {_INFER.size}")
    status, total, layers = _INFER.unpack_from(payload)
    expected = _INFER.size + 8 * layers + output_bytes
    if len(payload) != expected:
        raise HilError(f"INFER reply of {len(payload)} bytes, expected {expected} "
                       f"({layers} layer counts + {output_bytes} output bytes)")
    counts = struct.unpack_from(f"<{layers}Q", payload, _INFER.size)
    return InferReply(status, total, tuple(counts), bytes(payload[_INFER.size + 8 * layers:]))


def pack_infer(r: InferReply) -> bytes:
    return (_INFER.pack(r.status, r.total_count, len(r.layer_counts))
            + struct.pack(f"<{len(r.layer_counts)}Q", *r.layer_counts) + r.output)


def parse_error(payload: bytes) -> tuple[int, int, str]:
    """(code, offending frame type, message)."""
    if len(payload) < 3:
        return 0, 0, f"malformed ERROR payload {payload!r}"
    code, bad_type = struct.unpack_from("<HB", payload)
    return code, bad_type, payload[3:].decode("ascii", "replace")


def pack_error(code: int, bad_type: int, message: str) -> bytes:
    return struct.pack("<HB", code, bad_type) + message.encode("ascii")
