"""The shared library of the LeNet-5 companion book, in four folders, one layer each; a module
imports only from its own folder and the folders before it (tests/test_layout.py):

- `base/`: files and provenance (`io`), the notes' numbers (`notes`), the verdict rules
  (`verdicts`), what each chapter read (`inputs`);
- `nets/`: MNIST (`data`), the networks (`models`, `lush`), their training (`train`, `sdlm`,
  `cuda_graphs`) and the analyses of a network (`receptive`, `capacity`);
- `runs/`: what a run is and which runs each experiment makes (`experiments`, `plans`), running
  them (`runner`, `worker`, `cluster`, `runfolder`), reading them back (`results`), timing the
  engine (`bench`);
- `book/`: the claims and their tables (`claims`, `report`, `scorecard`, `ladder`), figures
  (`plots`), new digits (`handwriting`), the draw page (`web`), and a page's glue (`page`).

`cli.py`, the `lenet` command, sits on top. The book's pages import from here only: modules by
name (`from lenet_lib import data, plots`) and the few functions every page uses (`PAGE_NAMES`),
so a module can move between folders without a page changing.
"""

import importlib
from pathlib import Path

__version__ = "0.1.0"
GROUPS = ("base", "nets", "runs", "book")
_HERE = Path(__file__).parent
# The functions and paths the pages use, with the module each lives in.
PAGE_NAMES = {
    "start": "page",
    "glue": "page",
    "ROOT": "io",
    "RESULTS": "results",
    "load_results": "results",
    "load_metrics": "results",
    "load_model": "results",
    "load_bench": "results",
    "load_benchmark": "results",
    "unfinished_runs": "results",
    "missing_runs": "results",
    "make_command": "results",
    "plan_ids": "results",
    "require": "results",
    "row_id": "results",
}


def __getattr__(name: str):
    """`from lenet_lib import data` imports `lenet_lib.nets.data` (on first use only, so that
    importing `lenet_lib` stays free of torch and changes nothing); `from lenet_lib import
    glue` gives `lenet_lib.book.page.glue` (`PAGE_NAMES`)."""
    if name in PAGE_NAMES:
        return getattr(__getattr__(PAGE_NAMES[name]), name)
    for group in GROUPS:
        if (_HERE / group / f"{name}.py").is_file():
            return importlib.import_module(f"{__name__}.{group}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
