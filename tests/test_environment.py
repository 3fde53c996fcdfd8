"""The pins of pyproject.toml and environment.yml agree, and CI runs the README's command."""

import re
import tomllib

from conftest import ROOT


def pins_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(r.split("==") for r in reqs)


def pins_environment():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pins = [re.match(r"\s+- ([A-Za-z0-9_.-]+)==(\S+)$", line) for line in lines]
    return dict(m.groups() for m in pins if m)


def test_every_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for r in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.+]*", r), r


def test_environment_yml_carries_the_same_pins():
    assert pins_environment() == pins_pyproject()


def test_environment_yml_python_matches():
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_ci_runs_make_test():
    lines = [s for s in (ROOT / ".ci/run").read_text().splitlines() if s and not s.startswith("#")]
    assert lines[-1] == "make test"


def test_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
