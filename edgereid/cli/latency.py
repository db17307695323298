"""`edgereid profile` (fill a board's latency table, or validate it) and `edgereid latency` (predict)."""
import warnings
from pathlib import Path

import click

from edgereid.cli.params import NON_NEGATIVE, POSITIVE, SEED, shell_template


def _echo_warnings(caught) -> None:
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)


@click.command("profile")
@click.option("--board", required=True, help="board name (boards/<name>.yaml) or YAML path")
@click.option("--transport", default=None,
              help="local | qemu | ssh://user@host[:port] | serial:/dev/ttyX (default: the board's run.kind)")
@click.option("--space", default=None, help="search space whose kernels to profile (default: mcu)")
@click.option("--resume", is_flag=True, help="keep entries already measured with this runtime and transport")
@click.option("--repeats", default=None, type=POSITIVE, help="timed runs per model (default: 50; 1 under QEMU)")
@click.option("--warmup", default=None, type=NON_NEGATIVE, help="untimed runs before timing (default: 5; 0 under QEMU)")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="table file to write (default: out/luts/<board>.json; the shipped table is the board's "
                   "latency_table, e.g. boards/luts/<board>.json in a checkout)")
@click.option("--table", "table_file", default=None, type=click.Path(dir_okay=False),
              help="--validate: table to predict from (default: the board's latency_table)")
@click.option("--results-dir", default="out", show_default=True, type=click.Path(file_okay=False),
              help="--validate: writes <dir>/latency/<board>_<space>.json, .png and <dir>/latency.md")
@click.option("--flash-cmd", default=None, callback=shell_template("elf"),
              help="serial only: shell command writing {elf} to the board ({elf} is its only placeholder)")
@click.option("--limit", default=None, type=NON_NEGATIVE, help="stop after this many new entries (resume later)")
@click.option("--validate", "do_validate", is_flag=True,
              help="instead: measure random architectures end to end and compare with the prediction")
@click.option("--n", "n", default=200, show_default=True, type=POSITIVE, help="--validate: architectures to draw")
@click.option("--seed", default=0, show_default=True, type=SEED, help="--validate: architecture i uses seed+i")
@click.option("--jobs", "-j", default=1, show_default=True, type=POSITIVE,
              help="qemu only: build and run this many models at once (instruction counts do not depend on load)")
def profile(board, transport, space, resume, repeats, warmup, out, table_file, results_dir, flash_cmd, limit,
            do_validate, n, seed, jobs):
    """Measure every fused kernel of a search space on BOARD into its latency table."""
    from edgereid.latency import profile as run_profile
    from edgereid.latency import validate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if do_validate:
            summary = validate(board, n=n, space=space, resume=resume, seed=seed, repeats=repeats, warmup=warmup,
                               transport=transport, jobs=jobs, out_dir=Path(results_dir), table_file=table_file)
            _echo_warnings(caught)
            click.echo(summary.format())
            click.echo(f"report: {Path(results_dir) / 'latency.md'}")
            return
        table = run_profile(board, transport=transport, space=space, repeats=repeats, warmup=warmup, resume=resume,
                            out=out, flash_cmd=flash_cmd, limit=limit, jobs=jobs)
    _echo_warnings(caught)
    over = f"{table.overhead.median:.4g} {table.unit}" if table.overhead else "not measured"
    click.echo(f"{table.path}: {len(table)} entries ({table.measured_count()} measured) in {table.unit}, "
               f"per-inference overhead {over}")


@click.command("latency")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--board", required=True, help="board name (boards/<name>.yaml) or YAML path")
def latency(model, board):
    """Predict MODEL's latency (architecture JSON or .tflite) on BOARD from its table."""
    from edgereid.boards import load_board
    from edgereid.latency import format_prediction, predict

    board = load_board(board)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = predict(model, board)
    _echo_warnings(caught)
    click.echo(format_prediction(pred))
    if pred.unit == "cycles" and board.clock_hz:
        click.echo(f"= {1e3 * pred.total / board.clock_hz:.3f} ms at {board.clock_hz / 1e6:g} MHz")
