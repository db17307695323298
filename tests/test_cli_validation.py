"""Every number (and template) a user types is checked by click before any stage runs:
a bad value is exit code 2 with a message naming the option, never a traceback, a
silently dropped entry or an ignored setting (issue 15, item 4)."""
import click
import pytest
from click.testing import CliRunner

from edgereid.cli import cli
from edgereid.cli.params import FiniteFloat, image_size, positive_int_list, shell_template

pytestmark = pytest.mark.unit

# (command line, option that must be named); other arguments are valid or never reached.
BAD = [
    # the cases measured in the issue
    (["eval", "x.pt", "--batch-size", "0"], "--batch-size"),
    (["profile", "--board", "host", "--flash-cmd", "flash {}"], "--flash-cmd"),
    (["profile", "--board", "host", "--limit", "-1"], "--limit"),
    (["compress", "x.pt", "--out", "o", "--prune-macs", "2"], "--prune-macs"),
    (["train", "--checkpoint-every", "-1"], "--checkpoint-every"),
    (["hil", "--model", "m.tflite", "--board", "host", "--timeout", "-1"], "--timeout"),
    # train
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--p", "1"], "--p"),
    (["train", "--k", "0"], "--k"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--warmup-epochs", "-1"], "--warmup-epochs"),
    (["train", "--weight-decay", "-0.1"], "--weight-decay"),
    (["train", "--width", "0"], "--width"),
    (["train", "--width", "inf"], "--width"),
    (["train", "--embedding-dim", "0"], "--embedding-dim"),
    (["train", "--size", "8x8"], "--size"),
    (["train", "--size", "128by64"], "--size"),
    (["train", "--step-milestones", "10,x"], "--step-milestones"),
    (["train", "--step-milestones", "10,-5"], "--step-milestones"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--num-workers", "-1"], "--num-workers"),
    (["train", "--max-minutes", "0"], "--max-minutes"),
    (["train", "--kr-gal", "-1e-4"], "--kr-gal"),
    (["train", "--fr-gal", "nan"], "--fr-gal"),
    (["train", "--gal-adversarial", "-1"], "--gal-adversarial"),
    # eval, compress, export
    (["eval", "x.pt", "--batch-size", "-3"], "--batch-size"),
    (["compress", "x.pt", "--out", "o", "--prune-macs", "0"], "--prune-macs"),
    (["compress", "x.pt", "--out", "o", "--prune-macs", "1"], "--prune-macs"),
    (["compress", "x.pt", "--out", "o", "--prune-macs", "nan"], "--prune-macs"),
    (["compress", "x.pt", "--out", "o", "--prune-steps", "0"], "--prune-steps"),
    (["compress", "x.pt", "--out", "o", "--finetune-epochs", "-1"], "--finetune-epochs"),
    (["compress", "x.pt", "--out", "o", "--qat-epochs", "-1"], "--qat-epochs"),
    (["compress", "x.pt", "--out", "o", "--calib-images", "0"], "--calib-images"),
    (["compress", "x.pt", "--out", "o", "--seed", "-1"], "--seed"),
    (["compress", "x.pt", "--out", "o", "--prune-latency-ms", "0"], "--prune-latency-ms"),
    (["search", "--board", "stm32h743", "--latency-ms", "-1"], "--latency-ms"),
    (["search", "--board", "stm32h743", "--latency-ms", "5", "--population", "1"], "--population"),
    (["search", "--board", "stm32h743", "--latency-ms", "5", "--parents", "9", "--population", "4"], "--parents"),
    (["train", "--arch", "/nonexistent.json"], "--arch"),
    (["data", "synth", "--domain", "c"], "--domain"),
    (["export", "x.pt", "--out", "m.tflite", "--calib-images", "0"], "--calib-images"),
    # data, models, demo
    (["data", "synth", "--ids", "3"], "--ids"),
    (["data", "synth", "--images-per-id", "61"], "--images-per-id"),
    (["data", "synth", "--seed", "-1"], "--seed"),
    (["data", "info", "regdb:/nowhere", "--trial", "11"], "--trial"),
    (["models", "--num-classes", "0"], "--num-classes"),
    (["models", "--width", "-1"], "--width"),
    (["models", "--embedding-dim", "0"], "--embedding-dim"),
    (["demo", "--epochs", "0"], "--epochs"),
    (["demo", "--max-train-minutes", "-1"], "--max-train-minutes"),
    (["demo", "--seed", str(2**32)], "--seed"),
    # hil, profile
    (["hil", "--model", "m.tflite", "--board", "host", "--n", "0"], "--n"),
    (["hil", "--model", "m.tflite", "--board", "host", "--timeout", "inf"], "--timeout"),
    (["hil", "--model", "m.tflite", "--board", "host", "--seed", "-2"], "--seed"),
    (["profile", "--board", "host", "--repeats", "0"], "--repeats"),
    (["profile", "--board", "host", "--warmup", "-1"], "--warmup"),
    (["profile", "--board", "host", "--jobs", "0"], "--jobs"),
    (["profile", "--board", "host", "--validate", "--n", "0"], "--n"),
    (["profile", "--board", "host", "--flash-cmd", "flash {elf"], "--flash-cmd"),
    (["profile", "--board", "host", "--flash-cmd", "flash {board} {elf}"], "--flash-cmd"),
    (["profile", "--board", "host", "--flash-cmd", "flash {elf!r}"], "--flash-cmd"),
    (["profile", "--board", "host", "--flash-cmd", "flash {elf:>9}"], "--flash-cmd"),
    (["profile", "--board", "host", "--flash-cmd", "flash {0}"], "--flash-cmd"),
    (["profile", "--board", "host", "--flash-cmd", "pyocd flash image.elf"], "--flash-cmd"),
]


# Options that are each valid but do not go together: one usage line saying what to give.
CONFLICTS = [
    (["compress", "x.pt", "--out", "o", "--prune-latency-ms", "5"], "add --board"),
    (["compress", "x.pt", "--out", "o", "--prune-fit", "--prune-macs", "0.5", "--board", "nrf52840"],
     "give one pruning target"),
    (["compress", "x.pt", "--out", "o", "--prune-fit", "--board", "nrf52840", "--weights", "mixed"], "prune first"),
]


@pytest.mark.parametrize("argv,message", CONFLICTS, ids=[" ".join(a) for a, _ in CONFLICTS])
def test_conflicting_options_are_one_usage_line(argv, message):
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("argv,option", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_value_is_a_usage_error_naming_the_option(argv, option):
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Invalid value for '{option}'" in result.output, result.output
    assert "Traceback" not in result.output


def _options():
    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        else:
            for param in cmd.params:
                yield " ".join(path), param
    return list(walk(cli, []))


def test_every_numeric_option_has_a_range():
    numeric = [(cmd, p) for cmd, p in _options() if isinstance(p.type, (click.types.IntParamType,
                                                                        click.types.FloatParamType))]
    assert len(numeric) >= 40  # every command's numbers are seen (train alone has 16)
    unranged = [f"{cmd} --{p.name}" for cmd, p in numeric if not isinstance(p.type, click.types._NumberRangeBase)]
    assert unranged == []
    floats = [f"{cmd} --{p.name}" for cmd, p in numeric
              if isinstance(p.type, click.types.FloatParamType) and not isinstance(p.type, FiniteFloat)]
    assert floats == []  # nan and inf pass a plain FloatRange's comparisons


def test_every_seed_fits_numpy_and_torch():
    seeds = [(cmd, p) for cmd, p in _options() if p.name == "seed"]
    assert {cmd for cmd, _ in seeds} >= {"train", "compress", "data synth", "hil", "profile", "demo"}
    for cmd, p in seeds:
        assert (p.type.min, p.type.max) == (0, 2**32 - 1), cmd


def test_good_values_pass_the_checks():
    check = shell_template("elf")
    for cmd in ("pyocd flash -t stm32h743xx {elf}", "sh -c 'x={{a}}; flash {elf} {elf}'"):
        assert check(None, None, cmd) == cmd
    assert check(None, None, None) is None
    assert image_size(None, None, "256X128") == (256, 128)
    assert image_size(None, None, (32, 16)) == (32, 16)           # a resumed checkpoint's value
    assert positive_int_list(None, None, "20, 40,") == (20, 40)
    assert positive_int_list(None, None, "") == ()
    t = FiniteFloat(0, 1, min_open=True, max_open=True)
    assert t.convert("0.5", None, None) == 0.5
    with pytest.raises(click.BadParameter, match="not a finite number"):
        FiniteFloat(min=0).convert("inf", None, None)


def test_checked_values_reach_the_command(tmp_path):
    # --ids and --images-per-id at the edges of their ranges are accepted and used
    out = tmp_path / "s"
    result = CliRunner().invoke(cli, ["data", "synth", "--out", str(out), "--ids", "4", "--images-per-id", "4",
                                      "--seed", str(2**32 - 1), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "market1501 2+2 ids" in result.output
