"""Latency tables: round trip, validation, runtime check, prediction = sum of entries, fitting."""
import json
import random
from pathlib import Path

import pytest

from edgereid.boards import load_board
from edgereid.errors import BoardError, LatencyError
from edgereid.latency import (Entry, Kernel, LatencyTable, LatencyTableWarning, OpCostModel, architecture_kernels,
                              parse_key, predict, predict_kernels)
from edgereid.latency.fusion import RULES, FusedLayer
from edgereid.latency.kernels import kernel_from_dict
from edgereid.latency.table import measured_provenance
from edgereid.ops import Precision
from edgereid.search_space import load_space, sample, save_architecture

RUNTIME = {"name": "ai-edge-litert", "version": "9.9.9"}


def _entry(median, kind="measured"):
    prov = measured_provenance(RUNTIME, "local") if kind == "measured" else {"kind": "estimated",
                                                                               "model": "roofline"}
    return Entry(median=median, iqr=median / 10, n=5, provenance=prov)


def _table(kernels, cost=lambda k: 1e-9 * k.macs + 1e-6):
    t = LatencyTable(board="host", runtime=dict(RUNTIME), fusion_rules="litert-v1", unit="s")
    for k in kernels:
        t.put(k, _entry(cost(k)))
    t.overhead = _entry(5e-6)
    return t


def test_key_round_trip():
    k = Kernel("DEPTHWISE_CONV_2D", 16, 8, 32, 32, 5, 5, 2, 2, 32, "SAME", "int8", "RELU")
    assert parse_key(k.key()) == k
    with pytest.raises(LatencyError, match="not of the form"):
        parse_key("CONV_2D/16x8")
    assert k.precision is Precision.INT8 and k.to_dict()["precision"] == "int8"
    with pytest.raises(LatencyError, match=r"'CONV_2D/.*/fp16/NONE': precision is 'fp16'; expected one of int8, "
                                           r"int4, binary"):
        parse_key("CONV_2D/8x8x8/o8/k1x1/s1x1/g1/SAME/fp16/NONE")
    with pytest.raises(LatencyError, match=r"entry X: precision is 'int2'"):
        kernel_from_dict(dict(k.to_dict(), precision="int2"), "entry X")
    for p in Precision:
        assert parse_key(Kernel("CONV_2D", 8, 8, 64, 16, precision=p).key()).precision is p


def test_committed_tables_keep_their_keys_and_configs():
    """Every key of boards/luts/*.json parses and prints back byte for byte, with the same config."""
    tables = sorted((Path(__file__).resolve().parent.parent / "boards" / "luts").glob("*.json"))
    assert tables
    for path in tables:
        d = json.loads(path.read_text())
        for key, entry in d["entries"].items():
            kernel = parse_key(key)
            assert kernel.key() == key
            assert kernel.to_dict() == entry["config"], (path.name, key)
        assert len(LatencyTable.load(path)) == len(d["entries"])


def test_table_round_trip(tmp_path):
    arch = sample(load_space("tiny"), random.Random(0))
    kernels = [f.kernel for f in architecture_kernels(arch, RULES["litert-v1"])]
    table = _table(kernels)
    table.put(Kernel("CONV_2D", 4, 4, 8, 8), _entry(1e-6, "estimated"))
    path = table.save(tmp_path / "host.json")
    again = LatencyTable.load(path)
    assert again.entries == table.entries and again.overhead == table.overhead
    assert again.runtime == RUNTIME and again.unit == "s" and again.fusion_rules == "litert-v1"
    assert again.measured_count() == len(table) - 1
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 1 and raw["unit_meaning"].startswith("seconds")
    any_entry = next(iter(raw["entries"].values()))
    assert set(any_entry) >= {"config", "median", "iqr", "n", "provenance"}


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(format_version=7), "format_version"),
    (lambda d: d.update(unit="ms"), "unit"),
    (lambda d: d.pop("runtime"), "missing field 'runtime'"),
    (lambda d: next(iter(d["entries"].values())).update(median=-1), "median"),
    (lambda d: next(iter(d["entries"].values())).update(n=0), "sample count"),
    (lambda d: next(iter(d["entries"].values()))["provenance"].pop("transport"), "lacks transport"),
    (lambda d: next(iter(d["entries"].values()))["config"].update(in_c=999), "does not match the key"),
    (lambda d: next(iter(d["entries"].values()))["config"].update(precision="int9"), "precision is 'int9'"),
])
def test_table_validation_names_the_problem(tmp_path, mutate, message):
    path = _table([Kernel("CONV_2D", 8, 8, 8, 16, 3, 3)]).save(tmp_path / "t.json")
    d = json.loads(path.read_text())
    mutate(d)
    path.write_text(json.dumps(d))
    with pytest.raises(LatencyError, match=message):
        LatencyTable.load(path)


def test_corrupt_table_file(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('{"format": "edgereid-latency-table", "entr')
    with pytest.raises(LatencyError, match=r"t.json is corrupt"):
        LatencyTable.load(path)


def test_missing_table_and_missing_board(tmp_path):
    with pytest.raises(LatencyError, match="does not exist"):
        LatencyTable.load(tmp_path / "none.json")
    with pytest.raises(BoardError, match="unknown board 'no-such-board'"):
        predict(tmp_path / "a.json", load_board("no-such-board"))


def test_other_runtime_version_warns_naming_both():
    table = _table([])
    with pytest.warns(LatencyTableWarning, match=r"ai-edge-litert 9\.9\.9.*ai-edge-litert 2\.0\.0"):
        table.check_runtime({"name": "ai-edge-litert", "version": "2.0.0"}, "litert-v1")
    with pytest.raises(LatencyError, match="fusion rules"):
        table.check_runtime(RUNTIME, "edgereid-fw-v1")


def test_prediction_is_overhead_plus_sum_of_entries(tmp_path):
    arch = sample(load_space("tiny"), random.Random(1))
    fused = architecture_kernels(arch, RULES["litert-v1"])
    table = _table([f.kernel for f in fused], cost=lambda k: random.Random(k.key()).uniform(1e-6, 1e-4))
    pred = predict_kernels(fused, table)
    assert not pred.fitted
    assert [p.value for p in pred.layers] == [table.get(f.kernel).median for f in fused]
    assert pred.total == pytest.approx(table.overhead.median + sum(table.get(f.kernel).median for f in fused))
    # the same through the file-level API, with the table given explicitly
    save_architecture(arch, tmp_path / "a.json")
    assert predict(tmp_path / "a.json", load_board("host"), table).total == pytest.approx(pred.total)


def test_unknown_config_is_fitted_and_flagged():
    # A table of 1x1 convs whose cost is exactly linear in MACs and bytes: the fit must recover it.
    def cost(k):
        return 2e-6 + 3e-10 * k.macs + 1e-9 * k.output_bytes

    kernels = [Kernel("CONV_2D", h, h, c, o) for h in (4, 8, 16) for c in (8, 16, 32) for o in (8, 24)]
    table = _table(kernels, cost)
    unknown = Kernel("CONV_2D", 12, 12, 24, 16)
    assert unknown not in table
    pred = predict_kernels([FusedLayer("x", ("x",), unknown), FusedLayer("y", ("y",), kernels[0])], table)
    assert [p.source for p in pred.layers] == ["fitted", "measured"]
    assert pred.fitted[0].kernel == unknown
    assert pred.layers[0].value == pytest.approx(cost(unknown), rel=1e-3)
    # an op kind absent from the table falls back to the all-entries model, still flagged
    dw = Kernel("DEPTHWISE_CONV_2D", 8, 8, 16, 16, 3, 3, groups=16)
    assert predict_kernels([FusedLayer("d", ("d",), dw)], table).layers[0].source == "fitted"
    assert OpCostModel(table).predict(dw) > 0
