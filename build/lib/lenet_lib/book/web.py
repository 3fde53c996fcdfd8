"""The page "Draw a digit" (chapter 10): the trained networks exported for the reader's browser.

`export` writes the two networks' weights as JSON, a static figure for readers without
JavaScript, and the page's scripts (`web/`) into a folder of the built book; `lenet export-web`
calls it, and as a Sphinx extension (`_config.yml`) the module does it on every book build.
The forward passes and the normalization run in `web/lenet.js`, checked against this library
by tests/test_web.py.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from lenet_lib.nets import data
from lenet_lib.nets.models import ACTIVATIONS, RBF, SparseConv2d
from lenet_lib.runs.plans import NOTES_RUN

ASSETS = Path(__file__).resolve().parents[2] / "web"
# The page's files copied next to the weights; the book's page loads them from there.
ASSET_FILES = ("lenet.js", "draw.js", "draw.css")
# The notes' network the book uses throughout (chapters 07 and 08): plans.NOTES_RUN, a run of
NOTES_EXPERIMENT = "optimizers"
# The paper's network: a named run of results/paper/, or None for the best one (`best_run`).
PAPER_EXPERIMENT, PAPER_RUN = "paper", None
# The MNIST test digits of the static figure (the first three of the test set).
FIGURE_DIGITS = (0, 1, 2)


def best_run(experiment: str = PAPER_EXPERIMENT, results_dir=None, optimizer: str = "sdlm") -> str:
    """The complete run of `experiment` trained with `optimizer` (or a variant of it, such as
    sdlm-exact) with the highest test accuracy; a tie goes to the first run id in alphabetical
    order. The draw page (10) shows the paper's network so."""
    from lenet_lib.runs import results

    df = results.load_results(experiment, results_dir=results_dir or results.RESULTS)
    df = df[df["optimizer"].str.startswith(optimizer)]
    if df.empty:
        raise FileNotFoundError(
            f"no complete {optimizer} run in {experiment}: run `lenet run {experiment}` first"
        )
    return str(df.sort_values(["test_acc", "run_id"], ascending=[False, True]).iloc[0]["run_id"])


def _floats(t: torch.Tensor) -> dict:
    """A tensor as its shape and its float32 values, little-endian, in base64 (exact)."""
    a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
    return {"shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def network_json(model, run_id: str, experiment: str, results_dir=None) -> dict:
    """One trained model as the page reads it: its layers' tensors, its activation, pooling,
    C3 table and output head, the input scaling as background and ink values, and the run's
    id and test accuracy. Raises ValueError for a model the page cannot run (28x28 input)."""
    from lenet_lib.base import io
    from lenet_lib.runs import results

    if model.in_size != 32:
        raise ValueError(f"run {run_id}: the page runs 32x32-input networks, not {model.in_size}")
    state = model.state_dict()
    tensors = {k: v for k, v in state.items() if not k.startswith("c3.")}
    c3_table = None
    if isinstance(model.c3, SparseConv2d):
        tensors["c3.weight"] = model.c3.full_weight()
        c3_table = model.c3.table.tolist()
    else:
        tensors["c3.weight"] = model.c3.weight
    tensors["c3.bias"] = model.c3.bias
    (activation,) = [k for k, f in ACTIVATIONS.items() if f is model.act]
    # The scaling of data.prepare, read off its output for the 256 grey levels: the page maps
    # level v to background + v / 255 * (ink - background), which must be what prepare does.
    X = torch.zeros(1, 28, 28, dtype=torch.uint8)
    X.view(-1)[:256] = torch.arange(256, dtype=torch.uint8)
    x = data.prepare(X, model.scaling)[0, 0].double()
    background, levels = float(x[0, 0]), x[2:30, 2:30].flatten()[:256]
    ink = float(levels[255])
    line = background + torch.arange(256, dtype=torch.float64) / 255 * (ink - background)
    if not torch.allclose(levels, line, atol=1e-5):
        raise ValueError(f"scaling {model.scaling!r} is not linear in the grey level")
    summary = io.read_json(
        Path(results_dir or results.RESULTS) / experiment / run_id / "summary.json",
        keys=("test_acc", "epochs", "optimizer"),
    )
    return {
        "run_id": run_id,
        "experiment": experiment,
        "test_acc": summary["test_acc"],
        "epochs": summary["epochs"],
        "optimizer": summary["optimizer"],
        "activation": activation,
        "pool": model.pool,
        "head": "rbf" if isinstance(model.output, RBF) else "linear",
        "c3_table": c3_table,
        "input": {"scaling": model.scaling, "background": background, "ink": ink},
        "tensors": {k: _floats(v) for k, v in tensors.items()},
    }


def load_networks(notes_run: str = NOTES_RUN, paper_run: str | None = PAPER_RUN, results_dir=None):
    """The two trained models of the page, {'notes': (model, run id), 'paper': (...)};
    `paper_run` None takes the best paper run (`best_run`)."""
    from lenet_lib.runs import results

    results_dir = results_dir or results.RESULTS
    paper_run = paper_run or best_run(PAPER_EXPERIMENT, results_dir)
    return {
        name: (results.load_model(run, experiment, results_dir=results_dir), run, experiment)
        for name, run, experiment in (
            ("notes", notes_run, NOTES_EXPERIMENT),
            ("paper", paper_run, PAPER_EXPERIMENT),
        )
    }


def static_figure(networks: dict, X: torch.Tensor):
    """For readers without JavaScript: digits (N, 28, 28) uint8, the 32x32 input the networks
    see, the notes' network's probabilities and the paper's network's RBF penalties."""
    import matplotlib.pyplot as plt

    notes, paper = networks["notes"], networks["paper"]
    with torch.no_grad():
        p = notes[0].probabilities(notes[0](data.prepare(X, notes[0].scaling)))
        penalties = paper[0](data.prepare(X, paper[0].scaling))
    fig, axes = plt.subplots(len(X), 3, figsize=(9, 2.1 * len(X)), width_ratios=[1, 2, 2])
    digits = np.arange(10)
    for i, row in enumerate(np.atleast_2d(axes)):
        row[0].imshow(data.pad32(X[i : i + 1, None].float(), 0)[0, 0], cmap="gray_r")
        row[0].set_xticks([])
        row[0].set_yticks([])
        for ax, values, best in (
            (row[1], p[i].numpy(), int(p[i].argmax())),
            (row[2], penalties[i].numpy(), int(penalties[i].argmin())),
        ):
            ax.bar(digits, values, color=["C3" if d == best else "C0" for d in digits])
            ax.set_xticks(digits)
            ax.get_xticklabels()[best].set(color="C3", fontweight="bold")
            ax.spines[["top", "right"]].set_visible(False)
        row[1].set_ylim(0, 1)
    axes[0, 0].set_title("input, 32x32", fontsize=9)
    axes[0, 1].set_title(f"the notes' network ({notes[1]})\nprobability, highest wins", fontsize=9)
    axes[0, 2].set_title(f"the paper's network ({paper[1]})\nRBF penalty, lowest wins", fontsize=9)
    fig.tight_layout()
    return fig


def export(outdir, notes_run: str = NOTES_RUN, paper_run: str | None = PAPER_RUN, results_dir=None):
    """Write the page's files into `outdir`: `weights.json` (both networks, `network_json`),
    `noscript.png` (`static_figure` of MNIST test digits) and the scripts of `web/`.
    `lenet export-web` and the book build call it. Returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lenet_lib.base import io

    networks = load_networks(notes_run, paper_run, results_dir)
    payload = {
        name: network_json(model, run, experiment, results_dir)
        for name, (model, run, experiment) in networks.items()
    }
    X, _ = data.load_mnist("test")
    fig = static_figure(networks, X[list(FIGURE_DIGITS)])
    # Everything is computed before the first file is written, so a bad run or missing data
    # leaves `outdir` as it was.
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = [outdir / "weights.json", outdir / "noscript.png"]
    io.write_atomic(written[0], json.dumps(payload, separators=(",", ":")))
    fig.savefig(written[1], dpi=100, facecolor="white")
    plt.close(fig)
    for name in ASSET_FILES:
        written.append(outdir / name)
        shutil.copyfile(ASSETS / name, written[-1])
    return written


def _build_finished(app, exception) -> None:
    """After an HTML build: the page's files into `_static/draw/` of the built book."""
    if exception is not None or app.builder.format != "html":
        return
    cfg = app.config
    out = Path(app.outdir) / "_static" / "draw"
    export(out, cfg.lenet_draw_notes_run, cfg.lenet_draw_paper_run or None)
    from sphinx.util import logging

    logging.getLogger(__name__).info(f"lenet_lib.book.web: the draw page's files written to {out}")


def setup(app):
    """Sphinx extension: every HTML build of the book exports the draw page's files. The runs
    are set in `_config.yml` (sphinx.config): lenet_draw_notes_run (a run of
    results/optimizers), lenet_draw_paper_run (a run of results/paper; empty: the best)."""
    app.add_config_value("lenet_draw_notes_run", NOTES_RUN, "html", types=[str])
    app.add_config_value("lenet_draw_paper_run", "", "html", types=[str])
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
