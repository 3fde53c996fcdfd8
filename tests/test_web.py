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
    from lenet_lib import results

    df = results.load_results("paper")
    df = df[df["optimizer"].str.startswith("sdlm")]
    best = web.best_run()
    assert df.set_index("run_id").loc[best, "test_acc"] == df["test_acc"].max()


def test_export_web_refuses_a_missing_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", "export-web", str(tmp_path), "--paper-run", "nope"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no complete run nope" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "weights.json").exists()


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


def strokes_of(x: np.ndarray, digit: int) -> list[list[tuple[float, float]]]:
    """Pen strokes (x, y in 28x28 pixel units) along the ink of a real MNIST digit: for a 1,
    the ink's centre in each row, top to bottom; for a 0, the ink's mean radius in each of 36
    directions around its centre of mass, once round."""
    ink = x.astype(float) * (x > 127)
    rows, cols = np.nonzero(ink)
    if digit == 1:
        return [[(float(np.average(cols[rows == r], weights=ink[r, cols[rows == r]])), float(r))
                 for r in np.unique(rows)]]  # fmt: skip
    if digit == 0:
        cy, cx = (
            np.average(rows, weights=ink[rows, cols]),
            np.average(cols, weights=ink[rows, cols]),
        )
        angle = np.arctan2(rows - cy, cols - cx)
        radius = np.hypot(rows - cy, cols - cx)
        bins = np.floor((angle + np.pi) / (2 * np.pi) * 36).astype(int) % 36
        loop = []
        for b in range(36):
            if (bins == b).any():
                r = np.average(radius[bins == b], weights=ink[rows, cols][bins == b])
                a = (b + 0.5) / 36 * 2 * np.pi - np.pi
                loop.append((float(cx + r * np.cos(a)), float(cy + r * np.sin(a))))
        return [loop + loop[:1]]
    raise ValueError(f"no stroke recipe for {digit}")


@pytest.fixture(scope="module")
def built_page(tmp_path_factory):
    """A book of the draw page alone, built by jupyter-book with the project's _config.yml
    (so with lenet_lib.book.web): the whole book takes minutes, this one seconds."""
    book = tmp_path_factory.mktemp("book")
    (book / "chapters").mkdir()
    for name in ("_config.yml", "references.bib"):
        shutil.copyfile(ROOT / name, book / name)
    shutil.copyfile(ROOT / f"{PAGE}.md", book / f"{PAGE}.md")
    (book / "index.md").write_text("# The draw page alone\n\n```{bibliography}\n```\n")
    (book / "_toc.yml").write_text(f"format: jb-book\nroot: index\nchapters:\n  - file: {PAGE}\n")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(book)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    html = book / "_build" / "html"
    assert proc.returncode == 0 and (html / f"{PAGE}.html").exists(), proc.stdout + proc.stderr
    return html


@pytest.fixture(scope="module")
def server(built_page):
    """The built book over http://127.0.0.1 (Python's http.server, as a reader might)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(built_page))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("no chromium on PATH: install the Debian package `chromium` (make test does)")
    return path


def draw(page, strokes, live: bool = False):
    """Each stroke as one press, moves and release of the mouse on the drawing pad; with
    `live`, check that both networks answer before the first stroke ends."""
    box = page.locator("canvas.ld-pad").bounding_box()
    unit = box["width"] / 28
    for stroke in strokes:
        points = [(box["x"] + x * unit, box["y"] + y * unit) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for k, p in enumerate(points[1:]):
            page.mouse.move(*p, steps=2)
            if live and k == len(points) // 2:
                page.wait_for_function("Object.keys(LeNetDraw.answers).length == 2")
                assert all(a in "0123456789" for a in answers(page).values())
                live = False
        page.mouse.up()


def answers(page) -> dict:
    return {
        name: page.locator(f'.ld-net[data-net="{name}"] .ld-answer').inner_text()
        for name in ("notes", "paper")
    }


def test_the_built_page_reads_digits_drawn_in_chromium(server, mnist, tmp_path):
    from playwright.sync_api import sync_playwright

    X, y = mnist["test"]
    errors, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # Every console error fails the test but the browser's own request for /favicon.ico
        # (the book has no icon): a 404 the page never asked for.
        page.on(
            "console",
            lambda m: (
                errors.append(f"{m.text} ({m.location['url']})")
                if m.type == "error" and not m.location["url"].endswith("/favicon.ico")
                else None
            ),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
        page.goto(f"{server}/{PAGE}.html")
        page.wait_for_function("window.LeNetDraw && window.LeNetDraw.timings.ready !== null")
        assert answers(page) == {"notes": "?", "paper": "?"}
        shots = {}
        for digit in (1, 0):
            i = int((y == digit).nonzero()[0])  # the test set's first digit of this class
            draw(page, strokes_of(X[i].numpy(), digit), live=True)
            assert answers(page) == {"notes": str(digit), "paper": str(digit)}, f"test digit {i}"
            shots[digit] = tmp_path / f"draw-{digit}.png"
            page.screenshot(path=shots[digit], full_page=True)
            page.click("button.ld-clear")
            assert answers(page) == {"notes": "?", "paper": "?"}
        # Undo takes back the last stroke: a 1 and a stray dot, then the dot undone.
        i = int((y == 1).nonzero()[1])
        draw(page, strokes_of(X[i].numpy(), 1) + [[(25.0, 4.0)]])
        page.click("button.ld-undo")
        assert answers(page) == {"notes": "1", "paper": "1"}
        timings = page.evaluate(
            """() => ({
                load: performance.getEntriesByType("navigation")[0].loadEventEnd,
                ready: LeNetDraw.timings.ready,
                weights: LeNetDraw.timings.weights,
                strokes: LeNetDraw.timings.strokes,
            })"""
        )
        browser.close()
    (tmp_path / "timings.json").write_text(json.dumps(timings, indent=1))
    print(f"\nscreenshots {sorted(map(str, shots.values()))}; timings (ms) {timings}")
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not outside, f"the page fetched from outside the built book: {outside}"
    assert len(timings["strokes"]) == 4 and all(t > 0 for t in timings["strokes"])
