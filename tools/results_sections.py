"""One results page filled by several benchmarks: each owns a named section.

`write_section(page, name, text)` replaces the text between `<!-- section: name -->`
and `<!-- end: name -->` (appending the section if the page lacks it), so that
tools/bench_cross_modal.py, tools/bench_search.py and the others can each rewrite their
own part of docs/results/search.md without touching the rest.
"""
from __future__ import annotations

from pathlib import Path

from edgereid.atomic import write_text


def write_section(page, name: str, text: str, title: str = "") -> Path:
    page = Path(page)
    begin, end = f"<!-- section: {name} -->", f"<!-- end: {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    old = page.read_text() if page.exists() else (f"# {title}\n" if title else "")
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    return write_text(page, new)
