"""`edgereid train`: train a Re-ID model (CE + triplet), resumable bit for bit; under
`torchrun --nproc_per_node N -m edgereid.cli.entry train ...` N processes train it together."""
import json
import os
from pathlib import Path

import click

from edgereid.cli.params import (NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, PROBABILITY, SEED,
                                  image_size, positive_int_list)
from edgereid.engine import TrainConfig, load_checkpoint, train as train_model
from edgereid.models import list_models
from edgereid.search_space import load_architecture

_DEFAULTS = TrainConfig()


def _model_args(values) -> dict:
    """--model-arg KEY=VALUE (repeatable); VALUE read as JSON (true, 0.5, "x"), else kept as a string."""
    parsed = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE, e.g. binary=false", param_hint="--model-arg")
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return parsed


@click.command("train")
@click.option("--model", type=click.Choice(list_models()), default=_DEFAULTS.model, show_default=True)
@click.option("--arch", "arch", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Train a search-space architecture (e.g. `edgereid search`'s OUT/best.json) instead of --model.")
@click.option("--data", default=_DEFAULTS.data, show_default=True, help="Dataset spec, e.g. market1501:/data/market.")
@click.option("--epochs", type=POSITIVE, default=_DEFAULTS.epochs, show_default=True)
@click.option("--p", "p", type=click.IntRange(min=2), default=_DEFAULTS.p, show_default=True,
              help="Identities per batch.")
@click.option("--k", "k", type=POSITIVE, default=_DEFAULTS.k, show_default=True, help="Images per identity.")
@click.option("--lr", type=POSITIVE_FLOAT, default=_DEFAULTS.lr, show_default=True)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default=_DEFAULTS.optimizer, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step"]), default=_DEFAULTS.schedule, show_default=True)
@click.option("--step-milestones", default="", callback=positive_int_list,
              help="Epochs for the step schedule, comma separated.")
@click.option("--warmup-epochs", type=NON_NEGATIVE, default=_DEFAULTS.warmup_epochs, show_default=True)
@click.option("--weight-decay", type=NON_NEGATIVE_FLOAT, default=_DEFAULTS.weight_decay, show_default=True)
@click.option("--width", type=POSITIVE_FLOAT, default=_DEFAULTS.width, show_default=True,
              help="Channel width multiplier.")
@click.option("--embedding-dim", type=POSITIVE, default=None, help="Embedding size (default: backbone channels).")
@click.option("--size", "image_size", default="128x64", show_default=True, callback=image_size,
              help="Input HxW, each at least 16.")
@click.option("--seed", type=SEED, default=_DEFAULTS.seed, show_default=True)
@click.option("--out", default=_DEFAULTS.out, show_default=True, type=click.Path(file_okay=False))
@click.option("--num-workers", type=NON_NEGATIVE, default=_DEFAULTS.num_workers, show_default=True)
@click.option("--max-minutes", type=POSITIVE_FLOAT, default=None,
              help="Stop after a checkpoint once this much time has passed.")
@click.option("--checkpoint-every", "checkpoint_every_steps", type=NON_NEGATIVE, default=0, show_default=True,
              help="Also checkpoint every N steps within an epoch.")
@click.option("--model-arg", "model_kwargs", multiple=True, metavar="KEY=VALUE",
              help="More model arguments, e.g. binary=false (bireid_resnet18's real-valued twin).")
@click.option("--init-from", default=None, type=click.Path(dir_okay=False),
              help="Start from this checkpoint of the same model (a binary model from its real-valued twin).")
@click.option("--kr-gal", type=NON_NEGATIVE_FLOAT, default=None, help="BiRe-ID KR-GAL with this lambda (e.g. 1e-4).")
@click.option("--fr-gal", type=NON_NEGATIVE_FLOAT, default=None, help="BiRe-ID FR-GAL with this mu (e.g. 1e-3).")
@click.option("--gal-adversarial", type=NON_NEGATIVE_FLOAT, default=_DEFAULTS.gal_adversarial, show_default=True,
              help="Weight of the GAL adversarial terms.")
@click.option("--gal-warmup-epochs", type=NON_NEGATIVE_FLOAT, default=_DEFAULTS.gal_warmup_epochs,
              show_default=True, help="Ramp the GAL terms linearly from 0 over this many epochs.")
@click.option("--cross-modal", is_flag=True, default=False,
              help="CM-NAS two-modality training (visible+infrared data, e.g. --data synthetic-sysu): P x (K visible "
                   "+ K infrared) identity-aligned batches, CE + four-way triplet + SP + CMMD.")
@click.option("--triplet-margin", type=POSITIVE_FLOAT, default=_DEFAULTS.triplet_margin, show_default=True,
              help="Batch-hard triplet margin (CM-NAS uses 0.4).")
@click.option("--sp-weight", type=NON_NEGATIVE_FLOAT, default=_DEFAULTS.sp_weight, show_default=True,
              help="--cross-modal: weight of the SP (Gram-matrix) term.")
@click.option("--cmmd-weight", type=NON_NEGATIVE_FLOAT, default=_DEFAULTS.cmmd_weight, show_default=True,
              help="--cross-modal: weight of the CMMD term.")
@click.option("--channel-aug", type=PROBABILITY, default=_DEFAULTS.channel_aug, show_default=True,
              help="Probability of showing a visible image as one of its colour channels in all three "
                   "(cross-modal channel augmentation; infrared images are unchanged).")
@click.option("--bn-switches", default=None, metavar="shared|split|BITS",
              help="Make every BN switchable per modality: all shared, all split, or one 0/1 per BN in build "
                   "order (1 = split).")
@click.option("--lce-qat", is_flag=True, default=False,
              help="Quantization-aware fine-tuning for the int8 LCE export: start from --init-from's binary "
                   "bireid_resnet18, fix the export's int8 ranges (calibrated on its training images) and train the "
                   "model whose forward is the .tflite's int8 values (float gradients). Its data, model and batch "
                   "options are the checkpoint's; --epochs defaults to 2, --lr to 5e-5, no weight decay.")
@click.option("--resume", is_flag=True, help="Continue OUT/last.pt; options not given are taken from it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train(ctx, resume, quiet, lce_qat, **options):
    """Train with label-smoothed CE + batch-hard triplet on P x K batches; writes OUT/last.pt."""
    options["progress"] = not quiet
    if lce_qat and not resume:
        _train_lce_qat(ctx, options)
        return
    options["model_kwargs"] = _model_args(options["model_kwargs"])
    arch = options.pop("arch")
    if arch is not None:   # a searched network: model "arch", the architecture in its arguments
        if ctx.get_parameter_source("model") != click.core.ParameterSource.DEFAULT:
            raise click.UsageError("give --model or --arch, not both")
        options["model"] = "arch"
        options["model_kwargs"] = {**options["model_kwargs"], "architecture": load_architecture(arch).to_dict()}
    if resume:
        saved = load_checkpoint(Path(options["out"]) / "last.pt").get("train_config", {})
        given = {name for name in options
                 if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
        given |= {"progress", "out"}
        options = {**saved, **{name: value for name, value in options.items() if name in given}}
    cfg = TrainConfig.from_dict(options)
    if cfg.model_kwargs.get("int8_ranges") is not None:  # resuming a --lce-qat run
        import edgereid.compress.lce_qat  # noqa: F401  (its forward)
    path = train_model(cfg, resume=resume)
    if os.environ.get("RANK", "0") != "0":   # under torchrun, rank 0 reports
        return
    ckpt = load_checkpoint(path)
    state = "finished" if ckpt.get("finished") else f"stopped at epoch {ckpt['epoch']} step {ckpt['step']} (--resume continues)"
    click.echo(f"{cfg.model} on {cfg.data}: {state}; {ckpt['global_step']} steps; checkpoint {path}")


def _train_lce_qat(ctx, options) -> None:
    """`--lce-qat`: the QAT config from the --init-from checkpoint (edgereid.compress.lce_qat), then train."""
    from edgereid.compress.lce_qat import lce_qat_config

    if not options.get("init_from"):
        raise click.UsageError("--lce-qat fine-tunes a trained binary model: give its checkpoint with --init-from")

    def given(name):
        return ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT

    keep = ("num_workers", "max_minutes", "checkpoint_every_steps", "progress", "seed", "warmup_epochs")
    cfg = lce_qat_config(options["init_from"], None, epochs=options["epochs"] if given("epochs") else 2,
                         lr=options["lr"] if given("lr") else 5e-5, out=options["out"],
                         **{k: options[k] for k in keep if k == "progress" or given(k)})
    path = train_model(cfg)
    ckpt = load_checkpoint(path)
    state = ("finished" if ckpt.get("finished")
             else f"stopped at epoch {ckpt['epoch']} step {ckpt['step']} (--resume continues)")
    click.echo(f"{cfg.model} (int8 LCE quantization-aware) on {cfg.data}: {state}; {ckpt['global_step']} steps; "
               f"checkpoint {path}")
