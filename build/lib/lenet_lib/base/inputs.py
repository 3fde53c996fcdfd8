"""What each chapter read, so that the book never shows a number its inputs no longer give.

The book's execution cache (jupyter-cache) keys a chapter on its code cells only: a changed
`summary.json` or library function would leave the old outputs on the page. This module is a
Sphinx extension (listed in `_config.yml`) that closes that gap. While a chapter executes, the
library's readers call `record_read` for every results folder and data file they open; the
extension stores what was read and a fingerprint of it (with the whole of `lenet_lib/`), and at
the next build re-executes every chapter whose fingerprint changed. A chapter with no record
(never executed under this extension, or its execution failed) is executed again.

Standard library only: Sphinx imports it without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

LOG_VAR = "LENET_READS_LOG"  # set by the extension while a chapter executes
LIBRARY = Path(__file__).resolve().parents[1]  # all of lenet_lib/
_SKIP = {"__pycache__", ".ipynb_checkpoints"}


def record_read(path) -> None:
    """Note that the executing chapter read `path` (a file or a folder); outside a book build
    this does nothing. Called by `data` and `results` (every chapter's inputs)."""
    log = os.environ.get(LOG_VAR)
    if log:
        with open(log, "a") as f:
            f.write(f"{Path(path).resolve()}\n")


def mark_started() -> None:
    """Create the chapter's (possibly empty) log: proof that it executed rather than came from
    the cache. Called by `page.start` (`lenet_lib.start`), the first call of every page the
    book executes."""
    log = os.environ.get(LOG_VAR)
    if log:
        Path(log).touch()


def _files(path: Path):
    if path.is_file():
        yield path
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file() and not _SKIP & set(p.parts) and p.suffix not in (".lock", ".tmp"):
                yield p


def fingerprint(reads, root) -> str:
    """sha256 over the names and contents of `lenet_lib/` and every path in `reads` (names
    relative to `root`, so a copy of the repository keeps its fingerprints)."""
    root = Path(root).resolve()
    h = hashlib.sha256()
    for top in [LIBRARY, *sorted(Path(root, r) for r in reads)]:
        h.update(f"{_rel(top, root)}\n".encode())
        found = False
        for f in _files(top):
            found = True
            h.update(f"{_rel(f, root)} {hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
        if not found:
            h.update(b"missing\n")
    return h.hexdigest()


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:  # outside the repository (LENET_DATA elsewhere): keep it absolute
        return str(path.resolve())


# The Sphinx extension.


class _State:
    """`{docname: {"reads": [...], "fingerprint": ...}}` in the build's doctree folder."""

    def __init__(self, app):
        self.root = Path(app.srcdir)
        self.path = Path(app.doctreedir) / "lenet_inputs.json"
        self.logs = Path(app.doctreedir) / "lenet_reads"
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.docs = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.docs = {}

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.docs, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


def _log():
    from sphinx.util import logging

    return logging.getLogger(__name__)


def _notebook(env, docname) -> Path | None:
    """The source of a document myst-nb executes: a notebook, or a MyST text notebook."""
    path = Path(env.doc2path(docname))
    if path.suffix == ".ipynb":
        return path
    if path.suffix == ".md" and "kernelspec:" in path.read_text()[:2000]:
        return path
    return None


def _forget_cached(app, nb_path: Path) -> None:
    """Drop the execution cache's record of a notebook, matched by path and by content."""
    import nbformat
    from jupyter_cache import get_cache

    cache_path = app.env.mystnb_config.execution_cache_path  # myst-nb resolves it at init
    if not cache_path or not Path(cache_path).exists():
        return
    cache = get_cache(cache_path)
    pks = {r.pk for r in cache.list_cache_records() if Path(r.uri).resolve() == nb_path.resolve()}
    if nb_path.suffix == ".ipynb":  # a text notebook is matched by its path alone
        try:
            pks.add(cache.match_cache_notebook(nbformat.read(nb_path, as_version=4)).pk)
        except KeyError:
            pass
    for pk in pks:
        cache.remove_cache(pk)


def _outdated(app, env, added, changed, removed):
    state = _State(app)
    stale = []
    for docname in sorted(env.found_docs):
        nb = _notebook(env, docname)
        if nb is None:
            continue
        rec = state.docs.get(docname)
        if rec and rec["fingerprint"] == fingerprint(rec["reads"], state.root):
            continue
        _forget_cached(app, nb)
        state.docs.pop(docname, None)
        stale.append(docname)
    state.save()
    if not stale:
        return []
    _log().info(f"[lenet_lib.base.inputs] inputs changed or unrecorded: {', '.join(stale)}")
    # Every other page is re-read too (from the cache: seconds), so that pages pasting another
    # page's glued values (the introduction, the claims page) are written with the new values.
    return sorted(env.found_docs)


def _source_read(app, docname, source):
    nb = _notebook(app.env, docname)
    if nb is None:
        return
    state = _State(app)
    rec = state.docs.get(docname)
    # A page that reads the claims ledger (the claims and front pages, read after the chapters)
    # is checked again here: a chapter executed earlier in this build may have rewritten it.
    if rec and any("lenet_claims" in r for r in rec["reads"]):
        if rec["fingerprint"] != fingerprint(rec["reads"], state.root):
            _forget_cached(app, nb)
            state.docs.pop(docname)
            state.save()
    log = state.logs / f"{docname.replace('/', '__')}.log"
    log.unlink(missing_ok=True)
    os.environ[LOG_VAR] = str(log)


def _doctree_read(app, doctree):
    docname = app.env.docname
    log = Path(os.environ.pop(LOG_VAR, "") or "/nonexistent")
    if _notebook(app.env, docname) is None or not log.exists():
        return  # not a notebook, or its outputs came from the cache: the record stands
    state = _State(app)
    reads = sorted({_rel(Path(line), state.root) for line in log.read_text().split()})
    state.docs[docname] = {"reads": reads, "fingerprint": fingerprint(reads, state.root)}
    state.save()
    log.unlink()


def setup(app):
    app.connect("env-get-outdated", _outdated)
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
