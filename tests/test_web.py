"""web.py, web/lenet.js and the page "Draw a digit" (chapter 10): the networks and the
normalization in JavaScript against PyTorch and lenet_lib, and the built page in a real browser."""

import base64
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from scipy import ndimage

from lenet_lib import data, handwriting, web

NODE = shutil.which("node")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PAGE = "chapters/10_draw"
PAD_SIZE = 280  # the drawing pad's CSS size, web/draw.css


def b64(a) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The page's files as `lenet export-web` writes them."""
    out = tmp_path_factory.mktemp("export")
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", "export-web", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def run_node(request: dict, tmp_path: Path) -> dict:
    if NODE is None:
        pytest.fail("node is not installed: install Node.js (the Debian package nodejs)")
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    proc = subprocess.run(
        [NODE, str(ROOT / "tests" / "web_parity.js"), str(path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_export_names_the_runs_and_writes_the_page_files(exported):
    spec = json.loads((exported / "weights.json").read_text())
    assert spec["notes"]["run_id"] == web.NOTES_RUN
    assert spec["paper"]["run_id"] == web.best_run()
    assert spec["paper"]["head"] == "rbf" and spec["notes"]["head"] == "linear"
    for name in (*web.ASSET_FILES, "noscript.png"):
        assert (exported / name).stat().st_size > 0
    assert (exported / "lenet.js").read_bytes() == (web.ASSETS / "lenet.js").read_bytes()


def test_best_run_is_the_highest_test_accuracy():
    from lenet_lib import runs

    df = runs.load_results("paper")
    best = web.best_run()
    assert df.set_index("run_id").loc[best, "test_acc"] == df["test_acc"].max()


def test_js_forward_pass_matches_pytorch_on_mnist(exported, mnist, tmp_path):
    X, _ = mnist["test"]
    X = X[:50]
    answer = run_node(
        {
            "lib": str(ROOT / "web" / "lenet.js"),
            "weights": str(exported / "weights.json"),
            "digits": [b64(x) for x in X.numpy()],
            "scans": [],
        },
        tmp_path,
    )
    for name, (model, _, _) in web.load_networks().items():
        with torch.no_grad():
            expected = model(data.prepare(X, model.scaling)).double()
        got = torch.tensor(answer[name], dtype=torch.float64)
        assert got.shape == (50, 10)
        diff = (got - expected).abs().max().item()
        assert diff < 1e-4, f"{name}: JS outputs differ from PyTorch's by {diff}"
        assert torch.equal(model.decide(got), model.decide(expected)), name


def scanned(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An MNIST digit (28, 28) as a scan of a pen-written digit: enlarged, its strokes
    thickened, dark ink on uneven light paper somewhere on a larger page, with sensor noise."""
    zoom = rng.uniform(3, 7)
    big = np.asarray(
        Image.fromarray(x).resize((round(28 * zoom), round(28 * zoom)), Image.BICUBIC), float
    )
    big = ndimage.grey_dilation(big, size=int(rng.integers(1, 6)))
    h, w = rng.integers(big.shape[0] + 10, big.shape[0] * 2 + 40, size=2)
    top, left = rng.integers(0, h - big.shape[0]), rng.integers(0, w - big.shape[1])
    ink = np.zeros((h, w))
    ink[top : top + big.shape[0], left : left + big.shape[1]] = big / 255
    paper = rng.uniform(190, 240) + np.linspace(0, rng.uniform(-15, 15), w)[None, :]
    page = paper - ink * (paper - rng.uniform(20, 90)) + rng.normal(0, rng.uniform(1, 4), (h, w))
    return page.round().clip(0, 255).astype(np.uint8)


def test_js_normalization_matches_lenet_predict_on_scans(mnist, tmp_path):
    X, _ = mnist["test"]
    rng = np.random.default_rng(0)
    scans = [scanned(x, rng) for x in X[100:120].numpy()]
    expected = []
    for i, s in enumerate(scans):
        png = tmp_path / f"scan{i}.png"
        Image.fromarray(s).save(png)
        expected.append(handwriting.load_digit(png).numpy().astype(int))  # `lenet predict`'s path
    answer = run_node(
        {
            "lib": str(ROOT / "web" / "lenet.js"),
            "weights": None,
            "digits": [],
            "scans": [{"h": s.shape[0], "w": s.shape[1], "data": b64(s)} for s in scans],
        },
        tmp_path,
    )
    for i, (got, want) in enumerate(zip(answer["normalized"], expected, strict=True)):
        got = np.asarray(got).reshape(28, 28)
        assert want.max() == 255, f"scan {i}: no digit found"
        diff = np.abs(got - want).max()
        assert diff <= 1, f"scan {i}: JS normalization differs by {diff} grey levels"
