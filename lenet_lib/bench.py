"""`lenet bench`: the project's training step against the textbook pipeline.

Both train the same LeNet-5 with the same optimizer and batch size in one process; the
textbook pipeline is torchvision's MNIST dataset with ToTensor and Normalize behind a
shuffled DataLoader (num_workers=0), the project's is whole tensors sliced by `data.batches`.
"""

from __future__ import annotations

import os
import time

import torch

from . import data, experiments, io, train

WARMUP = 20  # batches run before the clock starts (first calls allocate and plan)


def _time_training(model, batches, images):
    opt = train.make_optimizer("adam", model.parameters(), 1e-3)
    model.train()
    seen, step, t0 = 0, 0, None
    for Xb, yb in batches:
        loss = model.loss(model(Xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step == WARMUP:
            t0 = time.perf_counter()
        elif step > WARMUP:
            seen += len(yb)
            if seen >= images:
                break
    return seen / (time.perf_counter() - t0)


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
    return _time_training(train.new_model(seed=0), iter(loader), images)


def project_rate(images: int, batch_size: int) -> float:
    X, y = data.load_mnist("train")
    X = data.prepare(X)
    gen = torch.Generator().manual_seed(0)
    return _time_training(train.new_model(seed=0), data.batches(X, y, batch_size, gen), images)


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


def check(images: int, batch_size: int) -> None:
    """Refuse sizes the timing cannot honour: it takes `images` from one pass over the
    60,000 training digits after WARMUP batches."""
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


def main(images=20000, batch_size=64):
    check(images, batch_size)
    data.fetch()
    print(f"device: {io.device_name(torch.device('cpu'))}, torch {torch.__version__}")
    print(f"timing {images:,} training images per pipeline, Adam, batch {batch_size}")
    textbook = textbook_rate(images, batch_size)
    project = project_rate(images, batch_size)
    evals = eval_seconds()
    jobs = max(1, min(2, os.cpu_count() or 1))
    parallel = parallel_rate(images, batch_size, jobs)
    # Adam 60 and 100 continue Adam 30, so the Adam runs cost 100 epochs, not 190.
    others = sum(e for opt, e, *_ in experiments.TABLE2 if opt != "adam")
    epochs = others + 100
    total = epochs * (60000 / project + evals)
    # --jobs 2: the Adam chain (100 epochs) beside the three 30-epoch runs (90), one thread each
    longest = max(100, others) if jobs == 2 else epochs
    total_jobs = longest * (60000 / parallel + evals * jobs)
    print(f"textbook DataLoader pipeline: {textbook:10,.0f} images/s")
    print(f"project in-memory pipeline:   {project:10,.0f} images/s")
    print(f"ratio:                        {project / textbook:10.2f}x")
    print(f"{jobs} processes at once, one thread each: {parallel:,.0f} images/s each")
    print(
        f"Table 2 at full length: {epochs} epochs (Adam 60 and 100 continue Adam 30): about "
        f"{total / 60:.1f} min for one seed with one process, {total_jobs / 60:.1f} min with "
        f"`lenet run optimizers --jobs {jobs}` ({3 * total_jobs / 60:.1f} min for seeds 0,1,2)"
    )
    return {
        "textbook": textbook,
        "project": project,
        "ratio": project / textbook,
        "parallel": parallel,
        "minutes": total / 60,
        "minutes_jobs": total_jobs / 60,
    }
