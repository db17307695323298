"""`edgereid boards list|show`: the board files the other stages build and run for."""
import click

from edgereid.boards import list_boards, load_board


def _size(n) -> str:
    if n is None:
        return "-"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % (div // 16 or 1) == 0:
            return f"{n / div:g} {unit}"
    return f"{n} B"


def _clock(hz) -> str:
    return "-" if hz is None else f"{hz / 1e6:g} MHz"


@click.group()
def boards():
    """Target boards: cores, memory budgets, toolchains and how to run on them."""


@boards.command("list")
def list_cmd():
    """One line per board in the boards folder."""
    rows = [load_board(name) for name in list_boards()]
    click.echo(f"{'name':<12} {'core':<11} {'clock':>9} {'flash':>9} {'ram':>9}  run     accelerator")
    for b in rows:
        acc = "-" if b.accelerator is None else f"{b.accelerator.name} {b.accelerator.tops:g} TOPS"
        click.echo(f"{b.name:<12} {b.core:<11} {_clock(b.clock_hz):>9} {_size(b.memory.flash_bytes):>9} "
                   f"{_size(b.memory.ram_bytes):>9}  {b.run.kind:<7} {acc}")


@boards.command("show")
@click.argument("name")
def show_cmd(name):
    """Every field of one board (NAME or a path to a .yaml file), with provenance."""
    b = load_board(name)
    m, t, r = b.memory, b.toolchain, b.run
    features = [f for f, on in (("fpu", b.fpu), ("dsp", b.dsp), ("mve", b.mve)) if on]
    lines = [
        f"{b.name}: {b.description}",
        f"  file          {b.path}",
        f"  core          {b.core} ({', '.join(features) or 'no fpu/dsp/mve'})",
        f"  clock         {_clock(b.clock_hz)}",
        f"  flash         {_size(m.flash_bytes)}",
        f"  ram           {_size(m.ram_bytes)}" + (f" (arena in {m.arena_region})" if m.arena_region else ""),
        f"  stack         {_size(m.stack_bytes)}",
    ]
    for reg in m.regions:
        lines.append(f"    {reg.name:<10} 0x{reg.origin:08x}  {_size(reg.bytes):>9}  {reg.use}")
    if b.accelerator is not None:
        a = b.accelerator
        lines.append(f"  accelerator   {a.name}, {a.tops:g} TOPS, {a.interface}")
    lines += [
        f"  toolchain     {t.cc} {' '.join(t.cflags)}",
        f"  ldscript      {t.ldscript or '-'}",
        f"  startup       {t.startup or '-'}",
        f"  run           {r.kind}",
    ]
    for key in ("qemu_machine", "qemu_cpu", "ticks_per_instruction", "serial_port", "baudrate",
                "ssh_host", "ssh_user"):
        value = getattr(r, key)
        if value is not None:
            lines.append(f"    {key:<22}{value}")
    table = b.resolve(b.latency_table)
    state = "" if table is None else (" (present)" if table.is_file() else " (not measured yet)")
    lines.append(f"  latency table {b.latency_table or '-'}{state}")
    lines.append("  provenance")
    for key, text in b.provenance.items():
        lines.append(f"    {key}: {text}")
    click.echo("\n".join(lines))
