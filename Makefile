# Set-up and everyday commands. Each target creates the virtual environment when needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-e2e test-all lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/protoexplain demo

test: $(STAMP)
	-$(BIN)/python tests/browser.py
	$(BIN)/python -m pytest -q

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e

test-all: $(STAMP)
	-$(BIN)/python tests/browser.py
	$(BIN)/python -m pytest -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/train.py --device cpu --images 75 --train-batch 8 --steps 2
	$(BIN)/python benchmarks/explain.py --images 200
	$(BIN)/python benchmarks/push.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
