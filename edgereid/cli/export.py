"""`edgereid export CHECKPOINT --format tflite|onnx|lce [--int8] [--modality visible|infrared] --out PATH`."""
import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["tflite", "onnx", "lce"]), default="tflite", show_default=True,
              help="lce: a binary model (bireid_resnet18) as TFLite in Larq Compute Engine's format, int8.")
@click.option("--int8", is_flag=True, help="Full-integer int8 TFLite (PTQ on a seeded training subset).")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset spec for int8 calibration.")
@click.option("--calib-images", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--lce-float", is_flag=True, help="--format lce: float32 real-valued layers instead of int8.")
@click.option("--debug-outputs", is_flag=True,
              help="--format lce: every bitpacked tensor also a graph output (for exactness checks).")
@click.option("--modality", type=click.Choice(["visible", "infrared"]), default=None,
              help="A model with split (per-modality) BNs exports one modality: its BNs fold into the convs; "
                   "int8 calibrates on that modality's training images.")
@click.option("--align-to", "align_to", default=None, type=click.Path(dir_okay=False, exists=True),
              help="--int8 --modality M: set int8 filter values that differ from this export of the other "
                   "modality only by a rounding tie to its values (one firmware image then stores them once)")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
def export(checkpoint, fmt, int8, dataset, calib_images, lce_float, debug_outputs, modality, align_to, out):
    """Export a checkpoint to TFLite (NHWC, float or int8), ONNX, or the LCE format, with edgereid metadata."""
    from edgereid.compress import load_model, quantize
    from edgereid.errors import EdgereidError
    from edgereid.export import export_onnx, export_tflite, read_export_metadata, select_modality

    if fmt == "lce":
        if modality is not None:
            raise EdgereidError("--modality applies to --format tflite and onnx (binary models have no split BNs)")
        from edgereid.data import load_dataset
        from edgereid.engine import load_checkpoint
        from edgereid.export.lce import export_lce_checkpoint, lce_op_counts

        ckpt = load_checkpoint(checkpoint)
        records = load_dataset(dataset).train if not lce_float else None
        res = export_lce_checkpoint(ckpt, out, records, calib_images, int8=not lce_float, debug=debug_outputs,
                                    source=f"checkpoint {checkpoint}")
        click.echo(f"wrote {res.path} ({len(res.data)} bytes, Larq Compute Engine format, "
                   f"{'float' if lce_float else 'int8'})")
        click.echo("  ops: " + ", ".join(f"{k} x{v}" for k, v in lce_op_counts(res.data).items()))
        for v in (res.input, res.output):
            click.echo(f"  {v.name}: {v.dtype} {list(v.shape)} scale={v.scale} zero_point={v.zero_point}")
        if res.debug_outputs:
            click.echo(f"  + {len(res.debug_outputs)} bitpacked debug outputs")
        return
    if align_to is not None and not (fmt == "tflite" and int8):
        raise EdgereidError("--align-to applies to --format tflite --int8 (it aligns int8 filters)")
    model, ckpt = load_model(checkpoint)
    pre, name = ckpt["preprocess"], ckpt["model_name"]
    model = select_modality(model, modality, name)   # split BNs: one modality's, before PTQ folds them
    if fmt == "onnx":
        if int8:
            raise EdgereidError("--int8 applies to --format tflite only")
        path = export_onnx(model, out, preprocess=pre, model_name=name, modality=modality)
    else:
        if int8:  # export converts a quantized graph; PTQ happens here
            from edgereid.compress.pipeline import calibration_loader
            from edgereid.data import load_dataset

            records = load_dataset(dataset).train
            if modality is not None:  # activation ranges of the modality the export runs on
                records = [r for r in records if r.modality == modality]
                if not records:
                    raise EdgereidError(f"--modality {modality}: dataset {dataset} has no {modality} training "
                                        "images to calibrate on (use a two-modality dataset, e.g. synthetic-sysu)")
            model = quantize(model, calibration_loader(records, pre["size"], calib_images))
        path = export_tflite(model, out, int8=int8, preprocess=pre, model_name=name, modality=modality)
        if align_to is not None:
            from edgereid.export.shared_weights import align_rounding_ties

            try:
                _, ties = align_rounding_ties(align_to, path, out=path)
            except EdgereidError:
                path.unlink()   # not the export that was asked for
                raise
            click.echo(f"aligned to {align_to}: {ties.values} int8 filter values at rounding ties in "
                       f"{ties.channels} channels; {ties.filters} filters now equal its filters")
    meta = read_export_metadata(path)
    click.echo(f"wrote {path} ({path.stat().st_size} bytes, {fmt}{' int8' if int8 else ''})")
    for io in meta.get("inputs", []) + meta.get("outputs", []):
        click.echo(f"  {io['name']}: {io['dtype']} {io['shape']} scale={io['scale']} zero_point={io['zero_point']}")
