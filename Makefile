# make book: set up .venv, fetch MNIST, build the HTML book into _build/html/
# make test: set up .venv, fetch MNIST, lint, build the book (-W), run the test suite
# make reproduce: the full-length training runs whose results the book reads
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEEDS ?= 0,1,2
JOBS ?= 1
# Runs are bit for bit only at the same torch thread count. The committed runs used one
# thread, the first four paper runs two (their params.json, tests/test_bad_inputs.py checks);
# with --jobs 1 a run keeps OMP_NUM_THREADS (--jobs N gives each run the cores / N).
ONE := OMP_NUM_THREADS=1 $(BIN)/lenet run
TWO := OMP_NUM_THREADS=2 $(BIN)/lenet run
PAPER_TWO := sdlm-e20-s0,sdlm-eta2e-04-e20-s0,sdlm-eta1e-04-e20-s0,sdlm-eta5e-05-e20-s0

.PHONY: setup data book test lint reproduce clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

data: setup
	$(BIN)/lenet data fetch

book: data
	$(BIN)/jupyter-book build -W -n --keep-going .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint book
	$(BIN)/python -m pytest -q

reproduce: data
	$(ONE) optimizers --seeds $(SEEDS) --jobs $(JOBS)
	$(ONE) gap --jobs $(JOBS)
	$(ONE) largebatch --jobs $(JOBS)
	$(ONE) capacity --seeds 0,1 --jobs $(JOBS)
	$(TWO) paper --only $(PAPER_TWO) --jobs $(JOBS)
	$(ONE) paper --jobs $(JOBS)
	$(ONE) paper --seeds 1,2 --only sdlm-eta1e-04-e20-s1,sdlm-eta1e-04-e20-s2 --jobs $(JOBS)

clean:
	rm -rf _build
