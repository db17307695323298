"""`edgereid hil`: run a model's firmware on a board or QEMU and check it byte for byte."""
import click

from edgereid.cli.params import POSITIVE, POSITIVE_FLOAT, SEED


@click.command("hil")
@click.option("--model", "model_path", default=None, type=click.Path(dir_okay=False),
              help="int8 .tflite model (or give --variant twice or more)")
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL",
              help="run a multi-variant image (build-firmware --variant): each variant selected in turn and "
                   "checked against its own .tflite")
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
def hil(ctx, model_path, variants, board, port, n, seed, report, out_dir, timeout, no_dsp):
    """Build the HIL image, run N seeded inputs, compare with LiteRT BUILTIN_REF."""
    from edgereid.hil import run_hil

    if variants:
        from edgereid.hil.variants import run_hil_variants

        if model_path is not None or report:
            raise click.UsageError("with --variant every model is given by --variant NAME=MODEL (no --model), "
                                   "and --report takes one model")
        results = run_hil_variants(list(variants), board, n=n, port=port, seed=seed, out_dir=out_dir,
                                   timeout=timeout, dsp=not no_dsp)
        for result in results:
            click.echo(f"== variant {result.model}")
            click.echo(result.format())
        if not all(r.passed for r in results):
            ctx.exit(1)
        return
    if model_path is None:
        raise click.UsageError("hil needs --model MODEL.tflite, or --variant NAME=MODEL.tflite twice or more")
    result = run_hil(model_path, board, n=n, port=port, seed=seed, report=report,
                     out_dir=out_dir, timeout=timeout, dsp=not no_dsp)
    click.echo(result.format())
    if report:
        click.echo(f"report: {report}")
    if not result.passed:
        ctx.exit(1)
