"""`edgereid demo`: the main job on the embedded default (synthetic set); resumable."""
import click

from edgereid.cli.params import POSITIVE, POSITIVE_FLOAT, SEED

from edgereid.pipeline import DemoConfig, run_demo

_DEFAULTS = DemoConfig()


@click.command("demo")
@click.option("--out", default=_DEFAULTS.out, show_default=True, type=click.Path(file_okay=False))
@click.option("--data-root", default=_DEFAULTS.data_root, show_default=True, type=click.Path(file_okay=False))
@click.option("--seed", type=SEED, default=_DEFAULTS.seed, show_default=True)
@click.option("--model", default=_DEFAULTS.model, show_default=True)
@click.option("--epochs", type=POSITIVE, default=_DEFAULTS.epochs, show_default=True)
@click.option("--max-train-minutes", type=POSITIVE_FLOAT, default=_DEFAULTS.max_train_minutes, show_default=True)
@click.option("--search-board", default=_DEFAULTS.search_board, show_default=True,
              help="The search stage's board (its latency table, flash and RAM).")
@click.option("--search-latency-ms", type=POSITIVE_FLOAT, default=_DEFAULTS.search_latency_ms, show_default=True,
              help="The search stage's latency budget (ms, predicted on --search-board).")
@click.option("--search-twin", default=_DEFAULTS.search_twin, show_default=True,
              help="QEMU board that runs the searched network bit-exact (the search board's core).")
@click.option("--torch-threads", type=POSITIVE, default=_DEFAULTS.torch_threads, show_default=True,
              help="torch intra-op threads (more only on cores no other job uses).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(quiet, **options):
    """Synthesize the default set, train, evaluate, compress, build firmware, search for an MCU, and
    write OUT/report.md with plots and stage timings."""
    report = run_demo(DemoConfig(progress=not quiet, **options), echo=click.echo)
    click.echo(f"report: {report}")
