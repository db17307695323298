"""`edgereid models`: the registered backbones with their size and cost."""
import click

from edgereid.cli.params import POSITIVE, POSITIVE_FLOAT

from edgereid.models import build_model, list_models, model_complexity


@click.command("models")
@click.option("--num-classes", type=POSITIVE, default=751, show_default=True,
              help="Classifier size (not counted: train only).")
@click.option("--width", type=POSITIVE_FLOAT, default=1.0, show_default=True, help="Channel width multiplier.")
@click.option("--embedding-dim", type=POSITIVE, default=None, help="Embedding size (default: backbone channels).")
def models(num_classes, width, embedding_dim):
    """Parameters and MACs of the deployed (eval-mode) model at 256x128 and 128x64."""
    click.echo(f"{'model':<10} {'params':>10} {'emb dim':>8} {'MACs 256x128':>14} {'MACs 128x64':>13}")
    for name in list_models():
        model = build_model(name, num_classes, embedding_dim=embedding_dim, width=width)
        params, macs_full = model_complexity(model, (256, 128))
        _, macs_small = model_complexity(model, (128, 64))
        click.echo(f"{name:<10} {params / 1e6:>9.2f}M {model.embedding_dim:>8d} {macs_full / 1e6:>12.1f}M "
                   f"{macs_small / 1e6:>12.1f}M")
