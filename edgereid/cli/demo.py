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
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(quiet, **options):
    """Synthesize the default set, train, evaluate, and write OUT/report.md with plots."""
    report = run_demo(DemoConfig(progress=not quiet, **options), echo=click.echo)
    click.echo(f"report: {report}")
