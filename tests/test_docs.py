"""The README, CONTRIBUTING.md and the book's pages name only what exists: `lenet` subcommands
and their options, `make` targets, experiments and files (issue 25: the docs had drifted)."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from lenet_lib import cli
from lenet_lib.runs.plans import EXPERIMENTS

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"```[^\n]*\n(.*?)```|`([^`\n]+)`", re.S)
# placeholders and generated or fetched places, never committed
SKIP_PATHS = (
    "_build",
    ".venv",
    "/tmp",
    "data/MNIST",
    "MNIST/raw",
    "OWNER",
    "NN_",
    "DIR",
    "RUN",
    "EXPERIMENT",
)
EXTENSIONS = (".py", ".csv", ".json", ".md", ".yml", ".yaml", ".ipynb", ".toml", ".js", ".css")


def doc_texts() -> dict[str, str]:
    """Every text a reader reads: the README, CONTRIBUTING.md, the book's markdown pages and
    the markdown cells of its notebooks."""
    out = {p.name: p.read_text() for p in (ROOT / "README.md", ROOT / "CONTRIBUTING.md")}
    for p in [ROOT / "intro.md", ROOT / "claims.md", *sorted(ROOT.glob("appendix/*.md"))]:
        out[str(p.relative_to(ROOT))] = p.read_text()
    for p in sorted([*ROOT.glob("chapters/*.ipynb"), *ROOT.glob("appendix/*.ipynb")]):
        cells = json.loads(p.read_text())["cells"]
        out[str(p.relative_to(ROOT))] = "\n\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
    return out


def code_spans(text: str) -> list[str]:
    """The code in a text: each line of its fenced blocks and each inline span, with whether it
    is a line of a block (a command, whose bare file names may be its outputs)."""
    spans = []
    for block, inline in CODE.findall(text):
        spans += [(line, True) for line in block.splitlines()] if block else [(inline, False)]
    return spans


def subcommands() -> dict[str, set[str]]:
    """Each `lenet` subcommand and its option strings."""
    sub = next(a for a in cli.parser()._actions if a.dest == "command")
    return {name: set(p._option_string_actions) for name, p in sub.choices.items()}


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def tracked_files() -> set[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def problems(name: str, text: str, files: set[str]) -> list[str]:
    """What `text` names that does not exist, one line each."""
    found = []
    commands, targets = subcommands(), make_targets()
    names = {Path(f).name for f in files}
    folders = {str(p) for f in files for p in Path(f).parents}
    for span, in_block in code_spans(text):
        code = span.split("#")[0]
        for m in re.finditer(r"(?:^|[\s/])lenet ([a-z][a-z-]*)(.*)", code):
            sub, rest = m.group(1), m.group(2)
            if sub not in commands:
                found.append(f"{name}: `lenet {sub}` is not a subcommand")
                continue
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                if opt not in commands[sub]:
                    found.append(f"{name}: `lenet {sub}` has no option {opt}")
            if sub in ("run", "results", "prune"):
                words = re.match(r"((?:\s+[a-z][a-z0-9]*(?=\s|$))*)", rest).group(1)
                for word in words.split():
                    if word not in EXPERIMENTS:
                        found.append(f"{name}: `lenet {sub} {word}`: no experiment {word!r}")
        for t in re.findall(r"(?:^|\s)make ([a-z][a-z-]*)", code):
            if t not in targets:
                found.append(f"{name}: `make {t}` is not a target of the Makefile")
        for token in re.findall(r"[\w./-]+", code):
            token = token.rstrip(".,:;")
            if any(s in token for s in SKIP_PATHS) or not re.match(r"\w", token):
                continue
            if "/" in token and "." not in Path(token).name[1:] and token.endswith("/"):
                if token.rstrip("/") not in folders:
                    found.append(f"{name}: no folder {token}")
            elif token.endswith(EXTENSIONS) and "<" not in token:
                if "/" not in token and in_block:
                    continue
                ok = token in files if "/" in token else token in names
                if not ok and not (ROOT / token).exists():
                    found.append(f"{name}: no file {token}")
    return found


@pytest.mark.parametrize("name", sorted(doc_texts()))
def test_docs_name_only_what_exists(name):
    assert problems(name, doc_texts()[name], tracked_files()) == []


def test_the_check_finds_what_does_not_exist():
    text = (
        "```bash\nlenet frobnicate\nlenet run optimizers --turbo\nlenet run lenet7\n"
        "make deploy\n```\nSee `STYLE.md` and `lenet_lib/nothing.py`; `results/nowhere/`."
    )
    found = problems("fake", text, tracked_files())
    assert len(found) == 7, found
    assert (
        problems("fake", "`lenet run optimizers --seeds 0` and `make book`", tracked_files()) == []
    )


def test_readme_lists_every_experiment_and_is_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 100
    line = next(s for s in readme.split("\n\n") if s.startswith("Experiments:"))
    assert set(re.findall(r"`([a-z0-9]+)`", line)) == set(EXPERIMENTS)
