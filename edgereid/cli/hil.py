"""`edgereid hil`: run a model's firmware on a board or QEMU and check it byte for byte."""
import click

from edgereid.cli.params import POSITIVE, POSITIVE_FLOAT, SEED


@click.command("hil")
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False),
              help="int8 .tflite model")
@click.option("--board", required=True, help="board name (boards/<name>.yaml) or YAML path")
@click.option("--port", default=None, help="serial port of a real board, e.g. /dev/ttyACM0 (default: the board's run.kind: QEMU, or a "
                   "local process for the host board)")
@click.option("--n", "n", default=64, show_default=True, type=POSITIVE, help="random inputs to run")
@click.option("--seed", default=0, show_default=True, type=SEED, help="seed of the random inputs")
@click.option("--report", default=None, type=click.Path(dir_okay=False),
              help="write per-layer timings: .json for JSON, anything else Markdown")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="keep the firmware build here (default: a temporary folder)")
@click.option("--timeout", default=120.0, show_default=True, type=POSITIVE_FLOAT,
              help="seconds to wait for one inference")
@click.option("--no-dsp", "no_dsp", is_flag=True,
              help="build the kernels' portable loops even on a DSP core (-DEREID_NO_DSP)")
@click.pass_context
def hil(ctx, model_path, board, port, n, seed, report, out_dir, timeout, no_dsp):
    """Build the HIL image, run N seeded inputs, compare with LiteRT BUILTIN_REF."""
    from edgereid.hil import run_hil

    result = run_hil(model_path, board, n=n, port=port, seed=seed, report=report,
                     out_dir=out_dir, timeout=timeout, dsp=not no_dsp)
    click.echo(result.format())
    if report:
        click.echo(f"report: {report}")
    if not result.passed:
        ctx.exit(1)
