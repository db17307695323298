"""`edgereid compress CHECKPOINT --prune-macs 0.5 --criterion fpgm --quantize int8 --out DIR`."""
import json
from pathlib import Path

import click

from edgereid.cli.params import NON_NEGATIVE, POSITIVE, POSITIVE_FLOAT, SEED, FiniteFloat


@click.command("compress")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--dataset", default="synthetic", show_default=True)
@click.option("--prune-macs", type=FiniteFloat(0, 1, min_open=True, max_open=True), default=None,
              help="Target MACs as a fraction of the original (0 < F < 1), e.g. 0.5.")
@click.option("--prune-latency-ms", type=POSITIVE_FLOAT, default=None,
              help="Prune until --board's latency table predicts at most this many ms per inference.")
@click.option("--prune-fit", is_flag=True,
              help="Prune until the estimated flash and RAM fit --board (the firmware build checks it).")
@click.option("--criterion", type=click.Choice(["l1", "l2", "fpgm", "taylor", "random"]), default="l1", show_default=True)
@click.option("--prune-steps", type=POSITIVE, default=1, show_default=True, help="Iterative pruning steps.")
@click.option("--finetune-epochs", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--quantize", "quant", type=click.Choice(["int8", "none"]), default="int8", show_default=True)
@click.option("--qat-epochs", type=NON_NEGATIVE, default=0, show_default=True)
@click.option("--ptq-method", type=click.Choice(["nncf", "histogram"]), default="nncf", show_default=True,
              help="Post-training quantization: NNCF min/max + bias correction, or torchao histogram observers.")
@click.option("--calib-images", type=POSITIVE, default=256, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--weights", type=click.Choice(["int8", "int4", "mixed"]), default="int8", show_default=True,
              help="Weight precision: int8; int4 in every conv/depthwise/FC; or mixed: int4 layers chosen by "
                   "sensitivity to fit --flash-budget / the board's flash (histogram PTQ, or QAT with --qat-epochs).")
@click.option("--flash-budget", type=POSITIVE, default=None, help="Flash budget in bytes (mixed); default: --board's.")
@click.option("--board", default=None, help="Board whose flash is the budget; its firmware build measures flash.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
@click.pass_context
def compress(ctx, checkpoint, dataset, prune_macs, prune_latency_ms, prune_fit, criterion, prune_steps,
             finetune_epochs, quant, qat_epochs, ptq_method, calib_images, seed, weights, flash_budget, board, out):
    """Prune, fine-tune, quantize and export a checkpoint; writes model.pt, .tflite, report.json."""
    prune_to = _board_prune_target(prune_macs, prune_latency_ms, prune_fit, board)
    if prune_to is not None and (weights != "int8" or flash_budget is not None):
        raise click.UsageError("prune first (--prune-latency-ms / --prune-fit), then run `edgereid compress "
                               "OUT/model.pt --weights mixed ...` on the pruned checkpoint")
    if prune_to is None and (weights != "int8" or flash_budget is not None or board is not None):
        _int4(ctx, checkpoint, dataset, prune_macs, finetune_epochs, quant, qat_epochs, calib_images, seed,
              weights, flash_budget, board, out)
        return
    # Imported on use: the compress stage loads litert-torch / TensorFlow (seconds), which
    # every other command would pay for at start-up.
    from edgereid.compress import compress as run

    report = run(checkpoint, out, dataset=dataset, prune_macs=prune_macs, prune_to=prune_to, criterion=criterion,
                 prune_steps=prune_steps, finetune_epochs=finetune_epochs,
                 quantize=None if quant == "none" else quant, qat_epochs=qat_epochs, ptq_method=ptq_method,
                 calib_images=calib_images, seed=seed, log=click.echo)
    if "prune" in report:
        t = report["prune"]["target"]
        click.echo(f"pruned: {t['name']} {t['before']:.4g} -> {t['reached']:.4g} {t['unit']} "
                   f"(asked <= {t['value']:.4g}), MACs x{report['prune']['macs_ratio']:.3f}")
    click.echo(json.dumps({k: report[k] for k in ("before", "float", "int8") if k in report}, indent=2))


def _int4(ctx, checkpoint, dataset, prune_macs, finetune_epochs, quant, qat_epochs, calib_images, seed, weights,
          flash_budget, board, out):
    """--weights int4|mixed: edgereid.compress.compress_weights, flash measured by a firmware build."""
    explicit = {p for p in ("ptq_method", "quant") if ctx.get_parameter_source(p).name == "COMMANDLINE"}
    if prune_macs is not None or finetune_epochs or explicit:
        raise click.UsageError("--weights/--flash-budget/--board do not combine with --prune-macs, "
                               "--finetune-epochs, --quantize or --ptq-method: prune first, then run "
                               "`edgereid compress OUT/model.pt --weights mixed ...` (int4 uses histogram PTQ or QAT)")
    if weights == "int8":
        raise click.UsageError("--flash-budget/--board choose int4 layers: add --weights mixed (or int4)")
    from edgereid.boards import load_board
    from edgereid.compress.mixed_precision import compress_weights, tflite_weight_flash
    from edgereid.errors import FirmwareError

    if board is not None:
        board = load_board(board)
        if flash_budget is None:
            flash_budget = board.memory.flash_bytes
            if flash_budget is None:
                raise click.UsageError(f"board {board.name} has no flash size: give --flash-budget")

    def flash_of(path):
        """Firmware flash (text + data) for `board`; a model too big for it is sized on the roomiest
        board of the same core (an int8 model that overflows still needs a figure to plan from)."""
        if board is None:
            return tflite_weight_flash(path)
        from edgereid.boards import list_boards
        from edgereid.firmware import build_firmware

        same_core = sorted((b for b in map(load_board, list_boards()) if b.core == board.core
                            and (b.memory.flash_bytes or 0) > (board.memory.flash_bytes or 0)),
                           key=lambda b: -b.memory.flash_bytes)
        for target in [board] + same_core[:1]:
            try:
                size = build_firmware(path, target, Path(out) / f"firmware_{Path(path).stem}_{target.name}").size
                return size.flash_bytes
            except FirmwareError as exc:
                click.echo(f"note: {Path(path).name} does not build for {target.name} ({str(exc).splitlines()[0]})")
        click.echo(f"note: flash of {Path(path).name} estimated from its constant bytes")
        return tflite_weight_flash(path)

    report = compress_weights(checkpoint, out, mode=weights, flash_budget=flash_budget, dataset=dataset,
                              qat_epochs=qat_epochs, calib_images=calib_images, seed=seed, flash_of=flash_of,
                              log=click.echo)
    click.echo(json.dumps({k: report[k] for k in ("int8", "plan", "int4") if k in report}, indent=2))


def _board_prune_target(prune_macs, prune_latency_ms, prune_fit, board):
    """--prune-latency-ms T / --prune-fit with --board B: the board-aimed pruning target
    (a function of the input size, edgereid.latency.pruning), or None."""
    if prune_latency_ms is None and not prune_fit:
        return None
    if prune_macs is not None or (prune_latency_ms is not None and prune_fit):
        raise click.UsageError("give one pruning target: --prune-macs, --prune-latency-ms or --prune-fit")
    if board is None:
        raise click.UsageError("--prune-latency-ms / --prune-fit aim at a board: add --board")
    import functools

    from edgereid.boards import load_board
    from edgereid.latency.pruning import fit_target, latency_target

    b = load_board(board)
    return (functools.partial(fit_target, b) if prune_fit else
            lambda size: latency_target(b, prune_latency_ms, size))
