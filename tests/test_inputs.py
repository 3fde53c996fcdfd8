"""The book re-executes a chapter whose inputs changed (lenet_lib/base/inputs.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lenet_lib import inputs

ROOT = Path(__file__).resolve().parent.parent
JB = Path(sys.executable).parent / "jupyter-book"


def test_fingerprint_follows_contents_not_location(tmp_path):
    for where in ("a", "b"):
        (tmp_path / where / "results" / "x").mkdir(parents=True)
        (tmp_path / where / "results" / "x" / "summary.json").write_text('{"test_acc": 99.0}')
    a, b = (inputs.fingerprint(["results/x"], tmp_path / w) for w in ("a", "b"))
    assert a == b
    (tmp_path / "b" / "results" / "x" / "summary.json").write_text('{"test_acc": 98.0}')
    assert inputs.fingerprint(["results/x"], tmp_path / "b") != a
    shutil.rmtree(tmp_path / "b" / "results" / "x")
    assert inputs.fingerprint(["results/x"], tmp_path / "b") != a  # a vanished input counts


def test_record_read_only_inside_a_build(tmp_path, monkeypatch):
    log = tmp_path / "reads.log"
    monkeypatch.delenv(inputs.LOG_VAR, raising=False)
    inputs.record_read(tmp_path)
    assert not log.exists()
    monkeypatch.setenv(inputs.LOG_VAR, str(log))
    inputs.record_read(tmp_path / "results")
    assert log.read_text().split() == [str((tmp_path / "results").resolve())]


def _build(repo: Path) -> str:
    env = os.environ | {"PYTHONPATH": str(repo), "LENET_DATA": str(ROOT / "data")}
    out = subprocess.run(
        [str(JB), "build", str(repo)], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_a_changed_result_reaches_the_page(tmp_path):
    """Build a copy of the book (two chapters), change committed summaries, rebuild: the
    chapter that reads them is executed again and shows the new number; the other one comes
    from the cache. The copy starts from this repository's execution cache when `make book`
    has filled it (seconds), else it executes both chapters first (minutes)."""
    repo = tmp_path / "repo"
    skip = shutil.ignore_patterns(".venv", "_build", "data", ".git", "__pycache__", "*.egg-info")
    shutil.copytree(ROOT, repo, ignore=skip)
    shutil.copytree(ROOT / "data", repo / "data", copy_function=os.link)
    for cached in (".jupyter_cache", ".doctrees/lenet_inputs.json"):
        if (ROOT / "_build" / cached).exists():
            copy = shutil.copytree if (ROOT / "_build" / cached).is_dir() else shutil.copy
            (repo / "_build" / cached).parent.mkdir(parents=True, exist_ok=True)
            copy(ROOT / "_build" / cached, repo / "_build" / cached)
    (repo / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n"
        "  - file: chapters/01_dataset\n  - file: chapters/03_capacity\n"
    )
    _build(repo)  # links to the chapters left out warn; that is not what is tested here
    page = repo / "_build" / "html" / "chapters" / "03_capacity.html"
    assert "12.35" not in page.read_text()

    for summary in (repo / "results" / "capacity").glob("p60000-w1-wd0-s*/summary.json"):
        s = json.loads(summary.read_text())
        s["test_acc"] = 87.6544  # a test error of 12.35% in the chapter's table
        summary.write_text(json.dumps(s))
    log = _build(repo)
    stale = [line for line in log.splitlines() if "inputs changed" in line]
    assert len(stale) == 1 and "chapters/03_capacity" in stale[0], stale
    assert "chapters/01_dataset" not in stale[0]
    assert "12.35" in page.read_text()
