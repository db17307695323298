"""Option types shared by the commands: every number a user types is checked by click.

A value out of range is click's usage error (exit code 2) naming the option and the
range, before any stage runs: nothing is silently clamped, dropped or ignored.
"""
import math
import string

import click

# Seeds go to numpy (default_rng, np.random.seed), torch and random: what all of them take.
SEED = click.IntRange(0, 2**32 - 1)
POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)


class FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses nan and inf (which pass every range comparison)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


POSITIVE_FLOAT = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE_FLOAT = FiniteFloat(min=0)
PROBABILITY = FiniteFloat(min=0, max=1)


def image_size(ctx, param, value):
    """HxW (e.g. 128x64), each side at least 16 pixels: a click callback."""
    if value is None or isinstance(value, tuple):
        return value
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected HxW, e.g. 128x64", ctx, param) from None
    if min(h, w) < 16:
        raise click.BadParameter(f"{value!r}: height and width must each be at least 16", ctx, param)
    return (h, w)


def positive_int_list(ctx, param, value):
    """Comma-separated positive integers (e.g. 20,40), empty for none: a click callback."""
    if value is None or isinstance(value, tuple):
        return value
    out = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        try:
            n = int(item)
        except ValueError:
            n = 0
        if n < 1:
            raise click.BadParameter(f"{value!r}: expected positive integers separated by commas, e.g. 20,40; "
                                     f"got {item!r}", ctx, param)
        out.append(n)
    return tuple(out)


def shell_template(*fields: str):
    """A click callback for a command template whose only placeholders are {field}s, e.g.
    "pyocd flash {elf}"; a literal brace is written doubled ({{ or }}). Every field
    named must appear at least once."""
    allowed = ", ".join("{" + f + "}" for f in fields)

    def check(ctx, param, value):
        if value is None:
            return value
        used = set()
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise click.BadParameter(f"{value!r}: {exc} (the only placeholders are {allowed}; "
                                     "write a literal brace as {{ or }})", ctx, param) from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if name not in fields or spec or conversion:
                shown = "{" + name + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
                raise click.BadParameter(f"{value!r}: unknown placeholder {shown}; the only placeholders are "
                                         f"{allowed} (write a literal brace as {{{{ or }}}})", ctx, param)
            used.add(name)
        missing = [f for f in fields if f not in used]
        if missing:
            raise click.BadParameter(f"{value!r}: must contain " + ", ".join("{" + f + "}" for f in missing),
                                     ctx, param)
        return value

    return check
