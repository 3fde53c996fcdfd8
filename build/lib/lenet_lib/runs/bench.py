"""`lenet bench`: the project's training engine against the textbook pipeline, and against
the machine's own limit.

Both train the notes' LeNet-5 with Adam at the same batch size in one process. The textbook
pipeline is torchvision's MNIST dataset with ToTensor and Normalize behind a shuffled
DataLoader (num_workers=0), the network as torch's layers in a Sequential
(`textbook_network`) and the textbook loop (`_textbook_step`); the project's is whole tensors
sliced by `data.batches`, `models.LeNet5` and `train.fit`'s own epoch loop. The limit is a
large fp32 matrix product, measured on the spot; `table2_seed_minutes` projects one seed of
Table 2.
"""

from __future__ import annotations

import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from lenet_lib.base import io
from lenet_lib.nets import data, train

from . import plans

WARMUP = 20  # batches run before the clock starts (first calls allocate and plan)
MIN_BATCHES = 10  # batches timed at least: fewer time the clock more than the training


def _time_training(model, batches, images, step):
    model.train()
    seen, n, t0 = 0, 0, None
    for Xb, yb in batches:
        step(Xb, yb)
        n += 1
        if n == WARMUP:
            t0 = time.perf_counter()
        elif n > WARMUP:
            seen += len(yb)
            if seen >= images:
                break
    return seen / (time.perf_counter() - t0)


def textbook_network() -> nn.Sequential:
    """The notes' LeNet-5 as textbooks write it: torch's layers in a Sequential, in torch's
    default layout (ReLU, then pooling; C5 a convolution)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def _textbook_step(model):
    """The textbook loop: torch's default Adam, and the running loss and accuracy read back
    after every batch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tally = [0.0, 0]

    def step(Xb, yb):
        out = model(Xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tally[0] += loss.item() * len(yb)
        tally[1] += (out.argmax(1) == yb).sum().item()

    return step


def textbook_rate(images: int, batch_size: int) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Pad(2),
            transforms.ToTensor(),
            transforms.Normalize((data.MNIST_MEAN,), (data.MNIST_STD,)),
        ]
    )
    ds = datasets.MNIST(str(data.DEFAULT_ROOT), train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    model = textbook_network()
    return _time_training(model, iter(loader), images, _textbook_step(model))


def project_rate(images: int, batch_size: int) -> float:
    """The project's engine: whole tensors sliced by `data.batches`, and `train.fit`'s own
    epoch loop (`TorchRule.train_epoch`), timed over `images` after WARMUP batches."""
    X, y = data.load_mnist("train")
    X = data.prepare(X)
    train.keep_freed_memory()
    model = train.new_model(seed=0)
    rule = train.TorchRule(model, "adam", 1e-3, None, 0.0, batch_size)
    gen = torch.Generator().manual_seed(0)
    warm = WARMUP * batch_size
    rule.train_epoch(model, X[:warm], y[:warm], gen, 0)
    t0 = time.perf_counter()
    rule.train_epoch(model, X[warm : warm + images], y[warm : warm + images], gen, 0)
    return images / (time.perf_counter() - t0)


def _one_thread_rate(images: int, batch_size: int) -> float:
    torch.set_num_threads(1)
    return project_rate(images, batch_size)


def parallel_rate(images: int, batch_size: int, jobs: int = 2) -> float:
    """Images/s of each of `jobs` processes training at once, one thread each, the way
    `lenet run --jobs 2` runs Table 2 (the slowest process's rate)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        rates = list(pool.map(_one_thread_rate, [images] * jobs, [batch_size] * jobs))
    return min(rates)


def eval_seconds() -> float:
    """Seconds for the per-epoch pass over the 10,000 test digits."""
    X, y = data.load_mnist("test")
    X = data.prepare(X)
    model = train.new_model(seed=0)
    t0 = time.perf_counter()
    train.evaluate(model, X, y)
    return time.perf_counter() - t0


def check(images: int, batch_size: int, output=None) -> None:
    """Refuse sizes the timing cannot honour (it takes `images` from one pass over the 60,000
    training digits after WARMUP batches, at least MIN_BATCHES of them), and an `output` that
    cannot be written, before any timing."""
    n = data.SPLIT_SIZES["train"]
    most = n - WARMUP * batch_size
    if images < 1 or batch_size < 1:
        raise ValueError(f"--images and --batch-size must be >= 1, got {images}, {batch_size}")
    if most < batch_size:
        raise ValueError(
            f"--batch-size {batch_size} leaves no batch to time after {WARMUP} warm-up batches "
            f"of the {n:,} digits: use at most {n // (WARMUP + 1):,}"
        )
    if images > most:
        raise ValueError(
            f"--images {images:,} is more than one pass leaves after {WARMUP} warm-up batches "
            f"of {batch_size}: use at most {most:,}"
        )
    if images < MIN_BATCHES * batch_size:
        raise ValueError(
            f"--images {images:,} is too few to time: use at least {MIN_BATCHES * batch_size:,} "
            f"({MIN_BATCHES} batches of {batch_size})"
        )
    if output is not None:
        _check_output(output)


def _check_output(output) -> None:
    import tempfile
    from pathlib import Path

    out = Path(output)
    if out.is_dir():
        raise ValueError(f"--output {output} is a folder: give a file name, e.g. bench.json")
    folder = out.absolute().parent
    while not folder.exists():  # io.write_json makes the folders that are missing
        folder = folder.parent
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise ValueError(f"--output {output}: cannot write in {folder} ({e.strerror}): "
                         "give a file in a folder you can write") from None  # fmt: skip


def sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's own limit, measured: an n x n fp32 matrix product (best of `repeats`)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def flops_per_image() -> float:
    """Floating-point operations of one training image of the notes' network: the forward
    pass's multiply-adds of every convolution and linear layer (two operations each), times
    three for the backward pass (a gradient for the inputs and one for the weights, each as
    costly as the forward). Counted on `textbook_network`, whose layers are all modules."""
    model = textbook_network()
    total = 0

    def count(layer, inputs, out):
        nonlocal total
        w = layer.weight
        total += 2 * out[0].numel() * (w.numel() // w.shape[0])

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [m.register_forward_hook(count) for m in layers]
    with torch.no_grad():
        model(torch.zeros(1, 1, 32, 32))
    for h in hooks:
        h.remove()
    return 3.0 * total


def table2_minutes(rate: float, evals: float, jobs: int) -> float:
    """Projected minutes for one seed of Table 2 at full length through `lenet run
    optimizers` with `jobs` workers, each run training at `rate` images/s and testing in
    `evals` seconds per epoch. The runner starts the Adam chain (30, then 60 and 100
    continued: 100 epochs) first; the other runs share the other workers. The wall time is
    the longer of the two (the critical path)."""
    others = sum(e for opt, e, *_ in plans.TABLE2 if opt != "adam")
    adam = max(e for opt, e, *_ in plans.TABLE2 if opt == "adam")
    epochs = max(adam, others / (jobs - 1)) if jobs > 1 else adam + others
    return epochs * (data.SPLIT_SIZES["train"] / rate + evals) / 60


def measure(images=20000, batch_size=64) -> dict:
    """Everything `lenet bench` reports, measured here and now (the textbook pipeline first,
    before the project's engine tunes the allocator of this process)."""
    check(images, batch_size)
    data.fetch()
    threads = torch.get_num_threads()
    textbook = textbook_rate(images, batch_size)
    project = project_rate(images, batch_size)
    gflops = sgemm_gflops()
    jobs = max(1, min(2, os.cpu_count() or 1))  # `lenet run`'s default on this machine
    one = parallel_rate(images, batch_size, jobs=1)
    parallel = parallel_rate(images, batch_size, jobs) if jobs > 1 else one
    evals = eval_seconds()
    flops = flops_per_image()
    return {
        "device": io.device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "threads": threads,
        "batch_size": batch_size,
        "images": images,
        "textbook_images_per_s": textbook,
        "project_images_per_s": project,
        "ratio": project / textbook,
        "one_thread_images_per_s": one,
        "parallel_jobs": jobs,
        "parallel_images_per_s_each": parallel,
        "sgemm_gflops": gflops,
        "flops_per_training_image": flops,
        "peak_fraction": project * flops / (gflops * 1e9),
        "eval_seconds": evals,
        "table2_seed_minutes": table2_minutes(parallel, evals, jobs),
    }


def report(m: dict) -> str:
    """The human format of `measure`'s numbers."""
    return "\n".join(
        [
            f"device: {m['device']}, torch {m['torch']}, {m['threads']} threads",
            f"{m['images']:,} training images per pipeline, Adam, batch {m['batch_size']}",
            f"textbook DataLoader pipeline: {m['textbook_images_per_s']:10,.0f} images/s",
            f"project engine:               {m['project_images_per_s']:10,.0f} images/s",
            f"ratio:                        {m['ratio']:10.2f}x",
            f"one thread:                   {m['one_thread_images_per_s']:10,.0f} images/s",
            f"{m['parallel_jobs']} processes at once, one thread each: "
            f"{m['parallel_images_per_s_each']:,.0f} images/s each",
            f"fp32 2048x2048 matrix product: {m['sgemm_gflops']:.1f} GFLOP/s; a training image "
            f"costs {m['flops_per_training_image'] / 1e6:.2f} MFLOP, so the engine runs at "
            f"{100 * m['peak_fraction']:.0f}% of that",
            f"test pass: {m['eval_seconds']:.2f} s per epoch",
            f"Table 2, one seed at full length with `lenet run optimizers --jobs "
            f"{m['parallel_jobs']}` (the Adam chain's 100 epochs the critical path): about "
            f"{m['table2_seed_minutes']:.1f} min",
        ]
    )


def main(images=20000, batch_size=64, fmt="text", output=None):
    """Measure and print; with `output`, also write the numbers and what produced them to
    that JSON file (the optimizer chapter reads `results/bench.json`)."""
    m = measure(images, batch_size)
    print(json.dumps(m, indent=2) if fmt == "json" else report(m))
    if output:
        record = {"bench": m, **io.provenance(torch.device("cpu"), data.data_checksums())}
        io.write_json(output, record)
    return m
