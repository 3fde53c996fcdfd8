"""The library's layout: imports run one way, no file is too long to read, and the chapters
that only read results reach them through results.py."""

import ast
import json

import pytest
from conftest import ROOT

LIB = ROOT / "lenet_lib"
# Lowest first. A module may import from its own layer or any layer before it, never after.
LAYERS = [
    {"__init__", "io", "inputs", "notes", "verdicts"},
    {"data", "digits"},
    {"models"},
    {"receptive", "capacity", "sdlm_net", "lush_net"},
    {"sdlm", "cuda_graphs", "lush"},
    {"train"},
    {"experiments", "runfolder", "plans"},
    {"worker", "cluster"},
    {"runner"},
    {"results"},
    {"claims", "report", "plots", "handwriting", "bench", "book", "web", "scorecard", "ladder"},
    {"cli"},
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
RESULT_CHAPTERS = ("03_capacity", "07_optimizers", "08_handwriting", "09_paper")


def modules():
    return sorted(p.stem for p in LIB.glob("*.py"))


def imports(name: str, lib=LIB) -> set[str]:
    """The lenet_lib modules that `name` imports, at the top or inside a function."""
    tree = ast.parse((lib / f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from .x import y
                out.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import x, y (the version is __init__'s)
                out.update("__init__" if a.name == "__version__" else a.name for a in node.names)
            elif node.module and node.module.startswith("lenet_lib"):
                rest = node.module.split(".")[1:]
                out.update(rest[:1] or [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lenet_lib."))
    return out


def test_every_module_has_a_layer():
    missing = [m for m in modules() if m not in RANK]
    assert not missing, f"add {missing} to LAYERS in tests/test_layout.py"


@pytest.mark.parametrize("name", modules())
def test_imports_only_from_lower_layers(name):
    higher = [m for m in imports(name) if RANK.get(m, -1) > RANK[name]]
    assert not higher, f"lenet_lib/{name}.py imports {higher}, which sit above it"


def test_no_import_cycle():
    graph = {m: imports(m) - {m} for m in modules()}
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


@pytest.mark.parametrize("name", modules())
def test_every_module_states_its_one_idea(name):
    """One idea per module (issue 25: in place of a line cap, which split modules by length):
    each opens with a docstring whose first sentence says what the module is."""
    doc = ast.get_docstring(ast.parse((LIB / f"{name}.py").read_text()))
    assert doc and len(doc.split(".")[0].split()) >= 3, f"lenet_lib/{name}.py: say what it is"


def test_no_fcntl():
    assert not any("fcntl" in (LIB / f"{m}.py").read_text() for m in modules())


@pytest.mark.parametrize("chapter", RESULT_CHAPTERS)
def test_chapters_that_read_results_never_import_the_runner(chapter):
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "lenet_lib.results import" in code
    for module in ("runner", "experiments"):
        assert f"lenet_lib.{module}" not in code and f" {module}," not in code


@pytest.mark.parametrize("chapter", sorted(p.stem for p in (ROOT / "chapters").glob("*.ipynb")))
def test_chapters_use_the_standard_kernel(chapter):
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_the_layer_test_sees_a_wrong_way_import(tmp_path):
    """The check itself can fail: a function-level import of the runner from models."""
    (tmp_path / "models.py").write_text("def f():\n    from .runner import plan\n")
    assert imports("models", tmp_path) == {"runner"} and RANK["runner"] > RANK["models"]
