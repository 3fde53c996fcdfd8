"""The library's layout: folders by layer with imports that run one way, one idea a module, and
pages that import from `lenet_lib` alone (chapters that only read results never the runner)."""

import ast
import json
from pathlib import Path

import pytest
from conftest import ROOT

LIB = ROOT / "lenet_lib"
# The library's folders, lowest first (lenet_lib/__init__.py says what each holds). A module
# imports from its own folder or the folders before it, never after; cli.py sits on top.
GROUPS = ["base", "nets", "runs", "book"]
RANK = {g: i for i, g in enumerate(GROUPS)} | {"": len(GROUPS)}  # "": the top (cli.py)
RESULT_CHAPTERS = ("03_capacity", "07_optimizers", "08_handwriting", "09_paper")


def modules(lib=LIB) -> dict[str, str]:
    """Every module by name, with its folder ("" at the top; __init__ files left out)."""
    return {
        p.stem: p.parent.name if p.parent != lib else ""
        for p in sorted(lib.rglob("*.py"))
        if p.stem != "__init__" and "__pycache__" not in p.parts
    }


def imports(path: Path, group: str) -> set[str]:
    """The lenet_lib modules the file at `path` (in folder `group`) imports, at the top or inside
    a function, by name."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y (its own folder)
                out.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y
                out.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("lenet_lib"):
                rest = node.module.split(".")[1:]  # lenet_lib.g.x or lenet_lib.g
                out.update(rest[1:2] or [a.name for a in node.names if a.name != "__version__"])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lenet_lib."):
                    out.update(a.name.split(".")[2:3])
    return out


def _graph(lib=LIB) -> dict[str, set[str]]:
    where = modules(lib)
    return {m: imports(lib / g / f"{m}.py", g) - {m} for m, g in where.items()}


def test_module_names_are_unique():
    """`from lenet_lib import data` finds a module by its name alone."""
    names = [p.stem for p in LIB.rglob("*.py") if p.stem != "__init__"]
    assert len(names) == len(set(names))


def test_every_folder_is_a_layer():
    folders = {p.name for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(GROUPS), "name each folder of lenet_lib/ in GROUPS (tests/test_layout.py)"


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_only_from_lower_folders(name):
    where = modules()
    higher = [m for m in _graph()[name] if RANK[where.get(m, "base")] > RANK[where[name]]]
    assert not higher, f"{name} ({where[name] or 'top'}) imports {higher}, from a folder above it"


def test_the_library_imports_resolve():
    """Every name the import check reads is a module (a typo would slip past it otherwise)."""
    where = modules()
    assert not {m: sorted(ms - set(where)) for m, ms in _graph().items() if ms - set(where)}


def test_no_import_cycle():
    graph = _graph()
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for n in graph.get(m, ()):
            visit(n, path + [m])
        state[m] = "done"

    for m in graph:
        visit(m, [])


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_states_its_one_idea(name):
    """One idea per module (issue 25: in place of a line cap, which split modules by length):
    each opens with a docstring whose first sentence says what the module is."""
    path = LIB / modules()[name] / f"{name}.py"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split(".")[0].split()) >= 3, f"{path}: say what it is"


def test_no_fcntl():
    assert not any("fcntl" in p.read_text() for p in LIB.rglob("*.py"))


def test_pages_import_from_lenet_lib_alone():
    """The pages' one surface: `from lenet_lib import ...` (modules by name and PAGE_NAMES), so
    that moving a module between folders changes no page; every imported name exists."""
    import lenet_lib

    pages = [*(ROOT / "chapters").glob("*.ipynb"), *(ROOT / "appendix").glob("*.ipynb")]
    for path in pages:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom | ast.Import) and "lenet_lib" in ast.dump(node):
                    assert isinstance(node, ast.ImportFrom) and node.module == "lenet_lib", (
                        f"{path.name}: import from lenet_lib itself, not {ast.unparse(node)}"
                    )
                    for a in node.names:
                        assert getattr(lenet_lib, a.name, None) is not None, (path.name, a.name)


@pytest.mark.parametrize("chapter", RESULT_CHAPTERS)
def test_chapters_that_read_results_never_import_the_runner(chapter):
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    imported = {
        a.name
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.ImportFrom) and node.module == "lenet_lib"
        for a in node.names
    }
    assert "load_results" in imported or "load_model" in imported
    assert not imported & {"runner", "experiments"}


@pytest.mark.parametrize("chapter", sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb")))
def test_chapters_use_the_standard_kernel(chapter):
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_the_layer_test_sees_a_wrong_way_import(tmp_path):
    """The check itself can fail: a function-level import of the runner from models."""
    (tmp_path / "nets").mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "runner.py").write_text("")
    (tmp_path / "nets" / "models.py").write_text(
        "def f():\n    from lenet_lib.runs.runner import plan\n"
    )
    where = modules(tmp_path)
    assert (
        _graph(tmp_path)["models"] == {"runner"} and RANK[where["runner"]] > RANK[where["models"]]
    )
