"""`edgereid search --board B --data SPEC [--latency-ms T] --out DIR`: hardware-aware CM-NAS."""
import click

from edgereid.cli.params import POSITIVE, POSITIVE_FLOAT, SEED


@click.command("search")
@click.option("--board", required=True, help="Board name (boards/*.yaml): its latency table, flash and RAM.")
@click.option("--data", default="synthetic-sysu", show_default=True,
              help="Dataset spec; visible+infrared data (e.g. synthetic-sysu) searches infrared->visible.")
@click.option("--latency-ms", type=POSITIVE_FLOAT, default=None,
              help="Latency budget per inference (ms, predicted from the board's table). Required.")
@click.option("--space", default="mcu", show_default=True, help="Search space (edgereid.search_space).")
@click.option("--supernet-epochs", type=POSITIVE, default=4, show_default=True)
@click.option("--population", type=click.IntRange(2, 1000), default=12, show_default=True)
@click.option("--generations", type=POSITIVE, default=5, show_default=True)
@click.option("--parents", type=POSITIVE, default=4, show_default=True,
              help="Best candidates kept per generation (at most --population).")
@click.option("--p", "p", type=click.IntRange(min=2), default=8, show_default=True, help="Identities per batch.")
@click.option("--k", "k", type=POSITIVE, default=4, show_default=True, help="Images per identity (per modality).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--max-minutes", type=POSITIVE_FLOAT, default=None,
              help="Stop supernet training after a checkpoint once this much time has passed (--resume continues).")
@click.option("--resume", is_flag=True, help="Continue OUT/supernet.pt and OUT/search_state.json.")
@click.option("--out", default="out/search", show_default=True, type=click.Path(file_okay=False))
@click.option("--quiet", is_flag=True, help="No progress bars.")
def search(board, data, latency_ms, space, supernet_epochs, population, generations, parents, p, k, seed,
           max_minutes, resume, out, quiet):
    """Search the space for the best network within the board's latency, flash and RAM budgets."""
    from edgereid.search.search import search as run

    if parents > population:
        raise click.BadParameter(f"{parents} parents for a population of {population}", param_hint="'--parents'")
    run(board, data, space=space, latency_ms=latency_ms, out=out, supernet_epochs=supernet_epochs,
        population=population, generations=generations, parents=parents, p=p, k=k, seed=seed, resume=resume,
        max_minutes=max_minutes, progress=not quiet, log=click.echo)
