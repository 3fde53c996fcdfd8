"""The numbers of the notes and of the paper, as data, and the choices the notes leave to us.

Read by claims.py (every verdict), report.py and the optimizer chapter (07); experiments.py
holds the runs themselves.
"""

from __future__ import annotations

import pandas as pd
import torch

# Table 2 of the notes: optimizer, epochs, and the notes' train and test accuracy (%).
NOTES_TABLE2 = pd.DataFrame(
    [
        ("sgd-e30", "sgd", 30, 87.04, 88.23),
        ("momentum-e30", "momentum", 30, 93.43, 93.78),
        ("nesterov-e30", "nesterov", 30, 93.99, 94.49),
        ("adam-e30", "adam", 30, 97.02, 97.36),
        ("adam-e60", "adam", 60, 98.49, 98.58),
        ("adam-e100", "adam", 100, 99.08, 98.99),
    ],
    columns=["row", "optimizer", "epochs", "notes_train_acc", "notes_test_acc"],
)

CHOICES = [
    # parameter, value, source, why
    ("optimizers", "SGD, classic momentum, Nesterov momentum, Adam", "notes", ""),
    ("epochs", "30, 30, 30, 30, 60, 100", "notes", ""),
    ("loss", "cross-entropy on 10 linear outputs", "notes", ""),
    ("network", "LeNet-5 with ReLU, max pooling, full C3", "notes", ""),
    ("lr (sgd)", "0.01", "ours",
     "the notes give 1, at which plain SGD does not train (measured below); 1.0 is the rate "
     "of pytorch/examples' MNIST script, but for Adadelta, not SGD"),
    ("lr (momentum, nesterov)", "0.01", "ours", "the same step as vanilla SGD, so momentum is the only change"),
    ("momentum", "0.9", "ours", "the common default; the notes do not say"),
    ("lr (adam)", "0.001", "ours", "Adam's published default; the notes do not say"),
    ("betas (adam)", "0.9, 0.999", "ours", "Adam's published defaults"),
    ("batch size", "64", "ours", "the notes do not say; PyTorch's MNIST example uses 64"),
    ("initialisation", "PyTorch's defaults", "ours", "the notes do not say"),
    ("input scaling", "mean/std normalization", "ours",
     "the notes describe the paper's scaling for the paper's network, not what their code used"),
    ("input size", "28x28 padded to 32x32", "ours", "as in the paper"),
    ("seeds", "0, 1, 2", "ours", "to measure the spread"),
]  # fmt: skip

PAPER = {
    "test_error": 0.95,  # % on the 10,000 test digits, no distortions (Section III-C)
    "test_error_distorted": 0.8,  # % with the training set distorted (Section III-C)
    "train_error_pass19": 0.35,  # % training error after 19 passes (Section III-C)
    "passes": 20,  # passes over the training set (Section III-C)
    "test_digits": 10_000,
    "train_digits": 60_000,
    "mu": 0.02,  # SDLM's safety constant (Section III-C)
    "curvature_digits": 500,  # digits the curvature is re-estimated on (Section III-C)
    # global rate per pass: 0.0005 for 2 passes, 0.0002 for 3, 0.0001 for 3, 0.00005 for 4,
    # 0.00001 after (Section III-C)
    "eta_schedule": ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5)),
    "effective_rates": (7e-5, 0.016),  # range during the first pass (Section III-C)
    "squash_A": 1.7159,  # f(a) = A tanh(S a) (Section II-A, Appendix A)
    "squash_S": 2 / 3,
    "input_background": -0.1,  # input scaling (Section II-B)
    "input_ink": 1.175,
    "input_side": 32,  # the 28x28 digits padded to 32x32 (Section II-B)
    "trainable_params": 60_000,  # "about 60,000" (Section II-B)
    "connections": {  # per layer (Section II-B)
        "C1": 122_304,
        "S2": 5_880,
        "C3": 151_600,
        "S4": 2_000,
        "C5": 48_120,
        "F6": 10_164,
    },
}

# The notes' own tables, typed in once here.
NOTES_TABLE1 = (  # layer, output size, trainable parameters (notes' Table 1)
    ("Conv1", "28x28x6", 156),
    ("Average Pooling", "14x14x6", 12),
    ("Conv2", "10x10x16", 1_516),
    ("Max Pooling", "5x5x16", 32),
    ("Conv3", "1x1x120", 48_120),
    ("FC1", "84", 10_164),
    ("RBF Output Layer", "-", None),
    ("Total", "-", 60_000),
)
NOTES_TABLE_I = (  # rows: S2 maps 0-5; columns: C3 maps 0-15; X: connected
    "X   XXX  XXXX XX",
    "XX   XXX  XXXX X",
    "XXX   XXX  X XXX",
    " XXX  XXXX  X XX",
    "  XXX  XXXX XX X",
    "   XXX  XXXX XXX",
)

# Stylised digits, 12 rows of 7, '#' is +1 and '.' is -1: the RBF centres of
# the paper's network (models.LeNet5Paper), as its Figure 3 draws them.
DIGIT_BITMAPS = {
    0: ["..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."],
    1: ["...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...",
        "...#...", "...#...", "...#...", "...#...", "...#...", ".#####."],
    2: [".#####.", "#.....#", "......#", "......#", ".....#.", "....#..",
        "...#...", "..#....", ".#.....", "#......", "#......", "#######"],
    3: [".#####.", "#.....#", "......#", "......#", "......#", "..####.",
        "......#", "......#", "......#", "......#", "#.....#", ".#####."],
    4: ["....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.", "#....#.",
        "#######", ".....#.", ".....#.", ".....#.", ".....#.", ".....#."],
    5: ["#######", "#......", "#......", "#......", "######.", "......#",
        "......#", "......#", "......#", "......#", "#.....#", ".#####."],
    6: ["..####.", ".#.....", "#......", "#......", "#......", "######.",
        "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#####."],
    7: ["#######", "......#", "......#", ".....#.", ".....#.", "....#..",
        "....#..", "...#...", "...#...", "..#....", "..#....", "..#...."],
    8: [".#####.", "#.....#", "#.....#", "#.....#", "#.....#", ".#####.",
        "#.....#", "#.....#", "#.....#", "#.....#", "#.....#", ".#####."],
    9: [".#####.", "#.....#", "#.....#", "#.....#", "#.....#", ".######",
        "......#", "......#", "......#", "......#", ".....#.", ".####.."],
}  # fmt: skip


def digit_bitmaps() -> torch.Tensor:
    """The 10 RBF centres of the paper's network as a (10, 12, 7) tensor of +1/-1 (models.py,
    chapter 09)."""
    return torch.tensor(
        [[[1.0 if c == "#" else -1.0 for c in row] for row in DIGIT_BITMAPS[d]] for d in range(10)]
    )
