# make book: set up .venv, fetch MNIST, build the HTML book into _build/html/
# make test: set up .venv, fetch MNIST, lint (the pre-commit hooks), check for Chromium and Node,
#   build the book (-W), run the test suite
# make lab: JupyterLab on chapters/, in the project's environment, MNIST fetched
# make reproduce: the full-length training runs whose results the book reads
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2
# `lenet run X` without flags makes the runs results/ holds, with their seeds and thread counts
# (lenet_lib/runs/plans.py, COMMITTED; tests/test_bad_inputs.py checks them against params.json).
RUN := $(BIN)/lenet run

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
	$(RUN) optimizers --jobs $(JOBS)
	$(RUN) gap --jobs $(JOBS)
	$(RUN) rate1 --jobs $(JOBS)
	$(RUN) largebatch --jobs $(JOBS)
	$(RUN) capacity --jobs $(JOBS)
	$(RUN) paper --jobs $(JOBS)
	$(RUN) paperadam --jobs $(JOBS)
	$(RUN) lush --jobs $(JOBS)
	$(RUN) ladder --jobs $(JOBS)

clean:
	rm -rf _build
