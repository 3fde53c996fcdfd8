"""lenet_lib.book: the figure style and glue inside and outside the book's build."""

import io
import sys
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
from IPython.core.pylabtools import print_figure
from PIL import Image

from lenet_lib import book


def test_style_gives_white_opaque_figures_and_one_font_size():
    book.use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="a line")
    ax.legend()
    ax.set_title("a title")
    # The PNG that IPython (and so myst-nb's glue) makes of a figure.
    png = Image.open(io.BytesIO(print_figure(fig, "png"))).convert("RGBA")
    plt.close(fig)
    assert png.getpixel((0, 0)) == (255, 255, 255, 255)
    sizes = {ax.title.get_fontsize(), ax.xaxis.label.get_fontsize()}
    sizes |= {t.get_fontsize() for t in ax.get_xticklabels() + ax.get_legend().get_texts()}
    assert sizes == {matplotlib.rcParams["font.size"]}


def test_glue_where_myst_nb_is_missing_shows_the_value(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import fails, as on Colab
    book.glue("test_value", "0.42", display=False)
    assert "test_value = 0.42" in capsys.readouterr().out


def test_glue_in_a_jupyter_frontend_also_shows_the_value(monkeypatch, capsys):
    monkeypatch.setenv("JPY_SESSION_NAME", "chapters/07_optimizers.ipynb")
    book.glue("test_value", 3, display=False)
    assert "test_value = 3" in capsys.readouterr().out


def test_glue_under_nbclient_only_glues(monkeypatch, capsys):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    book.glue("test_value", 0.5, display=False)
    assert "test_value = " not in capsys.readouterr().out


def test_repository_url_drives_the_buttons():
    launch = {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.example"}
    unset = SimpleNamespace(
        html_theme_options={"repository_url": "", "launch_buttons": dict(launch)}
    )
    book._repository_buttons(None, unset)
    options = unset.html_theme_options
    assert not options["use_repository_button"] and not options["use_issues_button"]
    assert not any(options["launch_buttons"].values())
    assert options["use_download_button"]

    url = "https://github.com/someone/lenet5"
    fork = SimpleNamespace(
        html_theme_options={"repository_url": url, "launch_buttons": dict(launch)}
    )
    book._repository_buttons(None, fork)
    options = fork.html_theme_options
    assert options["use_repository_button"] and options["use_issues_button"]
    assert options["launch_buttons"] == launch
