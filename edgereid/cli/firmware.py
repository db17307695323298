"""`edgereid build-firmware`: .tflite -> C project -> build, with a size check against the board."""
import click

from edgereid.cli.params import NON_NEGATIVE
from edgereid.firmware import build_firmware as _build, format_report


@click.command("build-firmware")
@click.option("--model", "model_path", default=None, type=click.Path(dir_okay=False),
              help="int8 .tflite model (or give --variant twice or more)")
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL",
              help="one image for several .tflite of one graph (e.g. a split-BN model exported per modality: "
                   "--variant visible=v.tflite --variant infrared=i.tflite): equal constants stored once, the "
                   "rest per variant, ereid_model_set_variant(index) picks one (index = order given)")
@click.option("--board", required=True, help="board name (boards/<name>.yaml) or path to a board YAML")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output project folder")
@click.option("--hil", is_flag=True, help="build the hardware-in-the-loop image (firmware/hil) instead of main.c")
@click.option("--report", is_flag=True, help="print the per-layer table (MACs, weights, live arena bytes)")
@click.option("--no-dsp", "no_dsp", is_flag=True,
              help="compile the kernels' portable loops even on a DSP core (-DEREID_NO_DSP), for benchmarks")
@click.option("--patches", type=click.Choice(["off", "auto"]), default="off", show_default=True,
              help="auto: run the leading layers patch by patch (stripes, overlap recomputed) when that "
                   "lowers the arena, or meets --ram-budget with the least recomputation")
@click.option("--ram-budget", "ram_budget", default=None, type=NON_NEGATIVE,
              help="bytes the activation arena may take; a plan over it is an error")
def build_firmware(model_path, variants, board, out_dir, hil, report, no_dsp, patches, ram_budget):
    """Compile an int8 TFLite model into a C project for BOARD and build it."""
    if variants:
        _build_variants(model_path, variants, board, out_dir, hil, report, no_dsp, patches, ram_budget)
        return
    if model_path is None:
        raise click.UsageError("build-firmware needs --model MODEL.tflite, or --variant NAME=MODEL.tflite "
                               "twice or more")
    result = _build(model_path, board, out_dir, hil=hil, dsp=not no_dsp, patches=patches, ram_budget=ram_budget)
    if report:
        click.echo(format_report(result))
    s = result.size
    click.echo(f"built {result.executable} for {result.board.name}: flash {s.flash_bytes:,} B, "
               f"RAM {s.ram_bytes:,} B (arena {s.arena_bytes:,} B)")


def _build_variants(model_path, variants, board, out_dir, hil, report, no_dsp, patches, ram_budget):
    from edgereid.firmware.variants import build_variant_firmware, format_variant_report

    if model_path is not None:
        raise click.UsageError("give either --model or --variant NAME=MODEL (every variant by --variant), not both")
    if patches != "off" or ram_budget is not None:
        raise click.UsageError("--patches and --ram-budget apply to one model; a multi-variant image plans per layer")
    result = build_variant_firmware(list(variants), board, out_dir, hil=hil, dsp=not no_dsp)
    if report:
        click.echo(format_variant_report(result))
    s = result.size
    click.echo(f"built {result.executable} for {result.board.name} with {len(result.variants)} variants "
               f"({', '.join(v.name for v in result.variants)}): flash {s.flash_bytes:,} B, RAM {s.ram_bytes:,} B "
               f"(arena {s.arena_bytes:,} B)")
