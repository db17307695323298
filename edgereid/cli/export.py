"""`edgereid export CHECKPOINT --format tflite|onnx [--int8] --out PATH`."""
import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["tflite", "onnx"]), default="tflite", show_default=True)
@click.option("--int8", is_flag=True, help="Full-integer int8 TFLite (PTQ on a seeded training subset).")
@click.option("--dataset", default="synthetic", show_default=True, help="Dataset spec for int8 calibration.")
@click.option("--calib-images", default=256, show_default=True, type=int)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
def export(checkpoint, fmt, int8, dataset, calib_images, out):
    """Export a checkpoint to TFLite (NHWC, float or int8) or ONNX, with edgereid metadata."""
    from edgereid.compress import load_model, quantize
    from edgereid.errors import EdgereidError
    from edgereid.export import export_onnx, export_tflite, read_export_metadata

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
