# make book: set up .venv, fetch MNIST, build the HTML book into _build/html/
# make test: set up .venv, fetch MNIST, lint (the pre-commit hooks), check for Chromium and Node,
#   build the book (-W), run the test suite
# make lab: JupyterLab on chapters/, in the project's environment, MNIST fetched
# make reproduce: the full-length training runs whose results the book reads
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEEDS ?= 0,1,2
JOBS ?= 2
# Runs are bit for bit only at the same torch thread count. The committed runs used one
# thread, the first four paper runs two (their params.json; tests/test_bad_inputs.py checks).
RUN := $(BIN)/lenet run
PAPER_TWO := sdlm-e20-s0,sdlm-eta1e-04-e20-s0

.PHONY: setup data book lab test lint browser reproduce clean

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

lab: data
	$(BIN)/lenet lab

lint: setup
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

test: lint browser book
	$(BIN)/python -m pytest -q

# The draw page's tests (tests/test_web.py) run its JavaScript in Node and the built page in
# Debian's Chromium, driven by Playwright (which cannot download a browser of its own here):
# installed with apt-get when make runs as root, otherwise named for the user to install.
browser:
	@for pair in chromium:chromium node:nodejs; do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing the Debian package $$pkg"; \
	    apt-get update -qq && apt-get install -y -qq $$pkg >/dev/null || exit 1; \
	  else \
	    echo "make test needs $$cmd: install the Debian package $$pkg (sudo apt-get install $$pkg)"; \
	    exit 1; \
	  fi; \
	done

reproduce: data
	$(RUN) optimizers --seeds $(SEEDS) --jobs $(JOBS) --threads 1
	$(RUN) gap --jobs $(JOBS) --threads 1
	$(RUN) rate1 --seeds $(SEEDS) --jobs $(JOBS) --threads 1
	$(RUN) largebatch --jobs $(JOBS) --threads 1
	$(RUN) capacity --seeds 0,1 --jobs $(JOBS) --threads 1
	$(RUN) paper --only $(PAPER_TWO) --jobs $(JOBS) --threads 2
	$(RUN) paper --jobs $(JOBS) --threads 1
	$(RUN) paper --seeds 1,2 --only sdlm-eta1e-04-e20-s1,sdlm-eta1e-04-e20-s2,sdlm-pooled-e20-s1,sdlm-pooled-e20-s2 --jobs $(JOBS) --threads 1
	$(RUN) paperadam --seeds $(SEEDS) --jobs $(JOBS) --threads 1
	$(RUN) lush --seeds $(SEEDS) --jobs $(JOBS) --threads 1

clean:
	rm -rf _build
