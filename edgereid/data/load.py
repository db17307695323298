"""`load_dataset(spec)`: one entry point from a "name:PATH" spec to a ReidDataset."""
from __future__ import annotations

import functools
import inspect
from pathlib import Path

from edgereid.data.dukemtmc import load_dukemtmc
from edgereid.data.market1501 import load_market1501, load_market_style
from edgereid.data.msmt17 import load_msmt17
from edgereid.data.records import ReidDataset
from edgereid.data.regdb import load_regdb
from edgereid.data.synthetic import DEFAULT_ROOT, DEFAULT_ROOT_B, ensure_synthetic
from edgereid.data.sysu import load_sysu
from edgereid.errors import DatasetError


def _synthetic_loaders(domain: str, default_root: Path, name: str):
    """The Market-layout and SYSU-layout loaders of one synthetic domain."""
    def market(path, seed: int | None = None, progress: bool = True):
        root = ensure_synthetic(path or default_root, seed=seed, progress=progress, domain=domain)
        return load_market_style(root / "market1501", name, num_cams=6, example="0002_c1s1_000128_00.jpg")

    def sysu(path, seed: int | None = None, progress: bool = True):
        root = ensure_synthetic(path or default_root, seed=seed, progress=progress, domain=domain)
        return load_sysu(root / "sysu", name=f"{name}-sysu")

    return market, sysu


_synthetic, _synthetic_sysu = _synthetic_loaders("a", DEFAULT_ROOT, "synthetic")
_synthetic_b, _synthetic_b_sysu = _synthetic_loaders("b", DEFAULT_ROOT_B, "synthetic-b")


def _needs_path(loader):
    @functools.wraps(loader)
    def load(path, **kw):
        if not path:
            raise DatasetError(f"dataset spec needs a path, e.g. '{loader.__name__[5:]}:/data/...'")
        return loader(path, **kw)
    return load


LOADERS = {
    "synthetic": _synthetic,
    "synthetic-sysu": _synthetic_sysu,
    "synthetic-b": _synthetic_b,            # the second camera network (domain shift studies)
    "synthetic-b-sysu": _synthetic_b_sysu,
    "market1501": _needs_path(load_market1501),
    "dukemtmc": _needs_path(load_dukemtmc),
    "msmt17": _needs_path(load_msmt17),
    "sysu": _needs_path(load_sysu),
    "regdb": _needs_path(load_regdb),
}


def load_dataset(spec: str, **kw) -> ReidDataset:
    """Load `spec` = NAME or NAME:PATH (NAME in LOADERS); keyword args go to the loader.

    `synthetic[:PATH]` and `synthetic-sysu[:PATH]` generate the default synthetic set at
    PATH (default data/synthetic) if it is not there yet; `synthetic-b[-sysu][:PATH]` the
    second camera network (default data/synthetic-b). `regdb:PATH` takes `trial` and
    `mode`.
    """
    name, _, path = str(spec).partition(":")
    if name not in LOADERS:
        raise DatasetError(f"unknown dataset {name!r} in spec {spec!r}; expected one of {', '.join(LOADERS)}")
    loader = LOADERS[name]
    try:
        inspect.signature(loader).bind(path, **kw)
    except TypeError as exc:
        raise DatasetError(f"dataset {name!r}: bad option ({exc})") from None
    return loader(Path(path) if path else None, **kw)
