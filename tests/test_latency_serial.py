"""The serial transport, end to end against QEMU's UART on a pseudo-terminal.

The "flash command" given to the profiler starts qemu-system-arm on the freshly built
HIL image with its UART on a pty and links that pty to a fixed path, which the
profiler then opens with pyserial as it would /dev/ttyACM0 on a real board.
"""
import os
import shutil
import signal
import stat

import pytest

from edgereid.latency import LatencyTable, profile

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="qemu-system-arm and arm-none-eabi-gcc are needed to emulate a serial board")

FLASH = """#!/bin/sh
# "Flash" = (re)start QEMU on the image with UART0 on a pty, linked to $DIR/tty.
DIR={dir}
[ -f "$DIR/qemu.pid" ] && kill "$(cat "$DIR/qemu.pid")" 2>/dev/null
rm -f "$DIR/tty" "$DIR/qemu.log"
qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial pty -icount shift=0 \\
    -kernel "$1" > "$DIR/qemu.log" 2>&1 &
echo $! > "$DIR/qemu.pid"
for i in $(seq 100); do
  pty=$(sed -n 's/.*redirected to \\(\\/dev\\/pts\\/[0-9]*\\).*/\\1/p' "$DIR/qemu.log")
  [ -n "$pty" ] && ln -s "$pty" "$DIR/tty" && exit 0
  sleep 0.1
done
echo "qemu did not open a pty: $(cat "$DIR/qemu.log")" >&2
exit 1
"""


def test_profile_over_serial_to_qemu_uart(tmp_path):
    pytest.importorskip("serial", reason="pyserial is needed for serial ports")
    flash = tmp_path / "flash.sh"
    flash.write_text(FLASH.format(dir=tmp_path))
    flash.chmod(flash.stat().st_mode | stat.S_IXUSR)
    out = tmp_path / "serial.json"
    try:
        # The mps2-an386 board's image (QEMU's memory map), reached over serial instead of QEMU's stdio.
        table = profile("mps2-an386", transport=f"serial:{tmp_path / 'tty'}", space="tiny", repeats=2,
                        out=out, progress=False, limit=2, flash_cmd=f"{flash} {{elf}}")
    finally:
        pid_file = tmp_path / "qemu.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
    assert len(table) == 2 and table.unit == "cycles"
    for entry in LatencyTable.load(out).entries.values():
        assert entry.provenance["transport"] == f"serial:{tmp_path / 'tty'}"
        # QEMU counts instructions deterministically, but SysTick reads them in whole ticks (40
        # instructions on mps2) and the phase at the start depends on when the UART bytes arrived.
        assert entry.n == 2 and entry.median > 0 and entry.iqr <= 40
