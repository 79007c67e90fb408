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
# The fresh virtualenv that `make check-wheel` installs the built wheel into.
WHEEL_VENV ?= build/wheel-venv
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: install demo test lint unit docs dist check-wheel clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) "$(TORCH)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install $(PIP_QUIET) -e ".[dev,web,video,ray,docs]"
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

# The documentation site, into build/site: a warning (a broken link, a missing reference,
# a flag missing from the CLI reference) fails it. (NO_MKDOCS_2_WARNING silences
# mkdocs-material's banner about its own end of life, which is not about this site.)
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: lint unit docs

# The wheel and the sdist, into dist/, checked as a package index would.
dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*

# The wheel as a user gets it: installed into a fresh virtualenv (PyTorch first, pinned),
# run from a directory outside the repository, a draft picture made with the installed
# `artstyle` command and with the Python API, from the example images in the package.
check-wheel: dist
	rm -rf $(WHEEL_VENV)
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install $(PIP_QUIET) "$(TORCH)" $(TORCH_PIP_ARGS)
	$(WHEEL_VENV)/bin/python -m pip install $(PIP_QUIET) dist/artstyle-*.whl
	scratch=$$(mktemp -d) && cd "$$scratch" && export PATH="$(abspath $(WHEEL_VENV))/bin:$$PATH" && \
	python -c "import artstyle, sys; sys.exit(0 if '/site-packages/' in artstyle.__file__ else 'not the wheel: ' + artstyle.__file__)" && \
	artstyle --version && EX=$$(python -m artstyle.examples) && \
	artstyle "$$EX/content/chelsea.png" "$$EX/styles/starry_night.jpg" -o cli.png --preset draft --size 256 --seed 1 && \
	python -c "from artstyle import stylize; from artstyle.examples import DIRECTORY as ex; \
	stylize(ex / 'content/rocket.jpg', ex / 'styles/the_scream.jpg', preset='draft', size=256, seed=1).save('api.png')" && \
	python -c "from artstyle.web import example_images; photos, paintings = example_images(); assert photos and paintings" && \
	python -c "from PIL import Image; print('check-wheel:', *(Image.open(f).size for f in ('cli.png', 'api.png')))" && \
	cd / && rm -rf "$$scratch"

clean:
	rm -rf $(VENV) build dist src/*.egg-info
