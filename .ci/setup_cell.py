# Opened from a launch button (Colab, Binder) the project is not installed: install it and fetch MNIST.
import importlib.util
import os
import pathlib
import subprocess
import sys

if importlib.util.find_spec("lenet_lib") is None:
    # LENET_REPO: a clone's folder or the repository's git URL (Colab); unset, the clone this
    # notebook sits in (Binder). LENET_SETUP_DRY_RUN=1 prints the commands instead.
    source = os.environ.get("LENET_REPO", "")
    if not source:
        here = pathlib.Path.cwd()
        clone = [p for p in (here, *here.parents) if (p / "lenet_lib" / "__init__.py").exists()]
        if not clone:
            raise RuntimeError("lenet_lib is missing: set LENET_REPO to the project's git URL")
        source = str(clone[0])
    steps = []
    if "://" in source or source.startswith("git@"):
        steps.append(["git", "clone", "--depth", "1", source, "lenet5"])
        source = "lenet5"
    steps.append([sys.executable, "-m", "pip", "install", "-q", "-e", source])
    steps.append([sys.executable, "-m", "lenet_lib.cli", "data", "fetch"])
    for step in steps:
        print("$", " ".join(step))
        if os.environ.get("LENET_SETUP_DRY_RUN") != "1":
            subprocess.run(step, check=True)
    if os.environ.get("LENET_SETUP_DRY_RUN") != "1":
        sys.path.insert(0, str(pathlib.Path(source).resolve()))
