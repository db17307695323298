"""`edgereid compress CHECKPOINT --prune-macs 0.5 --criterion fpgm --quantize int8 --out DIR`."""
import json

import click

from edgereid.cli.params import NON_NEGATIVE, POSITIVE, SEED, FiniteFloat


@click.command("compress")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--dataset", default="synthetic", show_default=True)
@click.option("--prune-macs", type=FiniteFloat(0, 1, min_open=True, max_open=True), default=None,
              help="Target MACs as a fraction of the original (0 < F < 1), e.g. 0.5.")
@click.option("--criterion", type=click.Choice(["l1", "l2", "fpgm", "taylor", "random"]), default="l1", show_default=True)
@click.option("--prune-steps", type=POSITIVE, default=1, show_default=True, help="Iterative pruning steps.")
@click.option("--finetune-epochs", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--quantize", "quant", type=click.Choice(["int8", "none"]), default="int8", show_default=True)
@click.option("--qat-epochs", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--ptq-method", type=click.Choice(["nncf", "histogram"]), default="nncf", show_default=True,
              help="Post-training quantization: NNCF min/max + bias correction, or torchao histogram observers.")
@click.option("--calib-images", type=POSITIVE, default=256, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
def compress(checkpoint, dataset, prune_macs, criterion, prune_steps, finetune_epochs, quant, qat_epochs,
             ptq_method, calib_images, seed, out):
    """Prune, fine-tune, quantize and export a checkpoint; writes model.pt, .tflite, report.json."""
    # Imported on use: the compress stage loads litert-torch / TensorFlow (seconds), which
    # every other command would pay for at start-up.
    from edgereid.compress import compress as run

    report = run(checkpoint, out, dataset=dataset, prune_macs=prune_macs, criterion=criterion,
                 prune_steps=prune_steps, finetune_epochs=finetune_epochs,
                 quantize=None if quant == "none" else quant, qat_epochs=qat_epochs, ptq_method=ptq_method,
                 calib_images=calib_images, seed=seed, log=click.echo)
    click.echo(json.dumps({k: report[k] for k in ("before", "float", "int8") if k in report}, indent=2))
