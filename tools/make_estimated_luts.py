#!/usr/bin/env python3
"""Write ESTIMATED latency tables for boards that cannot be profiled on this machine.

    .venv/bin/python tools/make_estimated_luts.py [--space mcu-mixed] [BOARD ...]

Every entry comes from a roofline model, and says so in its provenance:

    latency(kernel) = max(MACs / achieved MAC rate, bytes moved / bandwidth) + per-op overhead
    bytes moved     = input + output + weight bytes of the kernel
    model latency   = per-inference overhead + sum of kernel latencies

The figures and where they come from are in ROOFLINES below (published ones cite their
source; the rest are labelled assumptions). A measured profile of the board
(`edgereid profile --board B --transport ...`) replaces entries one by one; existing
measured entries of a table are kept by this tool.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgereid.boards import load_board  # noqa: E402
from edgereid.latency.fusion import rules_for_board  # noqa: E402
from edgereid.latency.space_kernels import space_kernels  # noqa: E402
from edgereid.latency.table import Entry, LatencyTable, table_path  # noqa: E402
from edgereid.ops import Precision  # noqa: E402
from edgereid.search_space import load_space  # noqa: E402

_CMSIS_NN_RATE = ("0.52 MAC per instruction: CMSIS-NN arm_convolve_wrapper_s8 on a 3x3 conv (4.72M MACs) took 9.1M "
                  "instructions on Cortex-M4 and M7, measured in this project under QEMU -icount (docs: "
                  "DESIGN.md); taken at 1 instruction per cycle (assumption: zero-wait-state SRAM/TCM, no stalls)")

# unit, achieved MAC rate, bandwidth (bytes per unit), per-op overhead, per-inference overhead, sources
ROOFLINES = {
    "nrf52840": dict(
        unit="cycles", macs_per_unit=0.52, bytes_per_unit=4.0, per_op=1000.0, per_inference=2000.0,
        sources={
            "core": "Nordic nRF52840 Product Specification: Arm Cortex-M4F at 64 MHz",
            "macs_per_unit": _CMSIS_NN_RATE + " (peak would be 2 MAC/cycle: SMLAD is single-cycle, "
                             "Arm Cortex-M4 Technical Reference Manual, instruction timing)",
            "bytes_per_unit": "one 32-bit AHB-Lite data access per cycle (Cortex-M4 TRM: single-cycle SRAM)",
            "per_op": "assumption: 1000 cycles per kernel call (parameter set-up, requantisation tables)",
            "per_inference": "assumption: 2000 cycles (invoke entry, arena set-up)",
        }),
    "stm32f746": dict(
        unit="cycles", macs_per_unit=0.52, bytes_per_unit=8.0, per_op=1000.0, per_inference=2000.0,
        sources={
            "core": "ST DS10916: Cortex-M7 up to 216 MHz",
            "macs_per_unit": _CMSIS_NN_RATE,
            "bytes_per_unit": "64-bit DTCM/AXI interface of the Cortex-M7 (Arm Cortex-M7 TRM): 8 bytes per cycle",
            "per_op": "assumption: 1000 cycles per kernel call",
            "per_inference": "assumption: 2000 cycles",
        }),
    "stm32h743": dict(
        unit="cycles", macs_per_unit=0.52, bytes_per_unit=8.0, per_op=1000.0, per_inference=2000.0,
        sources={
            "core": "ST DS12110: Cortex-M7 up to 480 MHz",
            "macs_per_unit": _CMSIS_NN_RATE,
            "bytes_per_unit": "64-bit DTCM/AXI interface of the Cortex-M7 (Arm Cortex-M7 TRM): 8 bytes per cycle",
            "per_op": "assumption: 1000 cycles per kernel call",
            "per_inference": "assumption: 2000 cycles",
        }),
    "rpi5-cpu": dict(
        unit="s", macs_per_unit=0.25 * 32 * 2.4e9, bytes_per_unit=17.0e9, per_op=2e-6, per_inference=20e-6,
        sources={
            "core": "Raspberry Pi 5 product brief: BCM2712, Cortex-A76 at 2.4 GHz; one thread",
            "macs_per_unit": "peak 32 int8 MAC/cycle per core (two 128-bit NEON pipes, SDOT = 16 MACs, Arm "
                             "Cortex-A76 Software Optimization Guide) x 2.4 GHz = 76.8 GMAC/s; achieved 25% "
                             "(assumption for XNNPACK QS8 on small feature maps)",
            "bytes_per_unit": "LPDDR4X-4267 on a 32-bit bus (Raspberry Pi 5 product brief): ~17 GB/s",
            "per_op": "assumption: 2 us per operator (dispatch, XNNPACK set-up)",
            "per_inference": "assumption: 20 us (Python invoke, input/output copies)",
        }),
    "rpi5-npu": dict(
        unit="s", macs_per_unit=0.30 * 6.5e12, bytes_per_unit=985e6, per_op=0.0, per_inference=1e-3,
        sources={
            "core": "Raspberry Pi AI Kit product brief: Hailo-8L, 13 TOPS int8 = 6.5 TMAC/s peak",
            "macs_per_unit": "30% of the 6.5 TMAC/s peak (assumption: small layers under-fill the dataflow)",
            "bytes_per_unit": "PCIe Gen 3 x1, 8 GT/s with 128b/130b coding = 985 MB/s (PCI-SIG PCIe 3.0); "
                              "bounds kernels whose tensors would spill to host memory",
            "per_op": "0: the Hailo compiler maps the whole graph onto the chip; no per-layer dispatch",
            "per_inference": "assumption: 1 ms (HailoRT driver round trip and input/output transfer over PCIe)",
        }),
}


# Boards whose accelerator compiles layers with 4-bit weights: their tables also get an int4 twin of
# every weighted kernel (conv, depthwise, FC) of the space, estimated with the same roofline at the
# kernel's int4 weight bytes (Kernel.weight_bytes halves the weight tensor).
INT4_WEIGHT_MODES = {
    "rpi5-npu": "Hailo-8L a8_w4 (8-bit activations, 4-bit weights; one of the precision modes of Hailo's "
                "Dataflow Compiler, with a8_w8 and a16_w16); same achieved MAC rate as a8_w8 (assumption: "
                "Hailo publishes only the int8 13 TOPS figure), weight bytes at 4 bits",
}
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

# MCU boards run edgereid's firmware, whose int4 and binary kernels are measured (instructions) on a
# QEMU twin of the same architecture: their low-bit entries are the int8 estimate of the same kernel
# times the twin's measured low-bit / int8 ratio, so they keep the board's roofline and carry the
# kernels' relative cost. M7 boards use the M4 twin: ARMv7E-M both, same kernel paths, and the M7
# (mps2-an500) counts are within 2% of the M4's (docs/results/firmware_m7.md).
LOW_BIT_TWINS = {"nrf52840": "mps2-an386", "stm32f746": "mps2-an386", "stm32h743": "mps2-an386"}


def low_bit_twin_entries(kernels, int8_estimate, twin: LatencyTable) -> list:
    """(kernel, estimate, ratio) for each int4/binary kernel whose int8 twin both tables have."""
    out = []
    for kernel in kernels:
        if kernel.precision is Precision.INT8:
            continue
        base = dataclasses.replace(kernel, precision=Precision.INT8)
        low, high = twin.get(kernel), twin.get(base)
        if low is None or high is None or high.median <= 0:
            continue
        ratio = low.median / high.median
        out.append((kernel, int8_estimate(base) * ratio, ratio))
    return out


def int4_twins(kernels) -> list:
    """The int4-weight twin of every int8 weighted kernel (the a8_w4 layers of an int4 board mode)."""
    return [dataclasses.replace(k, precision=Precision.INT4) for k in kernels
            if k.op in WEIGHTED_OPS and k.precision is Precision.INT8]


def roofline(kernel, r: dict) -> float:
    moved = kernel.input_bytes + kernel.output_bytes + kernel.weight_bytes
    macs = kernel.macs if kernel.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") else 0
    return max(macs / r["macs_per_unit"], moved / r["bytes_per_unit"]) + r["per_op"]


def make_table(board_name: str, space_name: str) -> Path:
    board = load_board(board_name)
    r = ROOFLINES[board_name]
    rules = rules_for_board(board)
    path = table_path(board)
    model = (f"roofline: max(MACs / {r['macs_per_unit']:.4g}, bytes / {r['bytes_per_unit']:.4g}) + "
             f"{r['per_op']:.4g} {r['unit']} per op (figures and sources: table notes)")
    prov = {"kind": "estimated", "model": model}
    table = LatencyTable(board=board.name, runtime={"name": "estimated (roofline)", "version": None},
                         fusion_rules=rules.id, unit=r["unit"], path=path)
    if path.exists():
        old = LatencyTable.load(path)
        if old.unit == r["unit"] and old.fusion_rules == rules.id:
            table = old  # keep measured entries; refresh estimated ones
    sources = "; ".join(f"{k}: {v}" for k, v in r["sources"].items())
    table.notes = (f"ESTIMATED from a roofline model for search space '{space_name}', not measured. "
                   f"latency = max(MACs / achieved MAC rate, (input+output+weight bytes) / bandwidth) + per-op "
                   f"overhead; model = per-inference overhead + sum. Figures: {sources}")
    # Only the precisions the board's runtime has kernels for: int8 everywhere, int4 where an int4 mode or
    # the firmware's twin says so, binary in the firmware only (the Hailo compiler has no 1-bit layers).
    low_bit = LOW_BIT_TWINS.get(board_name) is not None
    kernels = [k for k in space_kernels(load_space(space_name), rules)
               if k.precision is Precision.INT8 or (low_bit and k.precision in (Precision.INT4, Precision.BINARY))]
    for kernel in kernels:
        current = table.get(kernel)
        if current is None or current.estimated:
            table.put(kernel, Entry(roofline(kernel, r), 0.0, 1, prov))
    if board_name in INT4_WEIGHT_MODES:
        table.notes += f". int4 entries: {INT4_WEIGHT_MODES[board_name]}"
        prov4 = dict(prov, model=f"{model}; {INT4_WEIGHT_MODES[board_name]}")
        for kernel in int4_twins(kernels):
            current = table.get(kernel)
            if current is None or current.estimated:
                table.put(kernel, Entry(roofline(kernel, r), 0.0, 1, prov4))
    if board_name in LOW_BIT_TWINS:
        twin_name = LOW_BIT_TWINS[board_name]
        twin = LatencyTable.load(table_path(load_board(twin_name)))
        found = low_bit_twin_entries(kernels, lambda k: roofline(k, r), twin)
        if found:
            table.notes += (f". int4 and binary entries: the int8 estimate of the same kernel times its measured "
                            f"low-bit / int8 instruction ratio on the QEMU twin {twin_name} (firmware "
                            f"{twin.runtime.get('version')})")
        for kernel, estimate, ratio in found:
            current = table.get(kernel)
            if current is None or current.estimated:
                table.put(kernel, Entry(estimate, 0.0, 1, dict(prov, model=f"{model}; x {ratio:.4f} = the "
                                                               f"{kernel.precision.value} / int8 ratio measured on "
                                                               f"{twin_name}")))
    if table.overhead is None or table.overhead.estimated:
        table.overhead = Entry(r["per_inference"], 0.0, 1, {"kind": "estimated",
                                                            "model": r["sources"]["per_inference"]})
    return table.save(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="write estimated latency tables (roofline model)")
    parser.add_argument("boards", nargs="*", default=sorted(ROOFLINES))
    parser.add_argument("--space", default="mcu")
    args = parser.parse_args(argv)
    for name in args.boards:
        if name not in ROOFLINES:
            parser.error(f"no roofline figures for {name}; known: {', '.join(sorted(ROOFLINES))}")
        print(make_table(name, args.space))
    return 0


if __name__ == "__main__":
    sys.exit(main())
