"""The shared library of the LeNet-5 companion book."""

__version__ = "0.1.0"

from .inputs import mark_started

mark_started()  # inside a book build: this chapter executed (see inputs.py)
