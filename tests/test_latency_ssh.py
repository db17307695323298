"""The ssh transport against a real OpenSSH server on 127.0.0.1, started here.

The board side is tools/board_profile.py run by the python of a separate venv that has
only ai-edge-litert (no edgereid), as a Raspberry Pi would. The venv is cached under
~/.cache/edgereid-board-venv/ai-edge-litert-<version> (created with pip on first use).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgereid.errors import LatencyError
from edgereid.latency import LatencyTable, profile
from edgereid.latency.runtime import litert_version

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"  # scp speaks SFTP since OpenSSH 9
pytestmark = pytest.mark.skipif(not Path(SSHD).exists() or shutil.which("ssh-keygen") is None,
                                reason="OpenSSH server not installed (apt-get install openssh-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _board_python() -> Path:
    version = litert_version()
    venv = Path.home() / ".cache" / "edgereid-board-venv" / f"ai-edge-litert-{version}"
    python = venv / "bin" / "python"
    ok = python.exists() and subprocess.run([python, "-c", "import ai_edge_litert.interpreter"],
                                            capture_output=True).returncode == 0
    if not ok:
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", f"ai-edge-litert=={version}"], check=True)
    # the board side must not see edgereid
    assert subprocess.run([python, "-c", "import edgereid"], capture_output=True, cwd="/").returncode != 0
    return python


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "host_key"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / "client_key"], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(f"""ListenAddress 127.0.0.1
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin yes
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PidFile {d}/sshd.pid
Subsystem sftp {SFTP_SERVER}
""")
    os.makedirs("/run/sshd", exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", d / "sshd_config", "-p", str(port)],
                            stderr=open(d / "sshd.log", "wb"))
    deadline = time.time() + 15
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {(d / 'sshd.log').read_text()}")
        time.sleep(0.1)
    user = os.environ.get("USER") or "root"
    url = (f"ssh://{user}@127.0.0.1:{port}?python={_board_python()}&identity={d / 'client_key'}"
           f"&known_hosts={d / 'known_hosts'}")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_profile_over_ssh_with_the_board_script(sshd, tmp_path):
    out = tmp_path / "rpi5-cpu.json"
    table = profile("rpi5-cpu", transport=sshd, space="tiny", repeats=5, warmup=1, out=out, progress=False,
                    limit=5)
    assert len(table) == 5 and table.unit == "s"
    assert table.runtime["name"] == "ai-edge-litert" and table.runtime["version"] == litert_version()
    for entry in LatencyTable.load(out).entries.values():
        p = entry.provenance
        assert p["kind"] == "measured" and p["transport"].startswith("ssh://") and "127.0.0.1" in p["transport"]
        assert p["runtime"] == f"ai-edge-litert {litert_version()}"
        assert entry.n >= 1 and entry.median >= 0
    # resume: nothing left to do among the first five, the next two are new
    seen = []
    profile("rpi5-cpu", transport=sshd, space="tiny", repeats=5, warmup=1, out=out, progress=False, limit=2,
            resume=True, on_entry=lambda k, e: seen.append(k.key()))
    assert len(seen) == 2 and not set(seen) & set(table.entries)


def test_unreachable_ssh_host_is_a_clear_error(tmp_path):
    port = _free_port()  # nothing listens there
    with pytest.raises(LatencyError, match=rf"rpi5-cpu at root@127\.0\.0\.1:{port}"):
        profile("rpi5-cpu", transport=f"ssh://root@127.0.0.1:{port}", space="tiny", out=tmp_path / "t.json",
                progress=False)
