"""Fetching, verifying, loading and preprocessing MNIST (lenet_lib/nets/data.py)."""

import subprocess
import sys

import pytest
import torch

from lenet_lib import data


def lenet(*args):
    return subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", *args], capture_output=True, text=True, timeout=600
    )


def test_raw_files_match_their_md5(mnist):
    assert data.verify() == dict.fromkeys(data.RAW_MD5, "ok")


def test_load_mnist_shapes_and_types(mnist):
    X, y = mnist["train"]
    assert X.shape == (60000, 28, 28) and X.dtype == torch.uint8
    assert y.shape == (60000,) and int(y.min()) == 0 and int(y.max()) == 9
    X_test, _ = mnist["test"]
    assert X_test.shape == (10000, 28, 28)


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_reads_what_torchvision_reads(mnist, split):
    from torchvision.datasets import MNIST

    ds = MNIST(str(data.DEFAULT_ROOT), train=split == "train", download=False)
    X, y = mnist[split]
    assert torch.equal(X, ds.data) and torch.equal(y, ds.targets)


def test_read_idx_reads_an_array_and_refuses_what_is_not_one(tmp_path):
    path = tmp_path / "x-idx"
    header = b"\x00\x00\x08\x02" + (2).to_bytes(4, "big") * 2  # uint8, 2 x 2
    path.write_bytes(header + bytes([1, 2, 3, 4]))
    assert data.read_idx(path).tolist() == [[1, 2], [3, 4]]
    path.write_bytes(header + bytes([1, 2, 3]))  # one byte short
    with pytest.raises(data.DataError, match="not those of an IDX array"):
        data.read_idx(path)
    path.write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + bytes(4))  # floats
    with pytest.raises(data.DataError, match="unsigned bytes"):
        data.read_idx(path)


def test_load_mnist_rejects_unknown_split():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")


def test_corrupt_file_is_refused_with_the_fix(data_copy):
    path = data.raw_dir(data_copy) / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")
    bad = data.md5(path)
    out = lenet("data", "fetch", "--root", str(data_copy))
    assert out.returncode != 0
    for needle in ("t10k-labels-idx1-ubyte", bad, data.RAW_MD5[path.name], "--force"):
        assert needle in out.stderr
    with pytest.raises(data.DataError, match="--force"):
        data.load_mnist("test", data_copy)


def test_force_repairs_a_corrupt_file(data_copy):
    path = data.raw_dir(data_copy) / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"not mnist")
    out = lenet("data", "fetch", "--root", str(data_copy), "--force")
    assert out.returncode == 0, out.stderr
    assert data.verify(data_copy)[path.name] == "ok"


def test_failed_sources_leave_nothing_and_list_every_error(tmp_path):
    def broken(names, dest):
        raise OSError("unreachable")

    def wrong_bytes(names, dest):
        for name in names:
            data._place(name, b"half a file", dest)

    with pytest.raises(data.DataError) as e:
        data.fetch(tmp_path, sources={"first": broken, "second": wrong_bytes})
    msg = str(e.value)
    assert "first: unreachable" in msg and "second:" in msg and "by hand" in msg
    raw = data.raw_dir(tmp_path)
    assert not raw.exists() or list(raw.iterdir()) == []


def test_missing_file_is_fetched_again(data_copy):
    (data.raw_dir(data_copy) / "train-labels-idx1-ubyte").unlink()
    data.fetch(data_copy, sources={"local copy": _copy_from_project})
    assert set(data.verify(data_copy).values()) == {"ok"}


def _copy_from_project(names, dest):
    for name in names:
        data._place(name, (data.raw_dir() / name).read_bytes(), dest)


def test_paper_scaling_maps_background_and_ink():
    X = torch.tensor([[[0, 255], [255, 0]]], dtype=torch.uint8)
    Z = data.scale_paper(X)
    assert Z.shape == (1, 1, 2, 2)
    assert torch.allclose(Z.min(), torch.tensor(-0.1)) and torch.allclose(
        Z.max(), torch.tensor(1.175)
    )


def test_standard_scaling_has_zero_mean_unit_std(mnist):
    Z = data.scale_standard(mnist["train"][0][:20000])
    assert abs(Z.mean().item()) < 0.01 and abs(Z.std().item() - 1) < 0.01


@pytest.mark.parametrize("scaling,background", [("paper", -0.1), ("standard", -0.1307 / 0.3081)])
def test_prepare_pads_to_32_with_background(mnist, scaling, background):
    Z = data.prepare(mnist["test"][0][:5], scaling)
    assert Z.shape == (5, 1, 32, 32)
    assert torch.allclose(Z[:, :, :2, :], torch.tensor(background))


def test_batches_cover_every_example_once_in_a_seeded_order():
    X, y = torch.arange(10).float(), torch.arange(10)
    seen = [yb for _, yb in data.batches(X, y, 3, torch.Generator().manual_seed(1))]
    assert sorted(torch.cat(seen).tolist()) == list(range(10))
    assert [len(b) for b in seen] == [3, 3, 3, 1]
    again = [yb for _, yb in data.batches(X, y, 3, torch.Generator().manual_seed(1))]
    assert all(torch.equal(a, b) for a, b in zip(seen, again, strict=True))
