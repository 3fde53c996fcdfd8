# make book: set up .venv, fetch MNIST, build the HTML book into _build/html/
# make test: set up .venv, fetch MNIST, lint, run the test suite
# make reproduce: the full-length training runs whose results the book reads
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEEDS ?= 0,1,2
JOBS ?= 2

.PHONY: setup data book test lint reproduce clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name lenet5 --display-name "Python (lenet5)"
	touch $(STAMP)

data: setup
	$(BIN)/lenet data fetch

book: data
	$(BIN)/jupyter-book build -W -n --keep-going .

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: data lint
	$(BIN)/python -m pytest -q

reproduce: data
	$(BIN)/lenet run optimizers --seeds $(SEEDS) --jobs $(JOBS)
	$(BIN)/lenet run gap --jobs $(JOBS)
	$(BIN)/lenet run largebatch --jobs $(JOBS)
	$(BIN)/lenet run capacity --seeds 0,1 --jobs $(JOBS)
	$(BIN)/lenet run paper --jobs $(JOBS)
	$(BIN)/lenet run paper --seeds 1,2 --only sdlm-eta1e-04-e20-s1,sdlm-eta1e-04-e20-s2,sdlm-pooled-e20-s1,sdlm-pooled-e20-s2 --jobs $(JOBS)

clean:
	rm -rf _build
