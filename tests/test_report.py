"""report.py: the tables of chapters 07 and 09, on the committed results."""

import re

import numpy as np
import pandas as pd
import pytest

from lenet_lib import report
from lenet_lib.runs.results import load_metrics, load_results


def rows(values: dict) -> pd.DataFrame:
    """Per-seed test accuracies of (optimizer, epochs) rows, as load_results gives them."""
    return pd.DataFrame(
        [
            {"optimizer": o, "epochs": e, "test_acc": a}
            for (o, e), accs in values.items()
            for a in accs
        ]
    )


def test_compare_decides_by_the_t_interval_and_reports_one_standard_error():
    # sd 0.1 each, 3 seeds: one standard error of the difference sqrt(2/3) * 0.1 = 0.0816;
    # Welch's 4 degrees of freedom put the 95% t-interval at +-2.776 of them, +-0.227
    r = rows({("sgd", 30): [99.0, 99.1, 99.2], ("adam", 30): [99.2, 99.3, 99.4]})
    c = report.compare(r, ("sgd", 30), ("adam", 30))
    assert c["standard error"] == pytest.approx(0.1 * np.sqrt(2 / 3))
    assert c["difference"] == pytest.approx(0.2)
    assert c["verdict"] == "within the noise"  # 0.2 < 0.227, though more than 2 x 0.0816
    r = rows({("sgd", 30): [99.0, 99.1, 99.2], ("adam", 30): [99.25, 99.35, 99.45]})
    assert report.compare(r, ("sgd", 30), ("adam", 30))["verdict"] == "larger than the noise"
    r = rows({("sgd", 30): [99.0], ("adam", 30): [99.5, 99.6]})
    assert report.compare(r, ("sgd", 30), ("adam", 30))["verdict"] == "unknown (one seed)"
    with pytest.raises(ValueError, match="no complete runs"):
        report.compare(r, ("sgd", 30), ("nesterov", 30))


def test_styled_gives_every_number_its_precision():
    df = pd.DataFrame({"a": [1.23456, np.nan], "n": [1, 2000], "t": ["x", "y"], "e": [1e-4, 5e-5]})
    html = report.styled(df, "a caption", formats={"e": "{:g}"}).to_html()
    cells = re.findall(r">([^<]*)</td>", html)
    assert cells == ["1.23", "1", "x", "0.0001", "-", "2,000", "y", "5e-05"]
    assert "a caption" in html


def test_paper_groups_from_the_committed_runs_and_a_new_init():
    runs = load_results("paper")
    groups = report.paper_groups(runs).set_index("row")
    fifth = groups.loc["sdlm-eta1e-04-e20"]
    seeds = runs[runs["row"] == "sdlm-eta1e-04-e20"]
    assert fifth["seeds"] == len(seeds) and fifth["rate_fraction"] == pytest.approx(0.2)
    assert fifth["test_error"] == pytest.approx((100 - seeds["test_acc"]).mean())
    assert fifth["init"] == "sqrt" and fifth["curvature"] == "paper's"
    assert groups.loc["sdlm-exact-e20", "curvature"] == "exact"
    assert list(report.paper_groups(runs)["test_error"]) == sorted(groups["test_error"])
    # runs that record another init form their own row
    new = seeds.assign(init="printed", row="sdlm-printed-e20", test_acc=99.2)
    both = report.paper_groups(pd.concat([runs, new], ignore_index=True)).set_index("row")
    assert both.loc["sdlm-printed-e20", "init"] == "printed"
    assert both.loc["sdlm-eta1e-04-e20", "init"] == "sqrt"
    assert both.loc["sdlm-pooled-e20", "init"] == "pooled"  # the committed pooled runs
    assert report.paper_groups(pd.concat([runs, new])).iloc[0]["row"] == "sdlm-printed-e20"


def test_training_rate_is_total_images_over_total_seconds():
    run_dir = load_results("paper").set_index("run_id").loc["sdlm-e20-s0", "run_dir"]
    m = load_metrics(run_dir)
    per_pass, rate = report.training_rate(run_dir, 60_000)
    assert rate == pytest.approx(60_000 * len(m) / m["seconds"].sum())
    assert per_pass == pytest.approx(m["seconds"].mean())


def test_a_seed_has_a_wall_time_only_when_made_alone_and_in_one_go():
    def runs(starts):
        return pd.DataFrame(
            {
                "seed": 0,
                "optimizer": ["adam", "adam", "sgd"],
                "epochs": [30, 60, 30],
                "seconds": [300.0, 600.0, 300.0],
                "wall_seconds": [310.0, 320.0, 330.0],
                "git_commit": ["a" * 40, "a" * 40, "b" * 40],
                "started": [f"2026-11-27T10:{m:02d}:00+00:00" for m in starts],
            }
        )

    in_one_go = report.seed_wall(runs([0, 5, 0])).loc[0]  # the second Adam run follows the first
    assert in_one_go["wall"] == pytest.approx(5 + 320 / 60)
    assert in_one_go["Adam chain"] == pytest.approx(630 / 60)
    assert in_one_go["training"] == pytest.approx((600 + 300) / 60)  # Adam 60 holds Adam 30's
    assert in_one_go["engine"] == "aaaaaaa, bbbbbbb"
    assert np.isnan(report.seed_wall(runs([0, 30, 0])).loc[0, "wall"])  # an idle gap of 25 min
    # Two seeds made side by side: neither has a wall time of its own.
    both = pd.concat([runs([0, 5, 0]), runs([2, 7, 2]).assign(seed=1)])
    assert report.seed_wall(both)["wall"].isna().all()
    after = pd.concat([runs([0, 5, 0]), runs([20, 25, 20]).assign(seed=1)])
    assert report.seed_wall(after)["wall"].notna().all()


def test_committed_seeds_wall_time_is_at_least_their_adam_chain():
    walls = report.seed_wall(load_results("optimizers")).dropna(subset=["wall"])
    assert len(walls) >= 1  # seed 0 was re-made in one go (issue 17)
    assert (walls["wall"] >= walls["Adam chain"] - 1e-9).all()


def test_paired_rows_set_each_row_made_two_ways_side_by_side():
    cpu = pd.DataFrame({"row": ["sgd-e30"] * 3, "test_acc": [99.0, 99.1, 99.2]})
    gpu = pd.DataFrame({"run_id": [f"sgd-e30-s{s}" for s in range(3)], "test_acc": [99.05] * 3})
    (r,) = report.paired_rows(cpu, gpu).to_dict("records")
    assert r["row"] == "sgd-e30" and r["seeds"] == "3, 3"
    assert r["difference"] == pytest.approx(-0.05)
    assert r["standard error"] == pytest.approx(0.1 / np.sqrt(3))
    assert r["verdict"] == "within the noise"
    far = gpu.assign(test_acc=[99.6, 99.7, 99.8])
    assert report.paired_rows(cpu, far)["verdict"].item() == "larger than the noise"


def test_the_committed_gpu_runs_are_table2_in_full():
    from lenet_lib.runs.results import load_benchmark

    gpu = load_benchmark("gpu_table2")
    for started, runs in gpu.groupby("started"):  # one timing
        assert len(runs) == 18 and runs["run_id"].is_unique, started
        assert runs["table2_wall_seconds"].nunique() == 1 and runs["git_commit"].nunique() == 1
    assert gpu["device_name"].str.contains("NVIDIA").all()
    table = report.paired_rows(
        load_results("optimizers"), gpu[gpu["started"] == gpu["started"].max()]
    )
    assert list(table["row"]) == list(report.NOTES_TABLE2["row"])


def test_paired_rows_name_their_columns_and_read_any_column():
    a = pd.DataFrame({"row": ["adam-e30"] * 2, "err": [1.0, 1.2]})
    b = pd.DataFrame({"row": ["adam-e30"] * 2 + ["adam-e60"] * 2, "err": [2.0, 2.2, 1, 1]})
    t = report.paired_rows(a, b, names=("notes", "paper"), column="err")
    assert list(t["row"]) == ["adam-e30"]  # a row made one way only is left out
    assert t.loc[0, "notes"] == pytest.approx(1.1) and t.loc[0, "paper"] == pytest.approx(2.1)


def test_table2_view_is_narrow_and_names_its_columns_in_words():
    view = report.table2_view(report.table2(load_results("optimizers")))
    assert len(view.columns) <= 7
    assert not [c for c in view.columns if "_" in c]
    assert view["row"].iloc[0] == "sgd, 30 epochs"


def test_direction_says_which_way():
    assert report.direction(98.96, 88.23) == "ours 10.73 points higher"
    assert report.direction(1.0, 1.5, "%") == "ours 0.50 % lower"
