"""Digits from outside MNIST: your own image files, `lenet predict`, and scikit-learn's digits.

Every digit goes through the steps that built MNIST (`digits.normalize`) before a trained
model reads it. Used by the handwriting chapter (08) and the `lenet predict` command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lenet_lib.nets import data, digits
from lenet_lib.runs.plans import NOTES_RUN

# An image has ink if some pixel differs from the background by at least this share of the
# full range (0 to 255); below it the image is taken as blank paper.
MIN_CONTRAST = 0.25
# Pixels fainter than this share of the darkest ink are taken as paper noise and dropped.
NOISE_FLOOR = 0.1
# Fewer pixels than this at half the darkest ink or more are a speck, not a digit (MNIST's
# thinnest 1s have about 40 at 28x28).
MIN_INK_PIXELS = 12


class ImageError(ValueError):
    """An image file that cannot be read as a digit; the message says why."""


def read_grey(path: str | Path) -> np.ndarray:
    """The pixels of an image file (PNG, JPEG, anything PIL reads) as grey levels (H, W).

    The camera's orientation tag is applied, and a transparent background counts as white
    paper. Raises ImageError naming the problem for a missing, unreadable or non-image file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise ImageError(f"holds {frames} frames (an animation): save the frame with "
                                 "the digit as a PNG or JPEG of its own")  # fmt: skip
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
            if im.mode.startswith("I;16") or (im.mode == "I" and im.getextrema()[1] > 255):
                return np.asarray(im, dtype=np.float32) * (255 / 65535)  # 16-bit grey
            return np.asarray(im.convert("L"), dtype=np.float32)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image file") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except UnidentifiedImageError:
        raise ImageError("not an image file PIL can read (PNG, JPEG, ...)") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot read the image: {e}") from None


def ink_bright(grey: np.ndarray) -> tuple[np.ndarray, bool]:
    """Grey levels (H, W) of either polarity as ink bright on a black background, 0..255.

    The background is the median of the border pixels; if it is nearer the image's lightest
    level than its darkest, the image is dark ink on light paper and is inverted. Returns the
    image and whether it was inverted. Raises ImageError if no pixel stands out from the
    background by `MIN_CONTRAST` of the full range (a blank page).
    """
    g = np.asarray(grey, dtype=np.float32)
    if g.ndim != 2 or g.size == 0:
        raise ImageError(f"expected a 2-D grey image, got shape {g.shape}")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    background = float(np.median(border))
    inverted = background > (float(g.min()) + float(g.max())) / 2
    ink = (background - g) if inverted else (g - background)
    ink = np.clip(ink, 0, None)
    if ink.max() < MIN_CONTRAST * 255:
        raise ImageError(
            f"no ink found: no pixel differs from the background by more than "
            f"{ink.max():.0f} of 255 grey levels (a blank image?)"
        )
    strokes = int((ink >= ink.max() / 2).sum())
    if strokes < MIN_INK_PIXELS:
        raise ImageError(
            f"too little ink for a digit: {strokes} pixel(s) of ink, fewer than "
            f"{MIN_INK_PIXELS} (a speck or a blank page?): write the digit larger or darker"
        )
    ink[ink < NOISE_FLOOR * ink.max()] = 0
    return ink * (255 / ink.max()), inverted


def load_digit(path: str | Path) -> torch.Tensor:
    """An image file of one digit, either polarity, as an MNIST digit (28, 28) uint8.

    Raises ImageError, with the reason, if the file is not an image or holds no ink.
    """
    ink, _ = ink_bright(read_grey(path))
    return digits.normalize(ink)


@torch.no_grad()
def digit_probabilities(model, X: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) of a trained model for MNIST-like digits (N, 28, 28) uint8,
    scaled as the model was trained (`model.scaling`); see `LeNet5.probabilities`."""
    model.eval()
    return model.probabilities(model(data.prepare(X, model.scaling)))


def predict_cli(paths, run: str = NOTES_RUN, results_dir=None) -> int:
    """`lenet predict IMAGE... [--run RUN]`: print the predicted digit of each image file.

    One line per file on stdout, `FILE: DIGIT (probability P)`; a file that cannot be read or
    holds no ink gets an `error: FILE: REASON` line on stderr and the others are still
    classified. Returns 0 if every file was classified, else 1.
    """
    from lenet_lib.runs import results

    model = results.load_model(run, results_dir=results_dir or results.RESULTS)
    failed = 0
    for path in paths:
        try:
            X = load_digit(path)[None]
        except (ImageError, ValueError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        p, digit = digit_probabilities(model, X)[0].max(0)
        print(f"{path}: {int(digit)} (probability {float(p):.3f})", flush=True)
    if failed and len(paths) > 1:  # one file: its own error line is the last line
        print(f"error: {failed} of {len(paths)} files could not be classified (see above)",
              file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


def from_blocks(grids: torch.Tensor, upsample: int = 1) -> torch.Tensor:
    """Block-count images (N, 8, 8), 0 to 16 ink, normalized as MNIST digits (N, 28, 28) uint8.

    With `upsample` 1 the 8x8 grid goes to `digits.normalize` as it is, whose bilinear
    resampling interpolates between the block counts; with `upsample` k each block is first
    repeated k x k times (a blocky image).
    """
    if upsample != 1:
        grids = F.interpolate(grids[:, None].float(), scale_factor=upsample)[:, 0]
    return torch.stack([digits.normalize(g.numpy() * (255 / 16)) for g in grids])


def load_sklearn_digits(upsample: int = 1):
    """scikit-learn's 1,797 digits, normalized as MNIST was.

    They are the test part of the UCI optdigits set, written by 13 people (of the set's 43),
    none of them MNIST's writers; the set ships with scikit-learn. Each 8x8 pixel counts the
    ink (0 to 16) in a 4x4 block of a 32x32 binary image. Returns the normalized digits (N, 28, 28)
    uint8 (see `from_blocks` for `upsample`), the labels (N,) int64 and the raw 8x8 images
    (N, 8, 8) float. Used by the handwriting chapter (08).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    raw = torch.as_tensor(d.images, dtype=torch.float32)
    return from_blocks(raw, upsample), torch.as_tensor(d.target, dtype=torch.int64), raw


def optdigits_like(X: torch.Tensor) -> torch.Tensor:
    """MNIST digits (N, 28, 28) as the optdigits set stores its digits: (N, 8, 8) block counts.

    Each digit is scaled so that its longer side spans 32 pixels, cut to black and white at
    half the ink level, and its ink counted in 4x4 blocks (0 to 16). The handwriting chapter
    (08) uses it to tell the loss of resolution from the change of writers.
    """
    big = torch.stack([digits.normalize(x.numpy(), box=32, field=32) for x in X])
    return (big > 127).float().view(-1, 8, 4, 8, 4).sum((2, 4))


def confusion(y: torch.Tensor, y_hat: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """Counts (classes, classes): row is the true class, column the predicted one."""
    from sklearn.metrics import confusion_matrix

    return torch.as_tensor(confusion_matrix(y, y_hat, labels=range(classes)))


def most_confused(y: torch.Tensor, y_hat: torch.Tensor, k: int = 5):
    """The `k` most frequent errors as a DataFrame: true digit, predicted digit, count, and the
    share (%) of that true digit's examples read so (the handwriting chapter, 08)."""
    import pandas as pd

    c = confusion(y, y_hat)
    rows = [
        {
            "true": t,
            "predicted": p,
            "count": int(c[t, p]),
            "share %": 100 * c[t, p].item() / c[t].sum().item(),
        }
        for t in range(len(c))
        for p in range(len(c))
        if t != p and c[t, p] > 0
    ]
    df = pd.DataFrame(rows, columns=["true", "predicted", "count", "share %"])
    return (
        df.sort_values(["count", "true", "predicted"], ascending=[False, True, True])
        .head(k)
        .reset_index(drop=True)
    )


def pair_rank(y: torch.Tensor, y_hat: torch.Tensor, true: int, predicted: int) -> int | None:
    """Rank of the error `true` read as `predicted` among all errors by frequency (1: the
    commonest; ties share a rank), or None if it never happens (the handwriting chapter, 08)."""
    c = confusion(y, y_hat)
    n = int(c[true, predicted])
    if true == predicted or n == 0:
        return None
    off = c[~torch.eye(len(c), dtype=torch.bool)]
    return 1 + int((off > n).sum())


def accuracy(model, X: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """Accuracy (%) of a trained model on digits (N, 28, 28) uint8, and its answers (N,)
    (the handwriting chapter, 08)."""
    y_hat = digit_probabilities(model, X).argmax(1)
    return 100 * (y_hat == y).float().mean().item(), y_hat


def measure_runs(runs, X_test, y_test, X_new, y_new, results_dir=None):
    """Every run in `runs` (rows of `results.load_results`, with an `experiment` column) read
    from its weights and measured on MNIST's test digits and on the new writers: accuracies,
    the rank of the notes' two errors (3 read as 5, 7 read as 3; inf: never made) and the
    commonest error (the handwriting chapter, 08)."""
    import pandas as pd

    from lenet_lib.runs.results import RESULTS, load_model

    out = []
    for r in runs.itertuples():
        model = load_model(r.run_id, r.experiment, results_dir or RESULTS)
        acc_mnist, _ = accuracy(model, X_test, y_test)
        acc_new, y_hat = accuracy(model, X_new, y_new)
        top = most_confused(y_new, y_hat, 1).to_dict("records")[0]
        ranks = {f"{t} as {p} rank": pair_rank(y_new, y_hat, t, p) for t, p in ((3, 5), (7, 3))}
        out.append(
            {"experiment": r.experiment, "run": r.run_id, "seed": r.seed, "MNIST test %": acc_mnist,
             "new writers %": acc_new}
            | {k: float("inf") if v is None else v for k, v in ranks.items()}
            | {"commonest error": f"{top['true']} as {top['predicted']} ({top['count']})"}
        )  # fmt: skip
    return pd.DataFrame(out)


def committed_answers(experiments, X: torch.Tensor, results_dir=None):
    """Every committed network of `experiments` (each run with its weights in results/) read
    on the digits X (N, 28, 28) uint8: a frame of answers, one column per run, named
    `<experiment>/<run id>` (the dataset chapter's two halves of the test set, 01; the 3->5
    rank among MNIST's own errors, 08)."""
    import pandas as pd

    from lenet_lib.runs.results import RESULTS, load_model, load_results

    out = {}
    for e in experiments:
        for r in load_results(e, results_dir or RESULTS).itertuples():
            if (Path(r.run_dir) / "checkpoint.pt").exists():
                model = load_model(r.run_id, e, results_dir or RESULTS)
                out[f"{e}/{r.run_id}"] = digit_probabilities(model, X).argmax(1).numpy()
    return pd.DataFrame(out)
