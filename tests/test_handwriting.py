"""handwriting.py and `lenet predict`: new digits read by a trained model (chapter 08)."""

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image

from lenet_lib import digits, handwriting, results
from lenet_lib.nets.models import LeNet5Paper


def complete_run() -> str:
    """The trained run to test with: adam-e100-s0 if it is there, else any complete run."""
    try:
        done = results.load_results("optimizers")["run_id"].tolist()
    except FileNotFoundError:
        done = []
    if not done:
        pytest.fail(
            f"no complete run in {results.RESULTS / 'optimizers'}: these tests need a trained "
            "model; run `lenet run optimizers --only adam-e30-s0` (or `make reproduce`)"
        )
    preferred = [r for r in ("adam-e100-s0", "adam-e60-s0", "adam-e30-s0") if r in done]
    return (preferred or done)[0]


@pytest.fixture(scope="module")
def trained():
    rid = complete_run()
    return rid, results.load_model(rid)


def save_png(path, pixels):
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def test_lenet_predict_reads_a_png_and_reports_a_text_file(trained, mnist, tmp_path):
    rid, model = trained
    X, y = mnist["test"]
    p = handwriting.digit_probabilities(model, X[:100])
    confident = ((p.argmax(1) == y[:100]) & (p.max(1).values > 0.99)).nonzero().ravel()
    i = int(confident[0])
    big = Image.fromarray(X[i].numpy()).resize((100, 100), Image.BILINEAR)
    png = save_png(tmp_path / "digit.png", 255 - np.asarray(big))  # dark ink on white
    txt = tmp_path / "notes.txt"
    txt.write_text("not a digit\n")
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_lib.cli", "predict", str(txt), str(png), "--run", rid],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode != 0
    assert f"{png}: {int(y[i])} (probability" in proc.stdout
    assert "notes.txt" not in proc.stdout
    assert f"error: {txt}: not an image file" in proc.stderr


def test_predict_cli_names_each_bad_file_and_classifies_the_rest(trained, mnist, tmp_path, capsys):
    rid, _ = trained
    X, _ = mnist["test"]
    good = save_png(tmp_path / "light_on_dark.png", X[0].numpy())
    blank = save_png(tmp_path / "blank.png", np.full((50, 50), 240))
    missing = tmp_path / "missing.png"
    code = handwriting.predict_cli([blank, good, missing, tmp_path], run=rid)
    out, err = capsys.readouterr()
    assert code == 1
    assert out.count("\n") == 1 and out.startswith(f"{good}: ")
    assert f"error: {blank}: no ink found" in err
    assert f"error: {missing}: no such file" in err
    assert f"error: {tmp_path}: is a folder" in err
    assert handwriting.predict_cli([good], run=rid) == 0


def test_either_polarity_gives_the_same_digit(mnist, tmp_path):
    X, _ = mnist["test"]
    x = X[1].numpy().astype(np.float32)
    grey_paper = 200 - x * (150 / 255)  # dark ink on grey paper, low contrast
    ink, inverted = handwriting.ink_bright(grey_paper)
    assert inverted
    ink2, inverted2 = handwriting.ink_bright(x)
    assert not inverted2
    assert torch.equal(digits.normalize(ink), digits.normalize(ink2))
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)  # black ink on a transparent background
    rgba[..., 3] = X[1].numpy()
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert torch.equal(handwriting.load_digit(tmp_path / "rgba.png"), digits.normalize(ink2))


def test_blank_and_noisy_pages_are_refused():
    with pytest.raises(handwriting.ImageError, match="no ink"):
        handwriting.ink_bright(np.full((40, 40), 255.0))
    noise = np.random.default_rng(0).normal(230, 8, (40, 40)).clip(0, 255)
    with pytest.raises(handwriting.ImageError, match="no ink"):
        handwriting.ink_bright(noise)


def test_paper_model_probabilities_rank_by_lowest_penalty():
    torch.manual_seed(0)
    model = LeNet5Paper(scaling="paper").eval()
    X = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    p = handwriting.digit_probabilities(model, X)
    penalties = model(handwriting.data.prepare(X, "paper"))
    assert torch.allclose(p.sum(1), torch.ones(5))
    assert torch.equal(p.argmax(1), penalties.argmin(1))


def test_sklearn_digits_come_out_like_mnist():
    X, y, raw = handwriting.load_sklearn_digits()
    assert X.shape == (1797, 28, 28) and X.dtype == torch.uint8 and raw.shape == (1797, 8, 8)
    assert torch.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert (digits.bounding_boxes(X).max(1).values == 20).all()
    assert ((digits.centres_of_mass(X.float()) - 14).abs() <= 0.51).all()


def test_confusions_counted_and_ranked():
    y = torch.tensor([3, 3, 3, 7, 7, 1, 1, 1])
    y_hat = torch.tensor([5, 5, 3, 3, 7, 7, 1, 4])
    c = handwriting.confusion(y, y_hat)
    assert c.sum() == 8 and c[3, 5] == 2 and c[7, 3] == 1 and c.trace() == 3
    top = handwriting.most_confused(y, y_hat, k=2)
    assert top[["true", "predicted", "count"]].values.tolist() == [[3, 5, 2], [1, 4, 1]]
    assert handwriting.pair_rank(y, y_hat, 3, 5) == 1
    assert handwriting.pair_rank(y, y_hat, 7, 3) == 2  # tied with 1->4 and 1->7
    assert handwriting.pair_rank(y, y_hat, 5, 3) is None


def test_measure_runs_reads_every_run_from_its_weights(trained, mnist):
    rid, model = trained
    X_test, y_test = (t[:300] for t in mnist["test"])
    X_new, y_new, _ = handwriting.load_sklearn_digits()
    runs = (
        results.load_results("optimizers").query("run_id == @rid").assign(experiment="optimizers")
    )
    m = handwriting.measure_runs(runs, X_test, y_test, X_new[:300], y_new[:300]).iloc[0]
    assert m["run"] == rid
    assert m["MNIST test %"] == pytest.approx(handwriting.accuracy(model, X_test, y_test)[0])
    _, y_hat = handwriting.accuracy(model, X_new[:300], y_new[:300])
    rank = handwriting.pair_rank(y_new[:300], y_hat, 3, 5)
    assert m["3 as 5 rank"] == (float("inf") if rank is None else rank)
    assert re.fullmatch(r"\d as \d \(\d+\)", m["commonest error"])
