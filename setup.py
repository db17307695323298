"""Build hook: ship the repository's data files inside the package.

The C firmware sources (firmware/), the board files (boards/: YAML, latency tables,
linker scripts, start-up code) and the board probe script (tools/board_profile.py) live
at the top of the repository. A wheel gets a copy of them under edgereid/_share/, with
the same relative layout, which `edgereid.resources` finds when there is no checkout
around the package. Editable installs copy nothing: they read the checkout itself.
Everything else about the package is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHARE = ("edgereid", "_share")
# Keep in step with edgereid.resources.SHARED_TREES / SHARED_FILES.
TREES = ("firmware", "boards")
FILES = ("tools/board_profile.py",)
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "*.elf", "*.a", "*.so", ".*")


class BuildPyWithShare(build_py):
    """build_py, then copy firmware/, boards/ and the probe script into edgereid/_share."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib).joinpath(*SHARE)
        if dest.exists():
            shutil.rmtree(dest)
        for tree in TREES:
            src = ROOT / tree
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} is missing; build from a full checkout or sdist")
            shutil.copytree(src, dest / tree, ignore=IGNORE)
        for rel in FILES:
            src = ROOT / rel
            if not src.is_file():
                raise SystemExit(f"setup.py: {src} is missing; build from a full checkout or sdist")
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)

    def get_outputs(self, include_bytecode=True):
        outputs = list(super().get_outputs(include_bytecode))
        if getattr(self, "editable_mode", False):
            return outputs
        dest = Path(self.build_lib).joinpath(*SHARE)
        if dest.is_dir():
            outputs += [str(p) for p in sorted(dest.rglob("*")) if p.is_file()]
        return outputs


setup(cmdclass={"build_py": BuildPyWithShare})
