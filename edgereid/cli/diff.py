"""`edgereid diff`: every layer's output in the firmware against the reference, and the
first layer that differs."""
import click

from edgereid.cli.params import NON_NEGATIVE, POSITIVE_FLOAT, SEED


def seed_or_npy(ctx, param, value):
    """A seed (0 .. 2**32-1) of the HIL runner's random input, or a path ending in .npy."""
    if value is None or isinstance(value, int):
        return value
    if value.lower().endswith(".npy"):
        return value
    try:
        return SEED.convert(value, param, ctx)
    except click.BadParameter:
        raise click.BadParameter(f"{value!r}: expected a seed in 0..{2**32 - 1} or a .npy file", ctx, param) from None


@click.command("diff")
@click.argument("model_path", type=click.Path(dir_okay=False))
@click.option("--board", required=True, help="board name (boards/<name>.yaml) or YAML path")
@click.option("--input", "input_", default="0", show_default=True, callback=seed_or_npy,
              help="seed of the random input, or a .npy holding the model's input (its dtype and shape)")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="write diff.json, diff.md and keep the firmware build here")
@click.option("--port", default=None, help="serial port of a real board (default: QEMU or the host process)")
@click.option("--timeout", default=300.0, show_default=True, type=POSITIVE_FLOAT,
              help="seconds to wait for the run")
@click.option("--sanitize", is_flag=True, help="host board: build under ASan + UBSan")
@click.option("--no-dsp", "no_dsp", is_flag=True,
              help="build the kernels' portable loops even on a DSP core (-DEREID_NO_DSP)")
@click.option("--patches", type=click.Choice(["off", "auto"]), default="off", show_default=True,
              help="build as build-firmware --patches does (maps inside a patch-based stage are not compared)")
@click.option("--ram-budget", "ram_budget", default=None, type=NON_NEGATIVE, help="as build-firmware's")
@click.pass_context
def diff(ctx, model_path, board, input_, out_dir, port, timeout, sanitize, no_dsp, patches, ram_budget):
    """Diff every intermediate tensor of MODEL_PATH's firmware against LiteRT BUILTIN_REF."""
    from edgereid.hil.diff import diff_firmware

    seed, npy = (input_, None) if isinstance(input_, int) else (0, input_)
    result = diff_firmware(model_path, board, seed=seed, input_path=npy, out_dir=out_dir, port=port,
                           timeout=timeout, sanitize=sanitize, dsp=not no_dsp, patches=patches,
                           ram_budget=ram_budget)
    click.echo(result.format())
    if out_dir:
        click.echo(f"report: {out_dir}/diff.md, {out_dir}/diff.json")
    if not result.passed:
        ctx.exit(1)
