"""Where models are timed: this machine, QEMU, a Linux board over ssh, an MCU over serial.

Every backend takes a list of .tflite files and yields (file, samples) as results come
in, so the profiler can save after every entry. Samples are in the backend's `unit`.
"""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edgereid.boards import trust
from edgereid.errors import LatencyError, TFLiteError
from edgereid.latency.runtime import runtime_of
from edgereid.latency.table import host_description
from edgereid.resources import board_probe_script
from edgereid.tflite import LCE_VERSION, LceRunner, LiteRTRunner, seeded_inputs, uses_lce


class HilMismatchWarning(UserWarning):
    """The firmware computed a different output than LiteRT while being timed."""


class Backend:
    unit = "s"
    transport = "local"
    deterministic = False         # True: one sample is the answer (QEMU instruction counts)
    default_repeats = 50
    default_warmup = 5
    chunk = 1                     # models handed to measure() at once
    parallel = False              # True: measure() may run several models at once (jobs > 1)

    def __init__(self, board):
        self.board = board
        self.runtime = runtime_of(board)
        self.host = host_description()
        self.jobs = 1

    def set_jobs(self, jobs: int) -> "Backend":
        """Run up to `jobs` models at once where counts cannot disturb each other (QEMU only:
        instruction counts do not depend on host load; wall-clock and serial timing do)."""
        if jobs < 1:
            raise LatencyError(f"--jobs must be at least 1, got {jobs}")
        if jobs > 1 and not self.parallel:
            raise LatencyError(f"--jobs {jobs}: {self.transport} timing runs one model at a time (parallel runs "
                               "would disturb each other's timing); only qemu instruction counts run in parallel")
        self.jobs = jobs
        return self

    def open(self) -> "Backend":
        return self

    def close(self) -> None:
        pass

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    def measure(self, paths: list[Path], repeats: int, warmup: int):
        raise NotImplementedError

    def provenance(self, path) -> dict:
        """What a measured entry of the model at `path` records beyond the backend's runtime."""
        return {}


class LocalBackend(Backend):
    """This machine, LiteRT interpreter with one thread (the `host` board); a model holding
    Larq Compute Engine ops (binary convs) runs in LCE's interpreter instead, with its
    optimized kernels, XNNPACK for its builtin ops and one thread, timed inside its worker process."""

    def provenance(self, path) -> dict:
        if uses_lce(path):
            return {"interpreter": f"larq-compute-engine {LCE_VERSION} (optimized bconv kernels, XNNPACK, 1 thread)"}
        return {}

    def measure(self, paths, repeats, warmup):
        for path in paths:
            try:
                if uses_lce(path):
                    with LceRunner(path, optimized=True) as lce:
                        samples = lce.time(seeded_inputs(lce.inputs, 1, 0)[0], repeats, warmup)
                    yield Path(path), samples
                    continue
                # LiteRT's default (optimized) kernels, one thread: what the host table times
                runner = LiteRTRunner(path, reference_kernels=False, num_threads=1)
                runner.set_inputs(seeded_inputs(runner.inputs, 1, 0)[0])
            except TFLiteError as exc:
                raise LatencyError(str(exc)) from None
            for _ in range(warmup):
                runner.invoke()
            samples = []
            clock = time.perf_counter
            for _ in range(repeats):
                t0 = clock()
                runner.invoke()
                samples.append(clock() - t0)
            yield Path(path), samples


class QemuBackend(Backend):
    """The board's QEMU machine running the HIL firmware: instructions per inference."""

    unit = "instructions"
    transport = "qemu"
    deterministic = True
    default_repeats = 1
    default_warmup = 0
    parallel = True

    def __init__(self, board):
        if board.run.kind != "qemu":
            raise LatencyError(f"board {board.name} runs as '{board.run.kind}', not under QEMU")
        super().__init__(board)
        self.object_cache = None

    def open(self):
        """Builds in one session share the objects that do not depend on the model (kernels,
        board runtime, HIL protocol): about two thirds of each build's compile time."""
        import tempfile

        self.object_cache = Path(tempfile.mkdtemp(prefix="edgereid-objects-"))
        return self

    def close(self):
        if self.object_cache is not None:
            shutil.rmtree(self.object_cache, ignore_errors=True)
            self.object_cache = None

    @property
    def chunk(self) -> int:
        return 1 if self.jobs == 1 else 16 * self.jobs

    def measure(self, paths, repeats, warmup):
        """(path, counts) per model; with jobs > 1 in the order they finish (build + QEMU run
        in worker threads: both are subprocesses, so threads are enough)."""
        from edgereid.hil import run_hil

        def one(path):
            return path, run_hil(path, self.board, n=max(1, repeats), object_cache=self.object_cache)

        if self.jobs == 1:
            results = (one(p) for p in paths)
        else:
            results = self._parallel(one, paths)
        for path, result in results:
            if result.unit != self.unit:
                raise LatencyError(f"HIL run of {path} on {self.board.name} counted {result.unit}, "
                                   f"expected {self.unit}")
            if not result.passed:
                # A wrong output byte is a firmware bug to fix, but the count is still the kernel's cost.
                warnings.warn(f"HIL run of {path} on {self.board.name}: firmware output differs from LiteRT "
                              f"BUILTIN_REF in {result.mismatched_bytes} bytes; count kept", HilMismatchWarning,
                              stacklevel=2)
            yield Path(path), list(result.counts)

    def _parallel(self, fn, items):
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="edgereid-qemu")
        try:
            pending = {pool.submit(fn, item) for item in items}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:  # on an error or an early stop: drop what has not started, let the running ones end
            pool.shutdown(wait=True, cancel_futures=True)


class SerialBackend(Backend):
    """An MCU running the HIL firmware on a serial port: cycles per inference.

    Each micro-model needs its own image on the board, so a flash command is required:
    a shell template where {elf} is the image, e.g. "pyocd flash -t stm32h743xx {elf}".
    """

    unit = "cycles"
    transport = "serial"
    default_repeats = 20
    default_warmup = 0

    def __init__(self, board, port: str, flash_cmd: str | None):
        if not flash_cmd:
            raise LatencyError(f"profiling {board.name} over serial {port} needs --flash-cmd (a command with "
                               "{elf} that writes an image to the board), one image per micro-model")
        super().__init__(board)
        self.port, self.flash_cmd = port, flash_cmd
        self.transport = f"serial:{port}"

    def measure(self, paths, repeats, warmup):
        import tempfile

        from edgereid.hil.runner import Reference, build_image, run_image

        for path in paths:
            with tempfile.TemporaryDirectory(prefix="edgereid-serial-") as tmp:
                elf = build_image(path, self.board, Path(tmp) / "fw")
                cmd = self.flash_cmd.format(elf=shlex.quote(str(elf)))
                proc = subprocess.run(cmd, shell=True, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise LatencyError(f"flash command failed for {path} ({cmd}): {proc.stderr.strip()[-500:]}")
                reference = Reference(path)
                result = run_image(elf, self.board, reference, reference.random_inputs(warmup + repeats, 0),
                                   port=self.port, model_name=str(path))
            yield Path(path), list(result.counts[warmup:])


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int
    python: str = "python3"
    identity: str | None = None
    known_hosts: str | None = None

    @property
    def where(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> "SshTarget":
        """ssh://[user@]host[:port][?python=PATH&identity=KEY&known_hosts=FILE]"""
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise LatencyError(f"transport {url!r} is not ssh://[user@]host[:port]")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"python", "identity", "known_hosts"}
        if unknown:
            raise LatencyError(f"transport {url!r}: unknown option(s) {sorted(unknown)}; "
                               "known: python, identity, known_hosts")
        try:
            port = parts.port or 22
        except ValueError:
            raise LatencyError(f"transport {url!r}: port is not a number") from None
        # Both reach ssh's and scp's command lines: names only, never options (-oProxyCommand=...).
        if not trust.is_hostname(parts.hostname):
            raise LatencyError(f"transport {url!r}: host {parts.hostname!r} is not {trust.HOST_RULE}")
        if parts.username is not None and not trust.is_username(parts.username):
            raise LatencyError(f"transport {url!r}: user {parts.username!r} is not {trust.USER_RULE}")
        return cls(parts.username, parts.hostname, port, query.get("python", "python3"), query.get("identity"),
                   query.get("known_hosts"))


class SshBackend(Backend):
    """A Linux board over ssh: copy tools/board_profile.py and the models with scp, run, read JSON lines."""

    transport = "ssh"
    chunk = 16

    def __init__(self, board, url: str, connect_timeout: int = 10):
        super().__init__(board)
        self.target = SshTarget.parse(url)
        self.transport = f"ssh://{self.target.where}"
        self.connect_timeout = connect_timeout
        self.remote_dir = None
        for exe in ("ssh", "scp"):
            if shutil.which(exe) is None:
                raise LatencyError(f"{exe} not found on PATH: install openssh-client to profile over ssh")

    def _opts(self) -> list[str]:
        t = self.target
        opts = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if t.identity:
            opts += ["-i", t.identity, "-o", "IdentitiesOnly=yes"]
        if t.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={t.known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
        return opts

    def _dest(self, scp: bool = False) -> str:
        """user@host (after "--"; SshTarget.parse has checked both are names); scp's
        host:path needs an IPv6 address in brackets."""
        host = f"[{self.target.host}]" if scp and ":" in self.target.host else self.target.host
        return f"{self.target.user}@{host}" if self.target.user else host

    def _ssh(self, command: str, **kw) -> subprocess.CompletedProcess:
        cmd = ["ssh", *self._opts(), "-p", str(self.target.port), "--", self._dest(), command]
        return subprocess.run(cmd, capture_output=True, text=True, **kw)

    def _scp(self, files: list[Path]) -> None:
        cmd = ["scp", "-q", *self._opts(), "-P", str(self.target.port), "--", *map(str, files),
               f"{self._dest(scp=True)}:{self.remote_dir}/"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LatencyError(f"scp to {self.target.where} failed: {proc.stderr.strip()[-500:]}")

    def open(self):
        proc = self._ssh("mktemp -d /tmp/edgereid-profile.XXXXXX", timeout=self.connect_timeout + 30)
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise LatencyError(f"cannot reach board {self.board.name} at {self.target.where} over ssh: {reason}")
        self.remote_dir = proc.stdout.strip()
        self._scp([board_probe_script()])
        probe = self._run_script([], 0, 0)
        header = next(probe)
        probe.close()
        self.runtime = dict(header["runtime"])
        self.host = header.get("host", self.target.host)
        return self

    def close(self):
        if self.remote_dir:
            self._ssh(f"rm -rf {shlex.quote(self.remote_dir)}", timeout=60)
            self.remote_dir = None

    def _run_script(self, names: list[str], repeats: int, warmup: int):
        script = f"{self.remote_dir}/{board_probe_script().name}"
        remote = " ".join([shlex.quote(self.target.python), shlex.quote(script), "--repeats", str(repeats),
                           "--warmup", str(warmup), "--threads", "1",
                           *(shlex.quote(f"{self.remote_dir}/{n}") for n in names)])
        cmd = ["ssh", *self._opts(), "-p", str(self.target.port), "--", self._dest(), remote]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stdout:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                obj = json.loads(line)
                if "error" in obj and "model" not in obj:
                    raise LatencyError(f"board script on {self.target.where}: {obj['error']}")
                yield obj
            proc.wait()
            if proc.returncode != 0:
                raise LatencyError(f"board script on {self.target.where} exited {proc.returncode}: "
                                   f"{proc.stderr.read().strip()[-500:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def measure(self, paths, repeats, warmup):
        paths = [Path(p) for p in paths]
        self._scp(paths)
        by_name = {p.name: p for p in paths}
        lines = self._run_script(list(by_name), repeats, warmup)
        next(lines)  # runtime header, read in open()
        for obj in lines:
            name = Path(obj["model"]).name
            if "error" in obj:
                raise LatencyError(f"board {self.board.name} at {self.target.where} failed on {name}: "
                                   f"{obj['error']}")
            yield by_name[name], [float(v) for v in obj["samples"]]
        self._ssh("rm -f " + " ".join(shlex.quote(f"{self.remote_dir}/{n}") for n in by_name), timeout=60)


def open_backend(board, transport: str | None = None, flash_cmd: str | None = None, jobs: int = 1) -> Backend:
    """The backend for `transport` (default: the board's run.kind), running up to `jobs` models at once."""
    return _open_backend(board, transport, flash_cmd).set_jobs(jobs)


def _open_backend(board, transport: str | None, flash_cmd: str | None) -> Backend:
    transport = transport or {"local": "local", "qemu": "qemu"}.get(board.run.kind)
    if transport is None:
        if board.run.kind == "ssh" and board.run.ssh_host:
            user = f"{board.run.ssh_user}@" if board.run.ssh_user else ""
            host = board.run.ssh_host
            host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 address
            transport = f"ssh://{user}{host}"
        elif board.run.kind == "serial" and board.run.serial_port:
            transport = f"serial:{board.run.serial_port}"
        else:
            raise LatencyError(f"board {board.name} runs as '{board.run.kind}' and its file names no host or port: "
                               "give --transport (ssh://user@host[:port] or serial:/dev/ttyX)")
    if transport == "local":
        if board.run.kind != "local":
            raise LatencyError(f"--transport local times this machine, but board {board.name} is a "
                               f"'{board.run.kind}' board")
        return LocalBackend(board)
    if transport == "qemu":
        return QemuBackend(board)
    if transport.startswith("ssh://"):
        return SshBackend(board, transport)
    if transport.startswith("serial:"):
        return SerialBackend(board, transport[len("serial:"):], flash_cmd)
    raise LatencyError(f"unknown transport {transport!r}; expected local, qemu, ssh://user@host[:port] "
                       "or serial:/dev/ttyX")
