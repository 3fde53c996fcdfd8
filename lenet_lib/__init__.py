"""The shared library of the LeNet-5 companion book."""

__version__ = "0.1.0"
