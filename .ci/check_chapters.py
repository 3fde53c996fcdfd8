"""Check chapter notebooks (a pre-commit hook): the standard `python3` kernel, so that they run in
any Jupyter, Binder or Colab; exactly one code cell tagged `parameters`, which papermill injects
into; glue from `lenet_lib.book`, since `myst_nb` is missing outside the build (Colab); and no
visible plumbing: a code cell that glues values but shows the reader nothing (no table, figure
or printed line) must fold or drop its code (`hide-input` or `remove-input`).

Usage: python .ci/check_chapters.py chapters/NN_topic.ipynb ...; exit status 1 on any problem.
"""

from __future__ import annotations

import ast
import json
import sys

HIDDEN = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
SHOWS = {"print", "display", "show"}  # calls that put something in front of the reader


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def glue_only(source: str) -> bool:
    """Whether a cell glues values and shows nothing: no print/display call and no final
    expression other than a glue call."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    calls = [_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    if not any(c.startswith("glue") for c in calls) or SHOWS & set(calls):
        return False
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.Expr):
        return isinstance(last.value, ast.Call) and _name(last.value).startswith("glue")
    return True


def problems(path: str) -> list[str]:
    """What is wrong with the chapter at `path`, one line each (empty: nothing)."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{path}: not a readable notebook ({e})"]
    found = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        found.append(
            f"{path}: kernelspec name is {kernel!r}, not 'python3'; "
            "set metadata.kernelspec to the standard python3 kernel"
        )
    cells = nb.get("cells", [])
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1 or tagged[0].get("cell_type") != "code":
        found.append(
            f"{path}: {len(tagged)} cells tagged 'parameters'; tag exactly one code cell, "
            "the one with the chapter's defaults"
        )
    for i, cell in enumerate(cells):
        source = "".join(cell.get("source", []))
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell.get("cell_type") == "code" and not tags & HIDDEN and glue_only(source):
            found.append(
                f"{path}: cell {i} only glues values and shows nothing: tag it 'remove-input' "
                "(or 'hide-input' where a reader may want the code)"
            )
        if cell.get("cell_type") == "code" and "from myst_nb import" in source:
            found.append(
                f"{path}: cell {i} imports myst_nb, which is missing outside the book's build; "
                "use `from lenet_lib.book import glue`"
            )
    return found


def main(paths: list[str]) -> int:
    found = [line for path in paths for line in problems(path)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
