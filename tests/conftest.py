import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lenet_lib import data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, fetched and verified (make test fetches it first)."""
    data.fetch()
    return {s: data.load_mnist(s) for s in ("train", "test")}


@pytest.fixture
def data_copy(tmp_path):
    """A private copy of the verified raw files, to corrupt without harm."""
    data.fetch()
    raw = data.raw_dir(tmp_path)
    raw.mkdir(parents=True)
    for name in data.RAW_MD5:
        shutil.copyfile(data.raw_dir() / name, raw / name)
    return tmp_path


def lenet(*args, timeout=900, **kw):
    """The `lenet` command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kw,
    )  # fmt: skip


@pytest.fixture(scope="session")
def quick(tmp_path_factory, mnist):
    """`lenet run optimizers --quick` on the embedded cluster: six notebooks through papermill
    (tests/test_runner.py; the reference of tests/test_cluster.py)."""
    out = tmp_path_factory.mktemp("results")
    proc = lenet("run", "optimizers", "--quick", "--results-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def training_notebook(tmp_path, **params):
    """Execute the training notebook (chapter 06) with papermill on a small real run; return
    its run folder."""
    import papermill as pm

    from lenet_lib import worker

    run_dir = tmp_path / "run"
    params = dict(epochs=1, train_subset=300, test_subset=100, run_dir=str(run_dir)) | params
    pm.execute_notebook(
        str(worker.NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=params,
        kernel_name=worker.KERNEL, cwd=str(ROOT), progress_bar=False,
    )  # fmt: skip
    return run_dir


@pytest.fixture
def digit_png(tmp_path, mnist):
    """MNIST's first test digit as a 112x112 PNG, dark ink on white (`lenet predict` tests)."""
    from PIL import Image

    X, _ = mnist["test"]
    path = tmp_path / "digit.png"
    Image.fromarray(255 - X[0].numpy()).resize((112, 112)).save(path)
    return path
