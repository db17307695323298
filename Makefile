# The two set-up commands of README.md. Each installs what it needs (Debian packages,
# .venv, pip packages) and then does its job.
PY := .venv/bin/python
OUT ?= out/demo

# Extra pytest arguments, e.g. make test-fast PYTEST_ARGS="-x -k firmware".
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast layers clean

setup:
	bash tools/setup.sh

demo: setup
	$(PY) -m edgereid.cli.entry demo --out $(OUT)

# Every tier (unit, integration, target: QEMU, sshd, serial, the demo); what CI runs (.ci/run).
test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

# Everything but the target tier (markers: pyproject.toml, assigned in tests/conftest.py).
# Two workers (one a core), whole files each, so module fixtures stay in one process.
test-fast: setup
	$(PY) -m pytest -m "not target" -n 2 --dist loadfile tests $(PYTEST_ARGS)

# The layering contract alone (also a unit test: tests/test_layering.py).
layers: setup
	.venv/bin/lint-imports --no-cache

clean:
	rm -rf out build .pytest_cache .import_linter_cache
