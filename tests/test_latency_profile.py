"""Profiling: resume after an interruption, and QEMU counts that add up exactly."""
import json
import shutil

import pytest

from edgereid.boards import load_board
from edgereid.errors import LatencyError
from edgereid.latency import LatencyTable, predict_kernels, profile
from edgereid.latency.backends import QemuBackend, SshTarget, open_backend
from edgereid.latency.fusion import FusedLayer, RULES
from edgereid.latency.micromodels import micro_model_spec, spec_of, write_model
from edgereid.latency.space_kernels import space_kernels
from edgereid.ops import Kernel, Precision
from edgereid.search_space import load_space


class Interrupt(Exception):
    pass


def test_resume_loses_no_finished_entry_and_repeats_none(tmp_path):
    out = tmp_path / "host.json"
    first = []

    def stop_after_3(kernel, entry):
        first.append(kernel.key())
        if len(first) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        profile("host", space="tiny", repeats=3, warmup=1, out=out, progress=False, on_entry=stop_after_3)
    saved = LatencyTable.load(out)
    assert sorted(saved.entries) == sorted(first)        # every finished entry is on disk
    assert saved.overhead is not None

    second = []
    table = profile("host", space="tiny", repeats=3, warmup=1, out=out, progress=False, resume=True, limit=4,
                    on_entry=lambda k, e: second.append(k.key()))
    assert len(second) == 4 and not set(second) & set(first)      # nothing measured twice
    for key in first:                                             # earlier entries untouched
        assert table.entries[key] == saved.entries[key]
    assert table.overhead == saved.overhead
    order = [k.key() for k in space_kernels(load_space("tiny"), RULES["litert-v1"])]
    assert first + second == order[:7]                            # and in the space's order


def test_resume_refuses_a_corrupt_table(tmp_path):
    out = tmp_path / "host.json"
    out.write_text("{")
    with pytest.raises(LatencyError, match="corrupt"):
        profile("host", space="tiny", repeats=1, out=out, progress=False, resume=True, limit=1)


def test_transport_errors():
    with pytest.raises(LatencyError, match="not ssh://"):
        SshTarget.parse("ssh:/nohost")
    with pytest.raises(LatencyError, match="unknown option"):
        SshTarget.parse("ssh://pi@board?pyton=x")
    with pytest.raises(LatencyError, match="unknown transport"):
        open_backend(load_board("host"), "tcp://x")
    with pytest.raises(LatencyError, match="give --transport"):
        open_backend(load_board("rpi5-cpu"))
    with pytest.raises(LatencyError, match="--flash-cmd"):
        open_backend(load_board("stm32h743"), "serial:/dev/ttyACM0")
    with pytest.raises(LatencyError, match="not under QEMU"):
        QemuBackend(load_board("host"))
    with pytest.raises(LatencyError, match="only qemu"):        # parallel wall-clock timing: refused
        open_backend(load_board("host"), jobs=2)
    with pytest.raises(LatencyError, match="at least 1"):
        open_backend(load_board("mps2-an386"), jobs=0)


@pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                    reason="qemu-system-arm and arm-none-eabi-gcc are needed for QEMU profiling")
def test_qemu_counts_add_up(tmp_path):
    """Profile two kernels on mps2-an386 (two at a time, sharing objects), then a model made of
    both, built alone: overhead + sum = measured count."""
    board = load_board("mps2-an386")
    rules = RULES["edgereid-fw-v1"]
    # the space's first kernels: stem conv (width 8), stem conv (width 16), 1x1 expand conv after the first
    kernels = space_kernels(load_space("tiny"), rules)[:3:2]
    assert (kernels[0].out_h, kernels[0].out_c) == (kernels[1].in_h, kernels[1].in_c)
    out = tmp_path / "lut.json"
    seen = []
    table = profile(board, space="tiny", out=out, progress=False, limit=3, jobs=2,
                    on_entry=lambda k, e: seen.append(k.key()))
    assert table.unit == "instructions" and len(table) == 3
    assert sorted(seen) == sorted(k.key() for k in space_kernels(load_space("tiny"), rules)[:3])
    assert all(e.provenance["transport"] == "qemu" for e in table.entries.values())
    fused = [FusedLayer("a", ("a",), kernels[0], ("input",)), FusedLayer("b", ("b",), kernels[1], ("a",))]
    model = write_model(spec_of(fused, (kernels[0].in_h, kernels[0].in_w, kernels[0].in_c)), tmp_path / "m.tflite")
    (_, counts), = list(QemuBackend(board).measure([model], 1, 0))
    predicted = predict_kernels(fused, table).total
    # SysTick counts in steps of 40 instructions: allow a few ticks
    assert abs(predicted - counts[0]) <= 200, (predicted, counts[0])


LOW_BIT = [Kernel.of("CONV_2D", (8, 4, 40), 24, precision=p) for p in (Precision.INT4, Precision.BINARY)]


def test_host_times_binary_kernels_in_lce_interpreter(tmp_path):
    """A binary conv's micro-model (LceQuantize + LceBconv2d) cannot run in LiteRT: the host
    backend times it in LCE's interpreter, inside the worker, and says so in the provenance."""
    from edgereid.tflite import lce_available

    if not lce_available():
        pytest.skip("Larq Compute Engine's interpreter is not installed (tools/setup.sh installs it)")
    backend = open_backend(load_board("host"))
    paths = [write_model(micro_model_spec(k), tmp_path / f"{k.precision.value}.tflite") for k in LOW_BIT]
    results = dict(backend.measure(paths, 4, 1))
    assert all(len(results[p]) == 4 and min(results[p]) > 0 for p in paths)
    assert "larq-compute-engine" in backend.provenance(paths[1])["interpreter"]
    assert backend.provenance(paths[0]) == {}        # int4 filters run in LiteRT


def test_qemu_times_low_bit_kernels_exactly(tmp_path):
    """int4 and binary micro-models run on mps2-an386 bit-exact against their reference
    (LiteRT BUILTIN_REF / LCE's interpreter): a mismatch would warn while profiling."""
    import warnings

    from edgereid.latency.backends import HilMismatchWarning

    paths = [write_model(micro_model_spec(k), tmp_path / f"{k.precision.value}.tflite") for k in LOW_BIT]
    with warnings.catch_warnings():
        warnings.simplefilter("error", HilMismatchWarning)
        counts = dict(QemuBackend(load_board("mps2-an386")).measure(paths, 1, 0))
    assert all(len(counts[p]) == 1 and counts[p][0] > 0 for p in paths)


def test_validate_records_resume_and_report(tmp_path):
    from edgereid.latency import validate

    lut = tmp_path / "host.json"
    profile("host", space="tiny", repeats=3, warmup=1, out=lut, progress=False)
    summary = validate("host", n=2, space="tiny", repeats=5, warmup=1, out_dir=tmp_path, table_file=lut,
                       progress=False)
    assert summary.n == 2 and summary.fitted_share == 0.0 and 0.0 <= summary.within <= 1.0
    data = json.loads((tmp_path / "latency" / "host_tiny.json").read_text())
    first = [r["date"] for r in data["records"]]
    summary = validate("host", n=3, space="tiny", repeats=5, warmup=1, out_dir=tmp_path, table_file=lut,
                       resume=True, progress=False)
    data = json.loads((tmp_path / "latency" / "host_tiny.json").read_text())
    assert summary.n == 3 and [r["date"] for r in data["records"]][:2] == first
    assert [r["index"] for r in data["records"]] == [0, 1, 2]
    assert (tmp_path / "latency" / "host_tiny.png").stat().st_size > 0
    report = (tmp_path / "latency.md").read_text()
    assert "| host | tiny | s | 3 |" in report and "--validate --board host" in report
    # records measured by another runtime version are measured again, not mixed in
    data["runtime"] = dict(data["runtime"], version="0.0-other")
    (tmp_path / "latency" / "host_tiny.json").write_text(json.dumps(data))
    with pytest.warns(UserWarning, match="measuring them again"):
        summary = validate("host", n=1, space="tiny", repeats=3, warmup=1, out_dir=tmp_path, table_file=lut,
                           resume=True, progress=False)
    data = json.loads((tmp_path / "latency" / "host_tiny.json").read_text())
    assert summary.n == 1 and [r["index"] for r in data["records"]] == [0]          # 1 and 2 dropped, 0 anew
    assert data["runtime"]["version"] != "0.0-other"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is needed")
def test_object_cache_gives_the_same_image(tmp_path):
    """Objects reused from another model's build: the loaded image is byte for byte the one built alone."""
    import subprocess

    from edgereid.hil.runner import build_image

    board = load_board("mps3-an547")
    rules = RULES["edgereid-fw-v1"]
    a, b = space_kernels(load_space("tiny"), rules)[:2]
    from edgereid.latency.micromodels import micro_model_spec

    ma = write_model(micro_model_spec(a), tmp_path / "a.tflite")
    mb = write_model(micro_model_spec(b), tmp_path / "b.tflite")
    cache = tmp_path / "objects"
    build_image(mb, board, tmp_path / "b", object_cache=cache)
    assert any(cache.glob("*.o"))
    images = []
    for name, kw in (("cached", {"object_cache": cache}), ("alone", {})):
        elf = build_image(ma, board, tmp_path / name, **kw)
        subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", str(elf), str(elf) + ".bin"], check=True)
        images.append((tmp_path / name / "firmware.elf.bin").read_bytes())
    assert images[0] == images[1]
