"""`edgereid train`: train a Re-ID model (CE + triplet), resumable bit for bit."""
from pathlib import Path

import click

from edgereid.engine import TrainConfig, load_checkpoint, train as train_model
from edgereid.models import list_models

_DEFAULTS = TrainConfig()


def _size(value: str):
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HxW, e.g. 128x64") from None
    return (h, w)


@click.command("train")
@click.option("--model", type=click.Choice(list_models()), default=_DEFAULTS.model, show_default=True)
@click.option("--data", default=_DEFAULTS.data, show_default=True, help="Dataset spec, e.g. market1501:/data/market.")
@click.option("--epochs", type=int, default=_DEFAULTS.epochs, show_default=True)
@click.option("--p", "p", type=int, default=_DEFAULTS.p, show_default=True, help="Identities per batch.")
@click.option("--k", "k", type=int, default=_DEFAULTS.k, show_default=True, help="Images per identity.")
@click.option("--lr", type=float, default=_DEFAULTS.lr, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default=_DEFAULTS.optimizer, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step"]), default=_DEFAULTS.schedule, show_default=True)
@click.option("--step-milestones", default="", help="Epochs for the step schedule, comma separated.")
@click.option("--warmup-epochs", type=int, default=_DEFAULTS.warmup_epochs, show_default=True)
@click.option("--weight-decay", type=float, default=_DEFAULTS.weight_decay, show_default=True)
@click.option("--width", type=float, default=_DEFAULTS.width, show_default=True, help="Channel width multiplier.")
@click.option("--embedding-dim", type=int, default=None, help="Embedding size (default: backbone channels).")
@click.option("--size", "image_size", default="128x64", show_default=True, help="Input HxW.")
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True)
@click.option("--out", default=_DEFAULTS.out, show_default=True, type=click.Path(file_okay=False))
@click.option("--num-workers", type=int, default=_DEFAULTS.num_workers, show_default=True)
@click.option("--max-minutes", type=float, default=None, help="Stop after a checkpoint once this much time has passed.")
@click.option("--checkpoint-every", "checkpoint_every_steps", type=int, default=0, show_default=True,
              help="Also checkpoint every N steps within an epoch.")
@click.option("--resume", is_flag=True, help="Continue OUT/last.pt; options not given are taken from it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train(ctx, resume, quiet, **options):
    """Train with label-smoothed CE + batch-hard triplet on P x K batches; writes OUT/last.pt."""
    options["image_size"] = _size(options["image_size"])
    options["step_milestones"] = tuple(int(m) for m in options["step_milestones"].split(",") if m.strip())
    options["progress"] = not quiet
    if resume:
        saved = load_checkpoint(Path(options["out"]) / "last.pt").get("train_config", {})
        given = {name for name in options
                 if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
        given |= {"progress", "out"}
        options = {**saved, **{name: value for name, value in options.items() if name in given}}
    cfg = TrainConfig.from_dict(options)
    path = train_model(cfg, resume=resume)
    ckpt = load_checkpoint(path)
    state = "finished" if ckpt.get("finished") else f"stopped at epoch {ckpt['epoch']} step {ckpt['step']} (--resume continues)"
    click.echo(f"{cfg.model} on {cfg.data}: {state}; {ckpt['global_step']} steps; checkpoint {path}")
