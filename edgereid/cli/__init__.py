"""The `edgereid` command: a thin click layer over the library.

Each pipeline stage keeps its commands in its own module here; this file only
assembles them and turns library errors into one-line messages.
"""
import importlib
import sys

import click

from edgereid.errors import EdgereidError

# (module, attribute) of each command or group, in the order `--help` lists them.
_COMMANDS = [
    ("edgereid.cli.boards", "boards"),
    ("edgereid.cli.data", "data"),
    ("edgereid.cli.models", "models"),
    ("edgereid.cli.train", "train"),
    ("edgereid.cli.eval", "eval_cmd"),
    ("edgereid.cli.compress", "compress"),
    ("edgereid.cli.export", "export"),
    ("edgereid.cli.firmware", "build_firmware"),
    ("edgereid.cli.hil", "hil"),
    ("edgereid.cli.diff", "diff"),
    ("edgereid.cli.latency", "profile"),
    ("edgereid.cli.latency", "latency"),
    ("edgereid.cli.search", "search"),
    ("edgereid.cli.demo", "demo"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgereid")
def cli():
    """Person re-identification models onto microcontrollers and small NPUs."""


for _module, _attr in _COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))


def main(argv=None):
    try:
        rv = cli.main(args=argv, standalone_mode=False)
        if isinstance(rv, int):  # ctx.exit(code) inside a command
            sys.exit(rv)
    except EdgereidError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
