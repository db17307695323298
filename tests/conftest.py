"""Shared test set-up: single-threaded, deterministic torch; repo paths; test tiers.

Every test gets exactly one tier marker (registered in pyproject.toml):
- unit: in-process Python (small files, tiny LiteRT runs at most); no compiler, emulator,
  training or export;
- integration: builds C with a compiler, trains, exports, quantizes, runs whole CLI
  commands or installs the package;
- target: needs a target: QEMU, an sshd, a serial port, or runs the demo.
`make test-fast` runs `-m "not target"`; `make test` runs everything.

A test (or module, via `pytestmark`) may carry its tier marker itself; otherwise the
tables below decide: a target module, a target fixture or a listed target test makes
it `target`, then its module's tier; a module in no table is `integration` (the
tier that claims nothing about speed: give new fast modules a line in UNIT_MODULES).
"""
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "target")

UNIT_MODULES = {
    "test_boards.py", "test_data_cli.py", "test_data_histogram_baseline.py", "test_data_loaders.py",
    "test_data_sampler.py", "test_data_synthetic.py", "test_data_transforms.py", "test_latency_space.py",
    "test_latency_table.py", "test_layering.py", "test_losses.py", "test_metrics_protocols.py",
    "test_metrics_rank.py", "test_metrics_rerank_plot.py", "test_models.py",
}
INTEGRATION_MODULES = {
    "test_compress_prune.py", "test_compress_quantize.py", "test_engine.py", "test_engine_cli.py",
    "test_export.py", "test_firmware_compiler.py", "test_firmware_kernels.py", "test_hil.py",
    "test_install.py", "test_latency_profile.py",
}
# Every test of these modules runs on a target (QEMU, sshd, serial) or is the demo.
TARGET_MODULES = {"test_demo.py", "test_firmware_qemu.py", "test_latency_serial.py", "test_latency_ssh.py"}
# Fixtures that bring up a target: a test that requests one is a target test.
TARGET_FIXTURES = {"sshd", "stub_images"}
# Single target tests in modules of another tier ("file::function").
TARGET_TESTS = {
    "test_hil.py::test_end_to_end_run_hil",          # run_hil under QEMU
    "test_hil.py::test_end_to_end_cli_exit_code",    # edgereid hil under QEMU
    "test_latency_profile.py::test_qemu_counts_add_up",
    "test_latency_profile.py::test_qemu_times_low_bit_kernels_exactly",
    "test_firmware_variants.py::test_split_bn_variants_bit_exact_in_qemu",
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def pytest_configure(config):
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _tier(item) -> str:
    own = [name for name in TIERS if item.get_closest_marker(name) is not None]
    if len(own) > 1:
        raise pytest.UsageError(f"{item.nodeid}: more than one tier marker ({', '.join(own)})")
    if own:
        return own[0]
    module = item.path.name
    function = getattr(item, "originalname", None) or item.name.split("[")[0]
    if (module in TARGET_MODULES or f"{module}::{function}" in TARGET_TESTS
            or TARGET_FIXTURES.intersection(getattr(item, "fixturenames", ()))):
        return "target"
    return "unit" if module in UNIT_MODULES else "integration"


def pytest_collection_modifyitems(config, items):
    seen_modules = {}
    for item in items:
        tier = _tier(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))
        if getattr(item, "module", None) is not None:
            seen_modules[item.path.name] = item.module
    # A listed target test that no longer exists would silently fall back to another tier.
    for entry in TARGET_TESTS:
        module, function = entry.split("::")
        if module in seen_modules and not hasattr(seen_modules[module], function):
            raise pytest.UsageError(f"tests/conftest.py TARGET_TESTS names {entry}, which does not exist: "
                                    "update the list")
