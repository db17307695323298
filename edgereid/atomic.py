"""Write files so that a reader never sees half of one: temp file in the same folder, then rename."""
import contextlib
import os
import tempfile
from pathlib import Path


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
