"""`edgereid data ...`: generate and inspect datasets."""
from __future__ import annotations

import click

from edgereid.cli.params import SEED


@click.group("data")
def data():
    """Datasets: generate the synthetic set, summarise a dataset spec."""


@data.command("synth")
@click.option("--out", "out", type=click.Path(), default=None,
              help="Folder to create (Market-1501 layout in OUT/market1501, SYSU-MM01 in OUT/sysu); default "
                   "data/synthetic, data/synthetic-b for --domain b.")
@click.option("--domain", type=click.Choice(["a", "b"]), default="a", show_default=True,
              help="Camera network: a (the default set) or b (other viewpoints, light, colour casts, scenes, blur "
                   "and new identities: a second domain for domain-shift studies).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--ids", "num_ids", type=click.IntRange(4, 9999), default=600, show_default=True,
              help="Identities in total; half for training, half for test.")
@click.option("--images-per-id", type=click.IntRange(4, 60), default=16, show_default=True)
@click.option("--force", is_flag=True,
              help="Replace OUT if it holds an earlier synthetic set (anything else in it is an error, never deleted).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out, domain, seed, num_ids, images_per_id, force, quiet):
    """Write the seeded synthetic visible+infrared pedestrian set."""
    from edgereid.data.synthetic import DEFAULT_ROOT, DEFAULT_ROOT_B, read_manifest, synthesize

    out = out or (DEFAULT_ROOT if domain == "a" else DEFAULT_ROOT_B)
    root = synthesize(out, seed=seed, num_ids=num_ids, images_per_id=images_per_id,
                      overwrite=force, progress=not quiet, domain=domain)
    manifest = read_manifest(root)
    m, s = manifest["market1501"], manifest["sysu"]
    click.echo(f"wrote {root} (domain {domain}): market1501 {m['train_ids']}+{m['test_ids']} ids "
               f"({', '.join(f'{k} {v}' for k, v in m['images'].items())}); "
               f"sysu {s['images']} images (cams {s['infrared_cams']} infrared)")


@data.command("info")
@click.argument("spec")
@click.option("--trial", type=click.IntRange(1, 10), default=None, help="RegDB split (1..10).")
def info(spec, trial):
    """Summarise SPEC (e.g. synthetic, market1501:/data/Market-1501-v15.09.15)."""
    from edgereid.data import load_dataset

    kw = {} if trial is None else {"trial": trial}
    click.echo(load_dataset(spec, **kw).summary())
