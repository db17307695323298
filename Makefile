# The two set-up commands of README.md. Each installs what it needs (Debian packages,
# .venv, pip packages) and then does its job.
PY := .venv/bin/python
OUT ?= out/demo

.PHONY: setup demo test test-fast clean

setup:
	bash tools/setup.sh

demo: setup
	$(PY) -m edgereid.cli.entry demo --out $(OUT)

test: setup
	$(PY) -m pytest tests

clean:
	rm -rf out build .pytest_cache
