"""`lenet bench` (issue 17): its numbers, at a small size of the real measurement (the rates
themselves are measured by `lenet bench` and benchmarks/, never asserted here)."""

import json

import pytest
from conftest import lenet

from lenet_lib import bench, plans


def test_a_training_image_costs_three_times_the_forward_multiply_adds():
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 120 * 400 + 84 * 120 + 10 * 84
    assert bench.flops_per_image() == 3 * 2 * macs  # about 2.5 MFLOP


def test_table2_projection_is_bounded_by_the_adam_chain_on_two_workers():
    per_epoch = 60000 / 6000 + 1.0  # 6,000 images/s and a 1 s test pass: 11 s an epoch
    assert bench.table2_minutes(6000, 1.0, jobs=2) == pytest.approx(100 * per_epoch / 60)
    epochs = sum(e for opt, e, *_ in plans.TABLE2 if opt != "adam") + 100
    assert bench.table2_minutes(6000, 1.0, jobs=1) == pytest.approx(epochs * per_epoch / 60)


@pytest.mark.slow
def test_bench_prints_every_number_as_json(mnist):
    proc = lenet("bench", "--format", "json", "--images", "640")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    for key in ("textbook_images_per_s", "project_images_per_s", "ratio",
                "one_thread_images_per_s", "sgemm_gflops", "peak_fraction",
                "table2_seed_minutes"):  # fmt: skip
        assert m[key] > 0, key
    assert m["ratio"] == pytest.approx(m["project_images_per_s"] / m["textbook_images_per_s"])
    flops = m["project_images_per_s"] * m["flops_per_training_image"]
    assert m["peak_fraction"] == pytest.approx(flops / (m["sgemm_gflops"] * 1e9))
