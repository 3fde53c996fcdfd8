"""The library's side of the book: a page's first call (`start`: the one figure style, and the
inputs tracker's mark), glue that also works outside the build, and a Sphinx extension, loaded
by `_config.yml`, for the book's HTML: its repository buttons, a search that finds numbers and
each script once on a page.

Importing this module changes nothing: every page the book executes calls `start()` first.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

STYLE = Path(__file__).with_name("lenet.mplstyle")


def use_style() -> None:
    """Apply the book's figure style: a white background, readable in the theme's dark mode, and
    one font size (`start`)."""
    import matplotlib.style

    matplotlib.style.use(STYLE)


def start() -> None:
    """The first call of every page the book executes (its imports cell): the book's figure
    style and, inside a book build, the mark that the page executed rather than came from the
    execution cache (`inputs.mark_started`)."""
    from lenet_lib.base.inputs import mark_started

    mark_started()
    use_style()


def _interactive() -> bool:
    """True in a frontend a person reads: JupyterLab or Notebook (jupyter_server names the
    notebook in JPY_SESSION_NAME), Colab, VS Code. False under nbclient (the book build,
    papermill, nbconvert), where the glued values belong in the notebook's outputs only."""
    if os.environ.get("JPY_SESSION_NAME") or "google.colab" in sys.modules:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "__vsc_ipynb_file__" in shell.user_ns


def glue(name: str, value, display: bool = True) -> None:
    """Glue `value` under `name` for `{glue:text}` and `{glue:figure}` in the book; outside the
    build, or where myst-nb is not installed (Colab), simply show it (every chapter).

    Parameters
    ----------
    name : str
        The glue key, `<chapter>_<quantity>`.
    value : object
        A string, number, figure or anything IPython can display.
    display : bool
        Also show the value in the book's cell output (myst-nb's meaning). Outside the build the
        value is always shown: the prose that would have quoted it is not rendered there.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        myst_glue = None
    if myst_glue is not None:
        myst_glue(name, value, display=display)
        if display or not _interactive():
            return
    _show(name, value)


def _show(name: str, value) -> None:
    if isinstance(value, str | int | float):
        print(f"{name} = {value}")
        return
    try:
        from IPython.display import display
    except ImportError:
        print(f"{name} = {value!r}")
        return
    display(value)


def _repository_buttons(app, config) -> None:
    # `repository.url` in _config.yml is the one setting: set, it turns on the launch buttons
    # (Binder, Colab) and the repository and issue buttons; unset, all stay off, since the theme
    # fails on launch buttons without a repository and jupyter-book on repository buttons.
    options = config.html_theme_options
    url = options.get("repository_url", "")
    options["use_repository_button"] = options["use_issues_button"] = bool(url)
    options["use_download_button"] = True
    if not url:
        launch = dict(options.get("launch_buttons", {}))
        for key in ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url"):
            launch[key] = ""
        options["launch_buttons"] = launch


# Sphinx's search splits "88.23" into "88" and "23" when it indexes a page and drops a query
# word made of digits alone, so the notes' numbers could not be found. Both sides keep a
# decimal number whole: the index through this word pattern, the query through `splitQuery`,
# which searchtools.js uses when a page defines it first.
NUMBER_WORDS = re.compile(r"\d+(?:\.\d+)+|\w+")
SPLIT_QUERY = r"""var splitQuery = (query) => query
  .split(/[^\p{Letter}\p{Number}_.\p{Emoji_Presentation}]+/gu)
  .flatMap((t) => (/^\d+(\.\d+)+$/.test(t) ? [t] : t.split(".")))
  .filter((t) => t);"""


def _numbers_searchable(app) -> None:
    from sphinx import search
    from sphinx.search.en import SearchEnglish

    class SearchWithNumbers(SearchEnglish):
        _word_re = NUMBER_WORDS

    search.languages["en"] = SearchWithNumbers
    app.add_js_file(None, body=SPLIT_QUERY, priority=200)


def _scripts_once(app, pagename, templatename, context, doctree) -> None:
    """Each script once on a page. sphinx-thebe adds its settings (`const THEBE_JS_URL = ...`)
    when the environment is read, and under jupyter-book 1.0.4 with Sphinx 7.4 every page then
    lists them twice: the second is a SyntaxError in the console of every page of the book."""
    seen, unique = set(), []
    for js in context.get("script_files", []):
        key = (str(js.filename or ""), tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    context["script_files"] = unique


def setup(app):
    """Sphinx extension: the buttons that `repository.url` drives (the book's `_config.yml`),
    a search that finds decimal numbers such as the notes' 88.23, and each script once on a
    page (`_scripts_once`)."""
    app.connect("config-inited", _repository_buttons)
    app.connect("html-page-context", _scripts_once)
    _numbers_searchable(app)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
