"""Issue 15, items 3 and 5: outputs never destroy what the user had, and board files
cannot inject Make, shell or ssh options.

- An output folder (build-firmware --out, data synth --force) is replaced only while it
  holds nothing but what edgereid wrote there (its .edgereid-files.json); anything else
  is an error naming the foreign files, which are left as they were. `--out .` is a
  clear error. Nothing half-written is left behind.
- toolchain.cc / toolchain.cflags are one plain word each (no `$(shell ...)`, no `;`);
  ssh host and user names are names, never options; ssh and scp get `--` before them.
"""
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edgereid import atomic
from edgereid.boards import load_board, trust
from edgereid.cli import cli, main
from edgereid.errors import BoardError, DatasetError, EdgereidError, FirmwareError, LatencyError

REPO = Path(__file__).resolve().parents[1]
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="host gcc/make not installed")

CHAIN = {"name": "tiny", "seed": 1,
         "inputs": [{"name": "x", "shape": [1, 6, 6, 3], "scale": 0.05, "zero_point": -4}],
         "ops": [{"op": "CONV_2D", "name": "c1", "filters": 4, "kernel": [3, 3], "stride": [1, 1],
                  "padding": "SAME", "activation": "RELU"}]}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    pytest.importorskip("ai_edge_litert")
    from edgereid.tflite.builder import build_model

    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(build_model(CHAIN))
    return path


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def _user_folder(path: Path) -> dict:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    (path / "sub").mkdir()
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01")
    (path / "empty").mkdir()
    return _snapshot(path)


def run_main(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


# ---- output folders: the mechanism ----------------------------------------------------

@pytest.mark.unit
def test_output_dir_refuses_foreign_files_and_leaves_them(tmp_path):
    out = tmp_path / "out"
    before = _user_folder(out)
    with pytest.raises(EdgereidError) as err:
        with atomic.output_dir(out) as new:
            (new / "x").write_text("x")
    message = str(err.value)
    for name in ("notes.txt", "sub/data.bin", "empty/"):
        assert name in message
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # no temporary sibling left


@pytest.mark.unit
def test_output_dir_replaces_its_own_output_and_records_it(tmp_path):
    out = tmp_path / "out"
    with atomic.output_dir(out) as new:
        (new / "a.txt").write_text("1")
        (new / "d").mkdir()
        (new / "d" / "b.txt").write_text("2")
    record = json.loads((out / atomic.OWNED_LIST).read_text())
    assert set(record["files"]) == {"a.txt", "d/b.txt"} and record["dirs"] == ["d"]
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask              # not mkdtemp's private 0700
    with atomic.output_dir(out) as new:                              # an earlier output: replaced
        (new / "c.txt").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == [atomic.OWNED_LIST, "c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.unit
def test_output_dir_treats_changed_and_added_files_as_the_users(tmp_path):
    out = tmp_path / "out"
    with atomic.output_dir(out) as new:
        (new / "model.c").write_text("generated\n")
    (out / "model.c").write_text("generated\n// my fix\n")
    (out / "extra.c").write_text("mine\n")
    os.symlink("/etc/passwd", out / "link")
    with pytest.raises(EdgereidError) as err:
        with atomic.output_dir(out):
            pass
    assert "model.c (changed)" in str(err.value) and "extra.c" in str(err.value) and "link" in str(err.value)
    assert (out / "model.c").read_text() == "generated\n// my fix\n" and (out / "extra.c").exists()


@pytest.mark.unit
def test_output_dir_error_inside_leaves_the_old_output(tmp_path):
    out = tmp_path / "out"
    with atomic.output_dir(out) as new:
        (new / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.output_dir(out) as new:
            (new / "a.txt").write_text("half")
            raise RuntimeError("build failed")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.unit
def test_output_dir_empty_folder_and_missing_parents(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic.output_dir(tmp_path / "empty") as new:
        (new / "a").write_text("a")
    with atomic.output_dir(tmp_path / "x" / "y" / "z") as new:
        (new / "a").write_text("a")
    assert (tmp_path / "empty" / "a").is_file() and (tmp_path / "x" / "y" / "z" / "a").is_file()


@pytest.mark.unit
def test_output_dir_refuses_the_working_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in (".", tmp_path, tmp_path.parent):
        with pytest.raises(EdgereidError, match="working folder"):
            with atomic.output_dir(path):
                pass
    (tmp_path / "f").write_text("x")
    with pytest.raises(EdgereidError, match="not a folder"):
        with atomic.output_dir("f"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


# ---- build-firmware --out ------------------------------------------------------------

@pytest.mark.unit
def test_generate_over_foreign_files_is_an_error_naming_them(tmp_path, model):
    from edgereid.firmware import generate, read_tflite

    out = tmp_path / "fw"
    before = _user_folder(out)
    with pytest.raises(FirmwareError, match=r"firmware output folder .*fw holds files edgereid did not write: "
                                            r".*notes\.txt"):
        generate(read_tflite(model), "host", out)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"]
    # its own output is replaced, again and again
    shutil.rmtree(out)
    generate(read_tflite(model), "host", out)
    generate(read_tflite(model), "host", out)
    assert (out / "model.c").is_file() and (out / atomic.OWNED_LIST).is_file()


@pytest.mark.integration
@needs_gcc
def test_build_firmware_cli_out_over_foreign_files(tmp_path, model, capsys):
    out = tmp_path / "fw"
    before = _user_folder(out)
    code, err = run_main(["build-firmware", "--model", str(model), "--board", "host", "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("error: firmware output folder") and "notes.txt" in err and "sub/data.bin" in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(out) == before
    # a fresh folder builds, and building again replaces edgereid's own output (make's objects included)
    out2 = tmp_path / "fw2"
    for _ in range(2):
        argv = ["build-firmware", "--model", str(model), "--board", "host", "--out", str(out2)]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 0, (result.output, result.exception)
    assert (out2 / "firmware").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw", "fw2"]


@pytest.mark.unit
def test_build_firmware_out_dot_is_a_clear_error(tmp_path, model, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("keep")
    code, err = run_main(["build-firmware", "--model", str(model), "--board", "host", "--out", "."], capsys)
    assert code == 2
    assert err.startswith("error: firmware output folder . is the working folder") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# ---- data synth --force ----------------------------------------------------------------

SYNTH = ["--ids", "4", "--images-per-id", "4", "--quiet"]


@pytest.mark.unit
def test_synth_force_over_a_foreign_folder_is_an_error(tmp_path, capsys):
    out = tmp_path / "mine"
    before = _user_folder(out)
    code, err = run_main(["data", "synth", "--out", str(out), "--force", *SYNTH], capsys)
    assert code == 2
    assert err.startswith(f"error: synthetic: output folder {out} holds files edgereid did not write: ")
    assert "notes.txt" in err and "sub/data.bin" in err
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.unit
def test_synth_force_replaces_a_synthetic_set_but_not_what_was_added(tmp_path):
    out = tmp_path / "s"
    runner = CliRunner()
    assert runner.invoke(cli, ["data", "synth", "--out", str(out), "--seed", "1", *SYNTH]).exit_code == 0
    result = runner.invoke(cli, ["data", "synth", "--out", str(out), "--seed", "2", "--force", *SYNTH])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    (out / "market1501" / "my_labels.csv").write_text("pid,label\n")
    result = runner.invoke(cli, ["data", "synth", "--out", str(out), "--seed", "3", "--force", *SYNTH])
    assert result.exit_code != 0 and isinstance(result.exception, DatasetError)
    assert "market1501/my_labels.csv" in str(result.exception)
    assert json.loads((out / "manifest.json").read_text())["seed"] == 2
    assert (out / "market1501" / "my_labels.csv").read_text() == "pid,label\n"


@pytest.mark.unit
def test_synth_force_over_a_set_written_before_file_lists(tmp_path):
    from edgereid.data.synthetic import synthesize

    out = synthesize(tmp_path / "s", seed=1, num_ids=4, images_per_id=4, progress=False)
    (out / atomic.OWNED_LIST).unlink()                      # as an older edgereid left it
    synthesize(out, seed=2, num_ids=4, images_per_id=4, overwrite=True, progress=False)
    (out / atomic.OWNED_LIST).unlink()
    (out / "sysu" / "README.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"sysu/README\.txt"):
        synthesize(out, seed=3, num_ids=4, images_per_id=4, overwrite=True, progress=False)
    assert (out / "sysu" / "README.txt").read_text() == "mine"


@pytest.mark.unit
def test_synth_out_dot_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(["data", "synth", "--out", ".", "--force", *SYNTH], capsys)
    assert code == 2 and "is the working folder" in err
    assert list(tmp_path.iterdir()) == []


# ---- board files: no Make or shell injection -------------------------------------------

def _board(tmp_path, name="evil", **changes) -> Path:
    with open(REPO / "boards" / ("rpi5-cpu.yaml" if "run" in changes else "host.yaml")) as f:
        data = yaml.safe_load(f)
    data["name"] = name
    for key, value in changes.items():
        data[key].update(value)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("field,value", [
    ("cflags", ["-O2", "$(shell touch {marker})"]),
    ("cflags", ["-O2 $(shell touch {marker})"]),
    ("cflags", ["-DX=`touch {marker}`"]),
    ("cflags", ["-O2;touch {marker}"]),
    ("cflags", ["-D'X'"]),
    ("cc", "$(shell touch {marker})gcc"),
    ("cc", "gcc; touch {marker}"),
    ("cc", "gcc $(X)"),
    ("cc", "-wrapper"),
    ("cc", "'gcc'"),
])
@pytest.mark.unit
def test_board_file_cannot_inject_make_or_shell(tmp_path, field, value):
    marker = tmp_path / "pwned"
    value = [v.format(marker=marker) for v in value] if isinstance(value, list) else value.format(marker=marker)
    path = _board(tmp_path, toolchain={field: value})
    with pytest.raises(BoardError, match=rf"evil\.yaml: field toolchain\.{field}(\[1\]|\[0\])?: expected "):
        load_board(path)
    assert not marker.exists()


@pytest.mark.unit
def test_board_spec_in_code_cannot_reach_the_makefile(tmp_path, model):
    from edgereid.firmware import generate, read_tflite
    from edgereid.firmware.codegen import BoardSpec

    marker = tmp_path / "pwned"
    for cc, cflags in (("gcc", (f"$(shell touch {marker})",)), (f"gcc$(shell touch {marker})", ())):
        spec = BoardSpec(name="evil", core="x86-64", cc=cc, cflags=cflags, ldscript=None, startup=None,
                         flash_bytes=None, ram_bytes=None, stack_bytes=None)
        with pytest.raises(FirmwareError, match=r"board evil: toolchain\.(cc|cflags)"):
            generate(read_tflite(model), spec, tmp_path / "fw")
    assert not marker.exists() and not (tmp_path / "fw").exists()


@pytest.mark.unit
@pytest.mark.parametrize("field", ["qemu_machine", "qemu_cpu"])
def test_qemu_names_cannot_carry_qemu_properties(tmp_path, field):
    with open(REPO / "boards" / "mps2-an386.yaml") as f:
        data = yaml.safe_load(f)
    data["name"] = "evil"
    data["run"][field] = "mps2-an386,dumpdtb=/tmp/overwritten" if field == "qemu_machine" else "-d"
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(BoardError, match=rf"field run\.{field}: expected a QEMU model name"):
        load_board(path)


@pytest.mark.unit
def test_shipped_boards_and_ordinary_values_pass():
    from edgereid.boards import list_boards
    from edgereid.firmware.toolchain import Toolchain

    for name in list_boards():
        Toolchain.of(load_board(name))
    for ok in ("gcc", "arm-none-eabi-gcc", "/opt/gcc-arm/bin/arm-none-eabi-gcc", "clang-17", "g++"):
        assert trust.is_program(ok), ok
    for ok in ("-O2", "-mcpu=cortex-m7", "-mfpu=fpv5-sp-d16", "-DNAME=1", "-Wl,--gc-sections", "-I/opt/x/include"):
        assert trust.is_flag(ok), ok


# ---- ssh: host and user names are names -------------------------------------------------

@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/x", "-oProxyCommand=x", "a b", "a;b", "h$(x)",
                                  "fe80::1%eth0", "a..b", "-h", "host-", ""])
@pytest.mark.unit
def test_ssh_host_that_is_not_a_name_is_refused(tmp_path, host):
    with pytest.raises(BoardError, match=r"field run\.ssh_host: expected a host name"):
        load_board(_board(tmp_path, run={"ssh_host": host}))
    assert not trust.is_hostname(host)


@pytest.mark.parametrize("user", ["-oProxyCommand=x", "-l", "a b", "a;b", ".hidden", "x" * 33])
@pytest.mark.unit
def test_ssh_user_that_is_not_a_name_is_refused(tmp_path, user):
    with pytest.raises(BoardError, match=r"field run\.ssh_user: expected a user name"):
        load_board(_board(tmp_path, run={"ssh_host": "raspberrypi.local", "ssh_user": user}))


@pytest.mark.parametrize("url", ["ssh://-oProxyCommand=x", "ssh://-oProxyCommand=touch%20x:22",
                                 "ssh://-l@host", "ssh://a;b@host", "ssh://pi@-h"])
@pytest.mark.unit
def test_ssh_transport_that_is_not_a_name_is_refused(url):
    from edgereid.latency.backends import SshTarget

    with pytest.raises(LatencyError, match=r"(host|user) .* is not a (host|user) name"):
        SshTarget.parse(url)


@pytest.mark.unit
def test_ssh_and_scp_get_double_dash_before_the_host(tmp_path, monkeypatch):
    from edgereid.latency import backends

    if shutil.which("ssh") is None or shutil.which("scp") is None:
        pytest.skip("openssh-client not installed")
    board = load_board(_board(tmp_path, run={"ssh_host": "raspberrypi.local", "ssh_user": "pi"}))
    backend = backends.open_backend(board)
    assert backend.target.host == "raspberrypi.local" and backend.target.user == "pi"
    calls = []

    class Done:
        returncode, stdout, stderr = 0, "", ""

    monkeypatch.setattr(backends.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done())
    backend.remote_dir = "/tmp/edgereid-profile.x"
    backend._ssh("true")
    backend._scp([tmp_path / "m.tflite"])
    for cmd in calls:
        i = cmd.index("--")
        assert all(not a.startswith("pi@") for a in cmd[:i])
    assert calls[0][calls[0].index("--") + 1] == "pi@raspberrypi.local"
    assert calls[1][-1] == "pi@raspberrypi.local:/tmp/edgereid-profile.x/"
    ipv6 = backends.SshBackend(board, "ssh://pi@[::1]:2222")
    assert ipv6._dest() == "pi@::1" and ipv6._dest(scp=True) == "pi@[::1]"


@pytest.mark.unit
def test_host_and_user_names_that_are_names_pass():
    for host in ("raspberrypi.local", "pi-5", "my_pi", "192.168.1.10", "::1", "[::1]", "board.example.org."):
        assert trust.is_hostname(host), host
    for user in ("pi", "ubuntu", "build_bot", "a.b-c"):
        assert trust.is_username(user), user
