"""The book's tables and figures (lenet_lib.book.plots)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lenet_lib import plots  # noqa: E402


def test_table_has_its_caption_a_fixed_precision_and_right_aligned_numbers():
    df = pd.DataFrame({"name": ["a", "b"], "value": [1.23456, 12345.6]})
    html = plots.table(df, "A caption.", precision=2, index=False).to_html()
    assert "<caption>A caption.</caption>" in html
    assert "1.23<" in html and "12,345.60<" in html and "1.2346" not in html
    assert "text-align: right" in html


def test_glue_figure_gives_an_opaque_white_background():
    fig, _ = plt.subplots()
    fig.patch.set_alpha(0.0)  # what the inline backend does
    plots.glue_figure("test_figure", fig)  # outside a kernel glue shows nothing
    assert fig.patch.get_facecolor() == (1.0, 1.0, 1.0, 1.0)


def test_squashing_draws_the_sigmoid_and_four_curves_beside_it():
    import numpy as np

    fig = plots.squashing(np.linspace(-6, 6, 101))
    left, right = fig.axes
    assert len(left.lines) == 1 + 2 and len(right.lines) == 4 + 2  # curves and the two axes
    plt.close(fig)


def test_the_convolution_chapters_figures_draw():
    import numpy as np

    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 6, 28, 28))
    frame = pd.DataFrame(
        rng.random((4, 2)),
        index=pd.MultiIndex.from_product([["notes", "paper"], ["C1", "S2"]]),
        columns=[1, 2],
    )
    gates = pd.DataFrame({"gain": [0.1, 5.0] * 2, "gate": ["OR", "OR", "AND", "AND"],
                          "R2 linear": [1.0, 0.5, 1.0, 0.4], "Boolean share": [0, 0.9, 0, 0.8]})  # fmt: skip
    figures = [
        plots.kernels({"notes": rng.normal(size=(6, 5, 5)), "paper": rng.normal(size=(6, 5, 5))}),
        plots.digit_maps(rng.random((3, 32, 32)), maps, 1.7),
        plots.shifted_maps(rng.random((5, 32, 32)), maps[0, :5], 1.7),
        plots.shift_layers(frame),
        plots.gain_curves(gates, marks=(0.1, 5.0)),
        plots.panels(list(maps[0, :4]), list("abcd"), [1, 1.7, 1.7, 1.7]),
    ]
    assert [len(f.axes) for f in figures] == [12, 21, 10, 2, 2, 4]
    for f in figures:
        plt.close(f)
