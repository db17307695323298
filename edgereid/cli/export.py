"""`edgereid export CHECKPOINT --format tflite|onnx|lce [--int8] --out PATH`."""
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
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
def export(checkpoint, fmt, int8, dataset, calib_images, lce_float, debug_outputs, out):
    """Export a checkpoint to TFLite (NHWC, float or int8), ONNX, or the LCE format, with edgereid metadata."""
    from edgereid.compress import load_model, quantize
    from edgereid.errors import EdgereidError
    from edgereid.export import export_onnx, export_tflite, read_export_metadata

    if fmt == "lce":
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
    model, ckpt = load_model(checkpoint)
    pre, name = ckpt["preprocess"], ckpt["model_name"]
    if fmt == "onnx":
        if int8:
            raise EdgereidError("--int8 applies to --format tflite only")
        path = export_onnx(model, out, preprocess=pre, model_name=name)
    else:
        if int8:  # export converts a quantized graph; PTQ happens here
            from edgereid.compress.pipeline import calibration_loader
            from edgereid.data import load_dataset

            model = quantize(model, calibration_loader(load_dataset(dataset).train, pre["size"], calib_images))
        path = export_tflite(model, out, int8=int8, preprocess=pre, model_name=name)
    meta = read_export_metadata(path)
    click.echo(f"wrote {path} ({path.stat().st_size} bytes, {fmt}{' int8' if int8 else ''})")
    for io in meta.get("inputs", []) + meta.get("outputs", []):
        click.echo(f"  {io['name']}: {io['dtype']} {io['shape']} scale={io['scale']} zero_point={io['zero_point']}")
