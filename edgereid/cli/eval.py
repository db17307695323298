"""`edgereid eval`: rank-1/5/10, mAP and mINP of a checkpoint under the dataset's protocol."""
import json
from pathlib import Path

import click

from edgereid.atomic import write_text
from edgereid.engine import evaluate, load_checkpoint
from edgereid.export.lce import LceEmbedder
from edgereid.metrics import plot_cmc
from edgereid.tflite import read_metadata, uses_lce


@click.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--data", default=None, help="Dataset spec (default: the one the checkpoint was trained on).")
@click.option("--rerank", is_flag=True, help="k-reciprocal re-ranking (Market-1501 protocol).")
@click.option("--flip", is_flag=True, help="Average the embeddings of each image and its mirror image.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the CMC curve(s) to this PNG.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Write the figures as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(checkpoint, data, rerank, flip, batch_size, plot, json_path, quiet):
    """Evaluate CHECKPOINT (or an exported .tflite); features L2-normalised, cosine distance.

    A .tflite runs in LiteRT, or in Larq Compute Engine's interpreter when it holds Lce* ops."""
    if str(checkpoint).endswith(".tflite"):
        meta = read_metadata(checkpoint)
        runner = LceEmbedder(checkpoint) if uses_lce(checkpoint) else checkpoint
        try:
            result = evaluate(runner, data or "synthetic", rerank=rerank, flip=flip, size=meta["input_size"],
                              batch_size=batch_size, progress=not quiet)
        finally:
            if isinstance(runner, LceEmbedder):
                runner.close()
        ckpt = {"model_name": f"{meta.get('model_name')} ({Path(checkpoint).name}"
                              f"{', Larq Compute Engine' if isinstance(runner, LceEmbedder) else ', LiteRT'})"}
    else:
        ckpt = load_checkpoint(checkpoint)
        if ckpt.get("model_args", {}).get("int8_ranges") is not None:
            import edgereid.compress.lce_qat  # noqa: F401  (a binary model's int8 LCE QAT form: its forward)
        data = data or ckpt.get("train_config", {}).get("data") or "synthetic"
        result = evaluate(ckpt, data, rerank=rerank, flip=flip, batch_size=batch_size, progress=not quiet)
    click.echo(f"{ckpt['model_name']} on {result.dataset} ({result.protocol} protocol)")
    click.echo(result.table())
    if plot:
        plot_cmc({name: r.cmc for name, r in result.results.items()}, plot,
                 title=f"{ckpt['model_name']} on {result.dataset}")
        click.echo(f"CMC curve: {plot}")
    if json_path:
        payload = {"checkpoint": str(checkpoint), "model": ckpt["model_name"], "dataset": result.dataset,
                   "protocol": result.protocol, "settings": result.settings, "results": result.rows(),
                   "cmc": {name: [float(v) for v in r.cmc] for name, r in result.results.items()}}
        write_text(json_path, json.dumps(payload, indent=2) + "\n")
