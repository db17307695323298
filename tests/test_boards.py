"""Board files: the shipped ones load, and every kind of mistake names file, field and fix."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgereid.boards import BOARDS_ENV, boards_dir, list_boards, load_board
from edgereid.errors import BoardError

SHIPPED = ["host", "mps2-an386", "mps2-an500", "mps3-an547", "nrf52840", "rpi5-cpu", "rpi5-npu",
           "stm32f746", "stm32h743"]
REPO = Path(__file__).resolve().parent.parent


def _base() -> dict:
    with open(REPO / "boards" / "mps2-an386.yaml") as f:
        return yaml.safe_load(f)


def _write(tmp_path, data, name="myboard") -> Path:
    data = copy.deepcopy(data)
    data.setdefault("name", name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _board_data(**changes):
    data = _base()
    data["name"] = "myboard"
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        if value is KeyError:
            del node[key]
        else:
            node[key] = value
    return data


def test_all_shipped_boards_load():
    assert set(SHIPPED) <= set(list_boards())
    for name in SHIPPED:
        b = load_board(name)
        assert b.name == name
        if b.is_mcu:
            assert b.toolchain.ldscript == f"boards/{name}/link.ld"
            assert b.toolchain.startup == f"boards/{name}/startup.c"
            assert b.memory.ram_bytes <= max(r.bytes for r in b.memory.regions)
        if b.run.kind == "qemu":
            assert b.run.qemu_machine == name and b.run.ticks_per_instruction > 0


def test_shipped_figures():
    an547 = load_board("mps3-an547")
    assert an547.mve and an547.run.ticks_per_instruction == pytest.approx(1 / 31.25)
    assert {r.name: r.origin for r in an547.memory.regions}["dtcm"] == 0x20000000
    h7 = load_board("stm32h743")
    assert h7.memory.arena_region == "axi_sram" and h7.memory.ram_bytes == 512 * 1024
    assert load_board("rpi5-npu").accelerator.tops == 13
    assert load_board("mps2-an386").run.ticks_per_instruction == pytest.approx(1 / 40)
    with pytest.raises(Exception):
        load_board("host").name = "x"  # frozen


def test_load_by_path_and_env_override(tmp_path, monkeypatch):
    path = _write(tmp_path, _board_data())
    assert load_board(path).name == "myboard"
    monkeypatch.setenv(BOARDS_ENV, str(tmp_path))
    assert boards_dir() == tmp_path
    assert list_boards() == ["myboard"]
    assert load_board("myboard").resolve("boards/x.ld") == tmp_path.parent / "boards/x.ld"


def test_typo_field_suggests_the_known_one(tmp_path):
    data = _board_data()
    data["clock_hzz"] = data.pop("clock_hz")
    path = _write(tmp_path, data)
    with pytest.raises(BoardError) as exc:
        load_board(path)
    msg = str(exc.value)
    assert str(path) in msg and "clock_hzz" in msg and "did you mean clock_hz?" in msg


def test_nested_typo_names_the_path(tmp_path):
    data = _board_data()
    data["memory"]["flash_byts"] = data["memory"].pop("flash_bytes")
    with pytest.raises(BoardError, match=r"memory\.flash_byts.*did you mean memory\.flash_bytes"):
        load_board(_write(tmp_path, data))


def test_missing_field(tmp_path):
    with pytest.raises(BoardError, match=r"field memory\.ram_bytes: missing"):
        load_board(_write(tmp_path, _board_data(memory__ram_bytes=KeyError)))


@pytest.mark.parametrize("field, value, pattern", [
    ("clock_hz", "fast", r"field clock_hz: expected .*integer.*got str 'fast'"),
    ("clock_hz", True, r"field clock_hz: expected .*got bool"),
    ("fpu", 1, r"field fpu: expected true or false, got int 1"),
    ("memory__flash_bytes", -4, r"field memory\.flash_bytes: expected an integer >= 1"),
    ("toolchain__cflags", "-O2", r"field toolchain\.cflags: expected a list"),
    ("core", "cortex-m99", r"field core: expected one of cortex-m4, cortex-m7, cortex-m55"),
    ("run__kind", "jtag", r"field run\.kind: expected one of qemu, serial"),
])
def test_wrong_type_or_enum(tmp_path, field, value, pattern):
    with pytest.raises(BoardError, match=pattern):
        load_board(_write(tmp_path, _board_data(**{field: value})))


def test_name_must_match_stem(tmp_path):
    data = _board_data()
    data["name"] = "otherboard"
    path = tmp_path / "myboard.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BoardError, match=r"field name: expected 'myboard'.*got 'otherboard'"):
        load_board(path)


def test_cross_field_rules(tmp_path):
    with pytest.raises(BoardError, match=r"run\.ticks_per_instruction: missing; required with run.kind qemu"):
        load_board(_write(tmp_path, _board_data(run__ticks_per_instruction=KeyError)))
    with pytest.raises(BoardError, match=r"field mve: expected false"):
        load_board(_write(tmp_path, _board_data(mve=True)))
    with pytest.raises(BoardError, match=r"provenance\.clock_hz: missing"):
        load_board(_write(tmp_path, _board_data(provenance__clock_hz=KeyError)))
    with pytest.raises(BoardError, match=r"provenance\.clock_hx: names no board field \(did you mean provenance\.clock_hz"):
        load_board(_write(tmp_path, _board_data(provenance__clock_hx="x")))
    with pytest.raises(BoardError, match=r"toolchain\.ldscript: expected a path"):
        load_board(_write(tmp_path, _board_data(toolchain__ldscript=None)))


def test_bad_yaml_and_unknown_board(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nmemory: [1, 2\n")
    with pytest.raises(BoardError, match=r"broken\.yaml: not valid YAML at line"):
        load_board(path)
    with pytest.raises(BoardError, match=r"unknown board 'nope'.*mps2-an386"):
        load_board("nope")


def test_cli_list_and_show():
    from edgereid.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, ["boards", "list"])
    assert res.exit_code == 0, res.output
    for name in SHIPPED:
        assert name in res.output
    res = runner.invoke(cli, ["boards", "show", "mps2-an386"])
    assert res.exit_code == 0, res.output
    assert "cortex-m4" in res.output and "0x20000000" in res.output and "mps2-an386" in res.output
    assert "SYSCLK_FRQ" in res.output  # provenance is shown


def test_cli_bad_board_is_one_line_exit_2(tmp_path):
    data = _board_data()
    data["clock_hzz"] = data.pop("clock_hz")
    _write(tmp_path, data)
    env = {**os.environ, BOARDS_ENV: str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "edgereid.cli.entry", "boards", "show", "myboard"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "clock_hzz" in lines[0]
    assert "Traceback" not in proc.stderr
