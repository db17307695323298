"""Write files so that a reader never sees half of one: temp file in the same folder, then rename."""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from edgereid.errors import EdgereidError


@contextlib.contextmanager
def open_atomic(path, mode="wb"):
    """Yield a file object; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes) -> Path:
    with open_atomic(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path, text: str) -> Path:
    with open_atomic(path, "w") as f:
        f.write(text)
    return Path(path)


def torch_save(obj, path) -> Path:
    import torch

    with open_atomic(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def save_figure(fig, path, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the suffix)."""
    path = Path(path)
    with open_atomic(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", **kwargs)
    return path


# ---- output folders: replaced as a whole, and only when edgereid wrote what they hold ----

OWNED_LIST = ".edgereid-files.json"
_SHOWN = 8  # foreign entries named in an error before "and N more"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _walk(folder: Path):
    """(relative path, path, is_dir) of everything under `folder`, parents first; symbolic
    links are reported as files (never followed)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for name in sorted(dirnames):
            p = here / name
            if p.is_symlink():
                dirnames.remove(name)
                filenames.append(name)
            else:
                yield p.relative_to(folder).as_posix(), p, True
        for name in sorted(filenames):
            p = here / name
            yield p.relative_to(folder).as_posix(), p, False


def write_owned_list(folder) -> Path:
    """Record every file and folder now under `folder` (with the SHA-256 of each file) as
    written by edgereid, in `folder`/.edgereid-files.json."""
    folder = Path(folder)
    files, dirs = {}, []
    for rel, p, is_dir in _walk(folder):
        if is_dir:
            dirs.append(rel)
        elif rel != OWNED_LIST and p.is_file() and not p.is_symlink():
            files[rel] = _digest(p)
    record = {"written_by": "edgereid", "note": "files edgereid wrote here; it replaces this folder only "
              "while it holds nothing else", "dirs": dirs, "files": files}
    return write_text(folder / OWNED_LIST, json.dumps(record, indent=1, sort_keys=True) + "\n")


def _owned_list(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / OWNED_LIST).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("files"), dict)
            and isinstance(record.get("dirs"), list)):
        return None
    return record


def foreign_entries(folder, legacy=None) -> list[str]:
    """What under `folder` edgereid did not write: paths relative to it ("x/" for a folder),
    a file edgereid wrote but that changed since marked "(changed)".

    Ownership comes from the folder's .edgereid-files.json; a folder without one (written
    by an older edgereid) may pass `legacy(relative path) -> bool`, which recognises the
    names of the files edgereid writes there."""
    folder = Path(folder)
    record = _owned_list(folder)
    owned_dirs = set(record["dirs"]) if record else set()
    foreign, dirs, with_files, skip = [], [], set(), ()
    for rel, p, is_dir in _walk(folder):
        if rel.startswith(skip):
            continue
        if is_dir:
            if record is not None and rel not in owned_dirs:
                foreign.append(rel + "/")
                skip += (rel + "/",)
            dirs.append(rel)
            continue
        parts = rel.split("/")
        with_files.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if rel == OWNED_LIST and record is not None:
            continue
        if p.is_symlink() or not p.is_file():
            foreign.append(rel)
        elif record is not None:
            if rel not in record["files"]:
                foreign.append(rel)
            else:
                try:
                    same = record["files"][rel] == _digest(p)
                except OSError:
                    same = False
                if not same:
                    foreign.append(f"{rel} (changed)")
        elif legacy is None or not legacy(rel):
            foreign.append(rel)
    if record is None:  # an empty folder is nobody's output: edgereid writes none
        foreign += [rel + "/" for rel in dirs if rel not in with_files]
    return foreign


def check_output_dir(path, error=EdgereidError, legacy=None, what="output folder") -> Path:
    """The absolute path of output folder `path`, once it is clear that replacing it loses
    nothing: raises `error` when it is not a folder, is (or holds) the working folder, or
    holds anything edgereid did not write (see foreign_entries)."""
    shown = path
    path = Path(path).resolve()
    if path.exists() and not path.is_dir():
        raise error(f"{what} {shown} exists and is not a folder")
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise error(f"{what} {shown} is {'the' if path == cwd else 'above the'} working folder: edgereid "
                    f"replaces its output folder as a whole, so name a folder inside it (e.g. {Path(shown) / 'out'})")
    if path.is_dir():
        foreign = foreign_entries(path, legacy)
        if foreign:
            more = f" and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else ""
            raise error(f"{what} {shown} holds files edgereid did not write: {', '.join(foreign[:_SHOWN])}{more}; "
                        "edgereid replaces its output folder as a whole, so move them away or choose another "
                        "(new or empty) folder")
    return path


@contextlib.contextmanager
def output_dir(path, error=EdgereidError, legacy=None, what="output folder"):
    """Write a folder that replaces `path` as a whole, never half-written.

    Checks `path` first (check_output_dir), yields a new empty folder beside it to write
    into; on success records what was written (.edgereid-files.json), checks `path` again
    and swaps the new folder in; on any error the new folder is removed and `path` is
    left as it was. Nothing besides `path` and the temporary siblings is touched."""
    path = check_output_dir(path, error, legacy, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        new = tmp / "new"
        new.mkdir()  # mkdtemp's folder is private (0700); this one gets the usual mode
        yield new
        write_owned_list(new)
        check_output_dir(path, error, legacy, what)
        _swap(new, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap(new: Path, path: Path) -> None:
    if not path.exists():
        os.replace(new, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    try:
        os.replace(path, old / "old")
    except BaseException:
        os.rmdir(old)
        raise
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old / "old", path)  # put it back; should that fail too, it stays in `old`
        os.rmdir(old)
        raise
    shutil.rmtree(old, ignore_errors=True)  # only edgereid's files: checked just before
