"""digits.py: measuring digits (the dataset chapter) and normalizing new ones (chapter 08)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenet_lib import digits


def test_bounding_boxes_of_hand_made_images():
    X = torch.zeros(3, 28, 28, dtype=torch.uint8)
    X[0, 3:8, 10:20] = 200  # a 5 x 10 rectangle
    X[1, 27, 0] = 1  # one pixel in a corner
    X[1, 0, 27] = 1  # and one in the opposite corner
    # image 2 stays empty
    assert digits.bounding_boxes(X).tolist() == [[5, 10], [28, 28], [0, 0]]
    X[0, 20, 5] = 9  # faint, under the threshold below
    assert digits.bounding_boxes(X, threshold=10)[0].tolist() == [5, 10]
    assert digits.bounding_boxes(X)[0].tolist() == [18, 15]


def test_centres_of_mass_of_hand_made_images():
    X = torch.zeros(3, 10, 12)
    X[0, 3, 7] = 5  # one pixel
    X[1, 0, 0] = X[1, 0, 4] = 1  # two equal masses
    X[2, 2, 2], X[2, 6, 2] = 3, 1  # grey levels weigh: 3 at row 2, 1 at row 6
    com = digits.centres_of_mass(X)
    assert torch.allclose(
        com, torch.tensor([[3.0, 7.0], [0.0, 2.0], [3.0, 2.0]], dtype=torch.float64)
    )


@pytest.fixture(scope="module")
def test_digits(mnist):
    X, y = mnist["test"]
    return X[:30]


def test_normalize_gives_back_an_upscaled_mnist_digit(test_digits):
    for x in test_digits:
        big = F.interpolate(x[None, None].float(), scale_factor=3, mode="bilinear")[0, 0]
        n = digits.normalize(big.numpy())
        assert n.shape == (28, 28) and n.dtype == torch.uint8 and n.max() == 255
        corr = torch.corrcoef(torch.stack([x.float().ravel(), n.float().ravel()]))[0, 1]
        assert corr > 0.8
        com = digits.centres_of_mass(n[None].float())[0]
        assert (com - 14).abs().max() <= 0.5 + 1e-2
        assert digits.bounding_boxes(n[None]).max() == 20


def test_normalize_keeps_aspect_ratio_and_any_polarity_is_the_callers_job():
    a = np.zeros((60, 200), dtype=np.float32)
    a[10:50, 20:180] = 255  # a 40 x 160 bar: 20 wide, 5 high once normalized
    n = digits.normalize(a)
    assert digits.bounding_boxes(n[None])[0].tolist() == [5, 20]


def test_normalize_never_wraps_a_lopsided_digit_around_the_field():
    # A heavy blob on top of a long thin tail: its centre of mass is near the top of its box,
    # so centring it exactly would push the tail out of the field. It must stay whole.
    a = np.zeros((100, 60), dtype=np.float32)
    a[0:25, 0:60] = 255
    a[25:100, 29:31] = 255
    n = digits.normalize(a)
    rows = (n > 0).any(1).nonzero().ravel()
    assert rows[-1] - rows[0] + 1 == 20  # one block of 20 rows, nothing wrapped to the top
    assert n[-1].sum() > 0  # the tail reaches the bottom edge: moved as far as possible
    assert digits.bounding_boxes(n[None]).max() == 20


def test_normalize_refuses_an_empty_image():
    with pytest.raises(ValueError, match="empty"):
        digits.normalize(np.zeros((50, 50)))
    with pytest.raises(ValueError, match="2-D"):
        digits.normalize(np.ones((2, 5, 5)))
