"""The layering contract of docs/architecture.md, checked by import-linter.

pyproject.toml's [tool.importlinter] lists the stages top to bottom; any import of a
higher layer (or of an independent sibling), at module level or inside a function,
breaks it. The test prints import-linter's report, which names each offending import.
"""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"

pytestmark = pytest.mark.unit


def test_the_layers_contract_is_configured():
    from importlinter.api import read_configuration

    config = read_configuration(str(PYPROJECT))
    session = config["session_options"]
    assert session.get("root_packages", [session.get("root_package")]) == ["edgereid"]
    layers = [c for c in config["contracts_options"] if c["type"] == "layers"]
    assert len(layers) == 1, "expected one layers contract in pyproject.toml"
    contract = layers[0]
    assert contract["containers"] == ["edgereid"]
    names = [layer.strip() for layer in contract["layers"]]
    assert names[0] == "cli" and names[-1] == "errors"
    # Every stage of the pipeline has its place (a stage left out would escape the check).
    listed = {part.strip().strip("()") for layer in names for part in layer.split("|")}
    stages = {p.name for p in (REPO / "edgereid").iterdir() if (p / "__init__.py").is_file()}
    stages |= {p.stem for p in (REPO / "edgereid").glob("*.py") if p.stem != "__init__"}
    assert stages <= listed, f"not in the layers contract: {sorted(stages - listed)}"


def test_stages_depend_downward_only():
    proc = subprocess.run(
        # run in the repository root: import-linter reads ./pyproject.toml
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache", "--no-logo"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    report = proc.stdout + proc.stderr
    assert "Contracts:" in report, report          # import-linter ran and checked something
    assert proc.returncode == 0, report
