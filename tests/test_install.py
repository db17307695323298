"""The package works outside a checkout: a regular (not editable) install into a fresh
venv carries the firmware sources, the board files and the board probe script, and the
commands run from a folder that has no repository around it.

The venv reuses this interpreter's site-packages for the dependencies (a .pth line, which
adds the folder without running the .pth files in it, so the checkout's editable install
stays invisible) and installs a copy of the source tree with --no-deps --no-index.
"""
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"
# What a clone holds besides tests and docs; build outputs and local state stay behind.
TOP_LEVEL_SKIP = {".git", ".venv", "out", "build", "data", "runs", "docs", "tests", ".pytest_cache",
                  ".import_linter_cache"}
ANYWHERE_SKIP = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc", "_share", "*.o", "*.elf")


def _ignore(folder, names):
    skip = set(ANYWHERE_SKIP(folder, names))
    if Path(folder) == REPO:
        skip |= TOP_LEVEL_SKIP.intersection(names)
    return skip

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                 reason="host gcc / make not installed")]


def _run(cmd, cwd, env, timeout=300):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, edgereid script, env) of a regular install of a copy of this tree."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=_ignore)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (venv / "lib" / PY / "site-packages" / "_edgereid_test_deps.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "EDGEREID_BOARDS")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    python = venv / "bin" / "python"
    # --ignore-installed: pip must not look at (let alone uninstall) the checkout's editable install it can see.
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "--ignore-installed", src], cwd=root, env=env)
    shutil.rmtree(src)                       # nothing may still point into the copy
    return python, venv / "bin" / "edgereid", env


@pytest.fixture(scope="module")
def work(installed, tmp_path_factory):
    """A folder outside the checkout, holding a small int8 model written by the installed package."""
    python, _, env = installed
    work = tmp_path_factory.mktemp("outside")
    _run([python, "-c", "import random; from edgereid.search_space import load_space, sample, to_tflite; "
          "to_tflite(sample(load_space('tiny'), random.Random(3)), 'm.tflite', seed=3)"], cwd=work, env=env)
    return work


def test_data_files_come_from_the_installed_package(installed, work):
    python, _, env = installed
    out = _run([python, "-c", "import edgereid, edgereid.resources as r; "
                "from edgereid.latency.runtime import firmware_version; "
                "print(edgereid.__file__); print(r.firmware_dir()); print(r.boards_dir()); "
                "print(r.board_probe_script()); print(firmware_version())"], cwd=work, env=env)
    package, firmware, boards, probe, version = out.split()
    site_dir = Path(python).parent.parent
    for path in (package, firmware, boards, probe):
        assert Path(path).is_relative_to(site_dir) and not Path(path).is_relative_to(REPO), path
    assert (Path(firmware) / "include" / "ereid_nn.h").is_file()
    assert (Path(firmware) / "hil" / "hil_main.c").is_file() and (Path(firmware) / "runtime").is_dir()
    assert (Path(boards) / "mps2-an386" / "link.ld").is_file() and (Path(boards) / "luts" / "host.json").is_file()
    assert Path(probe).name == "board_profile.py"
    # The same sources give the same runtime digest installed as in the checkout (tables stay comparable).
    from edgereid.latency.runtime import firmware_version

    assert version == firmware_version()


def test_boards_and_their_relative_paths_resolve_when_installed(installed, work):
    _, edgereid, env = installed
    listing = _run([edgereid, "boards", "list"], cwd=work, env=env)
    assert "host" in listing and "mps2-an386" in listing
    show = _run([edgereid, "boards", "show", "mps2-an386"], cwd=work, env=env)
    assert "latency table boards/luts/mps2-an386.json (present)" in show
    # The host's latency table (boards/luts/host.json, relative to the boards' root) is found.
    assert "host" in _run([edgereid, "latency", "m.tflite", "--board", "host"], cwd=work, env=env)


def test_build_firmware_on_host_outside_the_checkout(installed, work):
    _, edgereid, env = installed
    out = _run([edgereid, "build-firmware", "--model", "m.tflite", "--board", "host", "--out", "fw"],
               cwd=work, env=env)
    assert "host" in out
    assert (work / "fw" / "Makefile").is_file() and (work / "fw" / "firmware").is_file()
    assert list((work / "fw" / "kernels").rglob("*.c"))


def test_hil_on_host_outside_the_checkout(installed, work):
    _, edgereid, env = installed
    out = _run([edgereid, "hil", "--model", "m.tflite", "--board", "host", "--n", "4"], cwd=work, env=env)
    assert "PASS" in out
