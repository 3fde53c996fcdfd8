"""Measuring digits and normalizing new ones the way MNIST was built.

`bounding_boxes` and `centres_of_mass` check the dataset chapter's claims (01); `normalize`
puts digits from outside MNIST through the same steps for the handwriting chapter and
`lenet predict` (08).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Where MNIST puts the centre of mass in its 28x28 field, in 0-based pixel coordinates:
# (14, 14), half a pixel below and right of the geometric centre (13.5, 13.5), as the
# dataset chapter measures.
MNIST_CENTRE = 14.0


def bounding_boxes(X: torch.Tensor, threshold: int = 0) -> torch.Tensor:
    """Height and width (N, 2) of the box holding the pixels of each image above `threshold`."""
    ink = X > threshold
    rows, cols = ink.any(2), ink.any(1)
    idx = torch.arange(X.shape[-1])

    def extent(mask):
        first = torch.where(mask, idx, X.shape[-1]).min(1).values
        last = torch.where(mask, idx, -1).max(1).values
        return (last - first + 1).clamp(min=0)

    return torch.stack([extent(rows), extent(cols)], 1)


def centres_of_mass(X: torch.Tensor) -> torch.Tensor:
    """Centre of mass (row, col) of each image (N, H, W), in pixel coordinates, grey levels
    as mass."""
    X = X.double()
    mass = X.sum((1, 2))
    r = torch.arange(X.shape[1], dtype=torch.float64)
    c = torch.arange(X.shape[2], dtype=torch.float64)
    row = (X.sum(2) * r).sum(1) / mass
    col = (X.sum(1) * c).sum(1) / mass
    return torch.stack([row, col], 1)


def normalize(image: np.ndarray, box: int = 20, field: int = 28) -> torch.Tensor:
    """One digit, any size, ink bright on dark (0..255), as an MNIST digit (field x field uint8).

    Crop to the ink, scale so the longer side is `box` pixels keeping the aspect ratio
    (bilinear anti-aliased resampling gives the grey levels), then place it in the field so
    that its centre of mass is at MNIST's (pixel 14, 14 of 28), or as near as the field allows
    without cutting the digit. Raises ValueError for an image without ink.
    """
    a = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {tuple(a.shape)}")
    ink = a > 0.1 * a.max() if a.max() > 0 else a > 0
    if not ink.any():
        raise ValueError("the image is empty: no ink found")
    rows, cols = ink.any(1).nonzero().ravel(), ink.any(0).nonzero().ravel()
    a = a[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = a.shape
    scale = box / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    a = F.interpolate(
        a[None, None], size=size, mode="bilinear", antialias=True, align_corners=False
    )[0, 0]
    a = a.clamp(min=0)
    a = a / a.max() * 255
    # Place the box so that its centre of mass lands on the centre pixel, to the nearest
    # pixel; a lopsided digit is moved only as far as keeps all of its box in the field.
    com = centres_of_mass(a[None])[0]
    top, left = (
        min(max(round(MNIST_CENTRE * field / 28 - float(c)), 0), field - n)
        for c, n in zip(com, size, strict=True)
    )
    out = torch.zeros(field, field)
    out[top : top + size[0], left : left + size[1]] = a
    return out.round().clamp(0, 255).to(torch.uint8)
