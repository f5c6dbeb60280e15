# The course's two everyday commands:
#   make start   set everything up (once) and open JupyterLab on the start notebook
#   make test    run the whole test suite (what CI runs)
# For developers: make unit (unit tests without the slow ones, no notebook: under a minute),
# make lint (ruff), and ARGS="..." passes pytest options, e.g. make test ARGS="--lf".
# Everything lives in .venv inside this folder; delete it to start over.
# On Linux with an NVIDIA GPU: make start GPU=1 (adds NVIDIA's CUDA libraries, requirements-gpu.txt).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8888
# JupyterLab refuses to run as root (as in many containers) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# The whole suite: two notebooks (or test files) at a time, each notebook whole in one kernel, outputs
# not compared (nbval-lax: a cell passes when it runs; the notebooks' assert cells check the claims).
SUITE  := -n 2 --dist loadfile --nbval-lax

.PHONY: start setup test unit lint labs update bench site clean

start: setup
	$(BIN)/jupyter lab --ServerApp.ip=$(HOST) --ServerApp.port=$(PORT) $(ROOT_FLAG) \
		--ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb

setup: $(VENV)/.installed $(if $(GPU),$(VENV)/.installed-gpu,)

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "The course needs Python 3.11 or newer; this is " + sys.version.split()[0] + ". Run: make PYTHON=python3.12 start")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@
	@echo "Environment ready in $(VENV)."

# GPU=1: the same environment plus NVIDIA's CUDA libraries, so TensorFlow can use an NVIDIA GPU.
$(VENV)/.installed-gpu: requirements-gpu.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-gpu.txt
	@touch $@
	@$(BIN)/python -c 'import utils; print(utils.env.gpu_advice())'

test: setup
	$(BIN)/python -m pytest $(SUITE) $(ARGS)

unit: setup
	$(BIN)/python -m pytest -n 2 -m "not slow" tests $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

labs: setup
	$(BIN)/python -m utils.labs build

# Update the course: your changed notebooks are kept in backups/<date-time>/ first (DRY_RUN=1 only shows).
update:
	$(PYTHON) -m utils.update $(if $(DRY_RUN),--dry-run,)
	@$(MAKE) --no-print-directory setup

bench: setup
	$(BIN)/python benchmarks/run_notebooks.py --profile $(or $(PROFILE),cpu)

# The course as a static site, every notebook run with its outputs: make site [PROFILE=smoke|cpu|gpu]
# (default cpu; COURSE_OFFLINE=1 forbids downloads; NOTEBOOKS="notebooks/0[0-2]*.ipynb" builds a subset).
site: $(VENV)/.site-installed
	$(BIN)/python tools/build_site.py --profile $(or $(PROFILE),cpu) --out _site $(NOTEBOOKS)

$(VENV)/.site-installed: requirements-site.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-site.txt
	@touch $@

clean:
	rm -rf $(VENV) .venv-colab dl_course.egg-info _build _site test-artifacts
