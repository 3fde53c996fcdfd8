import shutil
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
