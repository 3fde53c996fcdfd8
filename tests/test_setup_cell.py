"""The first cell of a chapter opened from a launch button (Colab, Binder): it installs the
project and fetches MNIST where `lenet_lib` is missing, and does nothing where it is installed.
Run offline against a local clone, with the cell's dry-run switch (issue 24, section 5)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CELL = (ROOT / ".ci" / "setup_cell.py").read_text()
# The notebooks that carry the cell (the others' chapters join once their authors add it).
WITH_CELL = [
    *sorted((ROOT / "chapters").glob("*.ipynb")),
    *sorted((ROOT / "appendix").glob("*.ipynb")),
]


@pytest.mark.parametrize("path", WITH_CELL, ids=lambda p: p.name)
def test_notebook_starts_with_the_setup_cell_removed_from_the_book(path):
    first = json.loads(path.read_text())["cells"][0]
    assert first["cell_type"] == "code"
    assert "".join(first["source"]).strip() == CELL.strip()
    assert "remove-cell" in first["metadata"].get("tags", [])


def run_cell(cwd: Path, bare: bool = True, **env) -> subprocess.CompletedProcess:
    """Run the cell in a fresh interpreter; `bare`: without site-packages or PYTHONPATH, so
    that lenet_lib cannot be imported (as on Colab)."""
    flags = ["-I", "-S"] if bare else []
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LENET_")}
    environ |= {"LENET_SETUP_DRY_RUN": "1", **env}
    return subprocess.run(
        [sys.executable, *flags, "-c", CELL], cwd=cwd, env=environ, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    path = tmp_path_factory.mktemp("clone") / "lenet5"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", path], check=True)
    return path


def test_in_a_clone_it_installs_that_clone_and_fetches_the_data(clone):
    out = run_cell(clone / "chapters")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith(f"pip install -q -e {clone}")
    assert lines[1].endswith("-m lenet_lib.cli data fetch")


def test_lenet_repo_names_the_clone_from_anywhere(clone, tmp_path):
    out = run_cell(tmp_path, LENET_REPO=str(clone))
    assert out.returncode == 0, out.stderr
    assert f"pip install -q -e {clone}" in out.stdout


def test_a_git_url_is_cloned_first(tmp_path):
    out = run_cell(tmp_path, LENET_REPO="https://github.com/someone/lenet5")
    assert (
        out.stdout.splitlines()[0]
        == "$ git clone --depth 1 https://github.com/someone/lenet5 lenet5"
    )
    assert "pip install -q -e lenet5" in out.stdout


def test_without_a_clone_or_url_it_says_what_to_set(tmp_path):
    out = run_cell(tmp_path)
    assert out.returncode != 0 and "set LENET_REPO" in out.stderr


def test_where_lenet_lib_is_installed_it_does_nothing(tmp_path):
    out = run_cell(tmp_path, bare=False, PYTHONPATH=str(ROOT))
    assert out.returncode == 0 and out.stdout == "", out.stderr
