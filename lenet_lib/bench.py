"""`lenet bench`: the project's training step against the textbook pipeline.

Both train the same LeNet-5 with the same optimizer and batch size in one process; the
textbook pipeline is torchvision's MNIST dataset with ToTensor and Normalize behind a
shuffled DataLoader (num_workers=0), the project's is whole tensors sliced by `data.batches`.
"""

from __future__ import annotations

import time

import torch

from . import data, runs, train


def _time_training(model, batches, images):
    opt = train.make_optimizer("adam", model.parameters(), 1e-3)
    model.train()
    seen, t0 = 0, time.perf_counter()
    for Xb, yb in batches:
        loss = model.loss(model(Xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
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


def eval_seconds() -> float:
    """Seconds for the per-epoch pass over the 10,000 test digits."""
    X, y = data.load_mnist("test")
    X = data.prepare(X)
    model = train.new_model(seed=0)
    t0 = time.perf_counter()
    train.evaluate(model, X, y)
    return time.perf_counter() - t0


def main(images=20000, batch_size=64):
    data.fetch()
    print(f"device: {runs.device_name(torch.device('cpu'))}, torch {torch.__version__}")
    print(f"timing {images:,} training images per pipeline, Adam, batch {batch_size}")
    textbook = textbook_rate(images, batch_size)
    project = project_rate(images, batch_size)
    evals = eval_seconds()
    # Adam 60 and 100 continue Adam 30, so the Adam runs cost 100 epochs, not 190.
    epochs = sum(e for opt, e, *_ in runs.TABLE2 if opt != "adam") + 100
    total = epochs * (60000 / project + evals)
    print(f"textbook DataLoader pipeline: {textbook:10,.0f} images/s")
    print(f"project in-memory pipeline:   {project:10,.0f} images/s")
    print(f"ratio:                        {project / textbook:10.2f}x")
    print(
        f"Table 2 at full length: {epochs} epochs (Adam 60 and 100 continue Adam 30), "
        f"about {total / 60:.1f} min for one seed on this machine "
        f"({total * 3 / 60:.1f} min for seeds 0,1,2)"
    )
    return {
        "textbook": textbook,
        "project": project,
        "ratio": project / textbook,
        "minutes": total / 60,
    }
