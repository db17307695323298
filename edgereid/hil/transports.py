"""Byte streams to a board: QEMU's UART on a pipe, the host build's stdin/stdout, or a
real serial port.

`HilClient` runs the request/reply exchange on top of any transport, with a
timeout per reply, a bounded reply length and a bounded number of resends.
"""
import contextlib
import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgereid.errors import HilError
from edgereid.hil import protocol as P


class Transport:
    """A byte stream; `name` says what is on the other end, for error messages."""

    name = "device"

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within `timeout` seconds (b"" if nothing)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qemu_command(machine: str, cpu: str | None, image: Path) -> list[str]:
    """The command line for one HIL image. The UART goes to stdin/stdout as a raw
    byte stream: no monitor multiplexed on it (Ctrl-A in a tensor would be eaten)
    and no signals from its bytes."""
    cmd = ["qemu-system-arm", "-M", machine]
    if cpu:
        cmd += ["-cpu", cpu]
    cmd += ["-nographic", "-monitor", "none",
            "-chardev", "stdio,id=uart0,signal=off", "-serial", "chardev:uart0",
            "-icount", "shift=0", "-kernel", str(image)]
    return cmd


def _parent_death_signal():
    """A preexec_fn that makes Linux kill the child when this process dies, however it
    dies (a segfault in a native extension runs no `finally`); None elsewhere. (Linux
    ties it to the thread that starts the child: start transports from a thread that
    outlives them, as run_image does.)"""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec():
        prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:   # the parent died before prctl took effect
            os._exit(1)
    return preexec


class ProcessTransport(Transport):
    """A child process whose stdin/stdout carry the byte stream. The child never outlives
    us: close() (also on any exception, through `with`) terminates it, and on Linux the
    kernel kills it should this process die without running close()."""

    def __init__(self, command: list, name: str):
        self.name = name
        self.command = [str(c) for c in command]
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, bufsize=0, preexec_fn=_parent_death_signal())
        except OSError as exc:
            self._stderr.close()
            raise HilError(f"cannot start {name} ({' '.join(self.command)}): {exc}") from None
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)

    def stderr_tail(self, limit: int = 2000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")[-limit:].strip()
        return ""

    def _check_alive(self):
        code = self.proc.poll()
        if code is not None:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise HilError(f"{self.name} {how}: {self.stderr_tail() or 'no message'} "
                           f"(command: {' '.join(self.command)})")

    def write(self, data: bytes) -> None:
        self._check_alive()
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
            self._check_alive()
            raise HilError(f"{self.name} closed its input") from None

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._out_fd], [], [], max(timeout, 0.0))
        if not ready:
            self._check_alive()
            return b""
        try:
            data = os.read(self._out_fd, 1 << 16)
        except BlockingIOError:
            return b""
        if not data:   # end of file: the child closed its output, so it is exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=min(max(timeout, 0.0), 1.0))
            self._check_alive()
            time.sleep(min(timeout, 0.05))
        return data

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        self._stderr.close()


class QemuTransport(ProcessTransport):
    """qemu-system-arm running `image`, its UART0 on our pipes."""

    def __init__(self, machine: str, cpu: str | None, image, qemu: str = "qemu-system-arm"):
        exe = shutil.which(qemu)
        if exe is None:
            raise HilError(f"{qemu} not found on PATH: install Debian's qemu-system-arm to run {machine} images")
        image = Path(image)
        if not image.is_file():
            raise HilError(f"HIL image {image} does not exist")
        super().__init__([exe] + qemu_command(machine, cpu, image)[1:], f"{machine} (QEMU)")


class HostTransport(ProcessTransport):
    """The host build of the HIL firmware (board run.kind "local") as a child process:
    its board layer (firmware/runtime/host) speaks the protocol on stdin/stdout as raw
    bytes and exits when its stdin closes."""

    def __init__(self, executable, board_name: str = "host"):
        executable = Path(executable)
        if not executable.is_file():
            raise HilError(f"HIL executable {executable} does not exist")
        if not os.access(executable, os.X_OK):
            raise HilError(f"HIL executable {executable} is not executable")
        super().__init__([executable.resolve()], f"{board_name} (local process)")


class SerialTransport(Transport):
    """A real board on a serial port (pyserial)."""

    def __init__(self, port: str, baudrate: int = 115200, board_name: str = "board"):
        try:
            import serial
        except ImportError as exc:
            raise HilError("pyserial is needed for --port: pip install pyserial") from exc
        self.name = f"{board_name} on {port}"
        try:
            self.port = serial.Serial(port, baudrate=baudrate, timeout=0)
        except serial.SerialException as exc:
            raise HilError(f"cannot open serial port {port} at {baudrate} baud: {exc}") from None
        self.port.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, timeout: float) -> bytes:
        self.port.timeout = max(timeout, 0.0)
        first = self.port.read(1)
        if not first:
            return b""
        return first + self.port.read(self.port.in_waiting or 0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.port.close()


class HilClient:
    """Request/reply over a transport: one outstanding request, seq numbers to drop
    stale replies, resends on timeout, corrupted reply or a device ERROR frame that says
    the request arrived damaged (see docs/hil_protocol.md, "Errors and retries").

    Replies are bounded: the decoder takes no frame longer than the reply to the
    request can be (from HELLO: the model's output size and layer count), so a
    corrupted length never makes it wait for megabytes; it resynchronises on the next
    magic instead."""

    def __init__(self, transport: Transport, timeout: float = 10.0, retries: int = 3):
        if retries < 0:
            raise HilError(f"retries must be 0 or more, got {retries}")
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.decoder = P.FrameDecoder()
        self.seq = 0
        self.resends = 0
        self.hello_info: P.Hello | None = None

    def _reply_limit(self, frame_type: int) -> int:
        """The longest payload a reply to `frame_type` (or an ERROR frame) may have."""
        info = self.hello_info
        if frame_type == P.HELLO:
            longest = P.HELLO_REPLY_MAX
        elif frame_type == P.ECHO:
            longest = P.ECHO_MAX
        elif frame_type == P.INFER and info is not None:
            longest = P.infer_reply_bytes(info.num_layers, info.output_bytes)
        else:
            longest = P.MAX_PAYLOAD
        return max(longest, P.ERROR_MAX)

    def _length_accepted(self, frame_type: int, length: int) -> bool | None:
        """Whether the device accepts a `frame_type` request of `length` payload bytes (None:
        not known before HELLO). An ERR_BAD_LENGTH for a request it accepts means the
        length arrived corrupted: the request is sent again."""
        if frame_type == P.HELLO:
            return length == 0
        if frame_type == P.ECHO:
            return length <= P.ECHO_MAX
        if frame_type == P.INFER and self.hello_info is not None:
            return length == self.hello_info.input_bytes
        return None

    def request(self, frame_type: int, payload: bytes = b"", timeout: float | None = None,
                what: str | None = None) -> P.Frame:
        timeout = self.timeout if timeout is None else timeout
        what = what or P.TYPE_NAMES.get(frame_type, hex(frame_type))
        self.seq = (self.seq + 1) & 0xFF
        seq = self.seq
        frame = P.encode(frame_type, seq, payload)
        self.decoder.max_payload = self._reply_limit(frame_type)
        length_ok = self._length_accepted(frame_type, len(payload))
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            self.transport.write(frame)
            deadline = time.monotonic() + timeout
            damaged = False
            while True:
                try:
                    reply = self.decoder.next_frame()
                except HilError as exc:
                    # A corrupted frame is never accepted. The answer may still be among the
                    # bytes already here (the bad frame was noise); if not, ask again.
                    last_problem, damaged = str(exc), True
                    continue
                if reply is None and damaged:
                    break
                if reply is not None:
                    if reply.seq != seq:
                        continue          # late answer to an earlier request
                    if reply.type == P.ERROR:
                        code, bad_type, message = P.parse_error(reply.payload)
                        last_problem = (f"device reported {P.ERROR_NAMES.get(code, code)} "
                                        f"for {P.TYPE_NAMES.get(bad_type, hex(bad_type))}: {message}")
                        if code == P.ERR_BAD_CRC or (code == P.ERR_UNKNOWN_TYPE and frame_type in P.REQUESTS) \
                                or (code == P.ERR_BAD_LENGTH and length_ok is not False):
                            break         # the request arrived damaged: send it again
                        raise HilError(f"{self.transport.name}: {what} seq {seq}: {last_problem}")
                    if reply.type != frame_type | P.REPLY:
                        raise HilError(f"{self.transport.name}: {what} seq {seq} answered with {reply.name}")
                    return reply
                left = deadline - time.monotonic()
                if left <= 0:
                    last_problem = f"timeout {timeout:g} s"
                    break
                data = self.transport.read(min(left, 0.5))
                if data:
                    self.decoder.feed(data)
        raise HilError(f"no reply from {self.transport.name} after {self.retries} retries of "
                       f"{what} seq {seq}: {last_problem}")

    def hello(self) -> P.Hello:
        info = P.parse_hello(self.request(P.HELLO).payload)
        if info.version != P.VERSION:
            raise HilError(f"{self.transport.name} speaks HIL protocol version {info.version}, "
                           f"this host speaks {P.VERSION}")
        self.hello_info = info
        return info

    def echo(self, payload: bytes) -> bytes:
        return self.request(P.ECHO, payload).payload

    def infer(self, tensor: bytes, timeout: float | None = None, what: str = "INFER") -> P.InferReply:
        info = self.hello_info or self.hello()
        if len(tensor) != info.input_bytes:
            raise HilError(f"input of {len(tensor)} bytes for {self.transport.name}, "
                           f"whose model takes {info.input_bytes}")
        reply = P.parse_infer(self.request(P.INFER, tensor, timeout=timeout, what=what).payload,
                              info.output_bytes)
        if reply.status != 0:
            raise HilError(f"{self.transport.name}: {what}: ereid_model_invoke returned {reply.status}")
        return reply
