# Two commands for a fresh machine: `make demo` and `make test`.
# Both create the virtualenv in $(VENV) and install artstyle into it first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTorch is installed on its own first, pinned: a bare `torch` requirement would
# pull a multi-GB CUDA build onto machines without one. On a machine whose pip does
# not already serve a CPU build, point TORCH_PIP_ARGS at PyTorch's CPU wheel index.
TORCH ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DEMO_OUTPUT ?= demo.png

.PHONY: install demo test lint unit clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,web,video,ray]"
	touch $@

demo: install
	$(PY) -m artstyle examples/content/chelsea.png examples/styles/starry_night.jpg -o $(DEMO_OUTPUT) --size 384 --seed 1
	@echo "demo: wrote $(DEMO_OUTPUT)"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy src
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest -p no:cacheprovider

test: lint unit

clean:
	rm -rf $(VENV) build src/*.egg-info
