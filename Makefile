# The two commands of the README:
#   make demo   set up .venv if needed, then run the full loop on the built-in simulator
#   make test   set up .venv if needed, then lint and run the whole test suite
VENV := .venv
PY := $(VENV)/bin/python
DEMO_SECONDS ?= 90

.PHONY: setup demo test lint clean-venv

setup:
	bash scripts/bootstrap_venv.sh

demo: setup
	bash scripts/demo.sh $(DEMO_SECONDS)

lint: setup
	$(PY) -m ruff check aloe_ros test bench launch
	$(PY) -m mypy

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV) build/msgs
