"""lenet_lib.book.page: the figure style and glue inside and outside the book's build."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import pytest
from IPython.core.pylabtools import print_figure
from PIL import Image

from lenet_lib.book import page as book


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


def test_the_book_workflow_sets_the_repository_it_runs_in(tmp_path):
    """The Book workflow's own step, run on a copy of _config.yml, gives jupyter-book a
    repository_url, and the buttons come on (issue 24: no hand-editing)."""
    import subprocess
    from pathlib import Path

    import yaml
    from jupyter_book.config import get_final_config

    root = Path(__file__).resolve().parent.parent
    workflow = yaml.safe_load((root / ".github" / "workflows" / "book.yml").read_text())
    step = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("name") == "repository.url")
    assert step["env"]["REPO_URL"] == "${{ github.server_url }}/${{ github.repository }}"
    config = tmp_path / "_config.yml"
    config.write_text((root / "_config.yml").read_text())
    url = "https://github.com/someone/lenet5"
    subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env={"REPO_URL": url}, check=True)
    assert yaml.safe_load(config.read_text())["repository"]["url"] == url

    final, *_ = get_final_config(
        user_yaml=config,
        cli_config={"latex_individualpages": False},
        sourcedir=root,
        validate=False,
    )
    built = SimpleNamespace(html_theme_options=final["html_theme_options"])
    book._repository_buttons(None, built)
    options = built.html_theme_options
    assert options["repository_url"] == url and options["use_repository_button"]
    assert options["launch_buttons"]["colab_url"] and options["launch_buttons"]["binderhub_url"]

    # run again on the committed file's empty url: the step refuses a config it cannot set
    config.write_text((root / "_config.yml").read_text().replace('url: ""', "url: x"))
    again = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env={"REPO_URL": url})
    assert again.returncode != 0


def test_search_keeps_decimal_numbers_whole():
    """The index side of the search: 88.23 is one word, as the query side keeps it."""
    assert book.NUMBER_WORDS.findall("Table 2: 88.23% and 0.95%, lenet_lib.book") == [
        "Table", "2", "88.23", "and", "0.95", "lenet_lib", "book",
    ]  # fmt: skip
    assert "splitQuery" in book.SPLIT_QUERY


# --- a page's first call, and no import that changes anything ------------------------------

ROOT = Path(__file__).resolve().parent.parent
# Every page the book executes: the notebooks, and the MyST text notebooks among its pages.
PAGES = sorted(
    [*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("appendix/*.ipynb")]
    + [p for p in ROOT.glob("*.md") if "kernelspec:" in p.read_text()[:2000]]
)


def _code_cells(path: Path) -> list[str]:
    """The page's code cells but the launch set-up and the parameters, in order."""
    if path.suffix == ".md":
        return path.read_text().split("```{code-cell}")[1:]
    skip = {"remove-cell", "parameters"}  # .ci/setup_cell.py, and papermill's cell
    return [
        "".join(c["source"])
        for c in json.loads(path.read_text())["cells"]
        if c["cell_type"] == "code" and not skip & set(c["metadata"].get("tags", []))
    ]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_executed_page_calls_start_in_its_imports_cell(path):
    first = _code_cells(path)[0]
    assert re.search(r"from lenet_lib import \(?[\w,\s]*\bstart\b", first), path.name
    assert re.search(r"^start\(\)", first, re.M), f"{path.name}: call start() in its first cell"


def test_importing_the_library_changes_nothing(tmp_path):
    """No style applied and no build log touched by an import: `start()` does both."""
    log = tmp_path / "reads.log"
    code = (
        "import matplotlib as mpl; before = dict(mpl.rcParams)\n"
        "import lenet_lib, lenet_lib.book.page, lenet_lib.book.claims\n"
        "import os; assert not os.path.exists(os.environ['LENET_READS_LOG'])\n"
        "assert dict(mpl.rcParams) == before, 'an import changed the figure style'\n"
        "lenet_lib.start()\n"
        "assert os.path.exists(os.environ['LENET_READS_LOG'])\n"
        "assert mpl.rcParams['figure.facecolor'] == 'white' and mpl.rcParams['font.size'] == 9\n"
    )
    env = os.environ | {"LENET_READS_LOG": str(log), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_each_script_is_listed_once_on_a_page():
    js = [SimpleNamespace(filename=f, attributes=a) for f, a in
          [("a.js", {}), (None, {"body": "const THEBE_JS_URL = 1"}), ("a.js", {}),
           (None, {"body": "const THEBE_JS_URL = 1"}), ("a.js", {"defer": "defer"})]]  # fmt: skip
    context = {"script_files": js}
    book._scripts_once(None, "intro", "page.html", context, None)
    assert context["script_files"] == [js[0], js[1], js[4]]
