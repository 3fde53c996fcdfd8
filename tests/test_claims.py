"""The claims as data and the one function that decides every verdict (lenet_lib.book.claims)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from myst_parser.mdit_to_docutils.base import default_slugify

from lenet_lib import claims
from lenet_lib.book.claims import APPROX, FAILS, HOLDS, UNCHECKABLE, decide

ROOT = Path(__file__).resolve().parent.parent

# --- within_se ---------------------------------------------------------------------------


def test_within_se_sets_a_published_number_against_our_t_interval():
    # chapter 09's three seeds of the paper's network (1.11, 1.21, 1.21% error) against the
    # paper's 0.95%: the t-interval of the mean, 1.18 +- 4.30 x 0.058 / sqrt(3), misses it
    seeds = [1.11, 1.21, 1.21]
    v = decide(claims.within_se(2, binomial_n=10_000), seeds, 0.95)  # binomial_n: ignored
    m, lo, hi = claims.t_interval(seeds)
    half = 4.303 * np.std(seeds, ddof=1) / math.sqrt(3)
    assert (lo, hi) == pytest.approx((m - half, m + half), abs=1e-3)
    assert v.verdict == FAILS and "3 seeds" in v.detail and "ours higher" in v.detail
    assert (v.value, v.lo, v.hi, v.n) == pytest.approx((m, lo, hi, 3))
    # the same seeds hold a number inside the interval, whatever k says
    assert decide(claims.within_se(1), seeds, 1.1).verdict == HOLDS
    assert decide(claims.within_se(2), seeds, lo - 0.01).verdict == FAILS


def test_within_se_one_seed_is_never_holds():
    for crit in (claims.within_se(2), claims.within_se(2, binomial_n=10_000)):
        v = decide(crit, [0.95], 0.95)  # even a perfect match
        assert v.verdict == UNCHECKABLE
        assert "one seed" in v.detail
    assert decide(claims.within_se(2), 0.95, 0.95).verdict == UNCHECKABLE  # a bare number too


def test_every_seed_claim_decided_on_one_seed_cannot_be_checked():
    # whatever the claim, one seed gives no interval: the verdict says so
    for c in claims.CLAIMS:
        if c.criterion.kind == "within_se":
            ref = c.notes_value if np.ndim(c.notes_value) == 0 else c.notes_value[0]
            assert decide(c.id, [ref], ref).verdict == UNCHECKABLE, c.id
        if c.criterion.kind == "sign":
            assert decide(c.id, [1.0], se=[float("nan")]).verdict == UNCHECKABLE, c.id
    # a t quantile for one degree of freedom: two seeds rarely resolve anything
    assert decide(claims.sign(+1), [1.0], se=[0.2], df=1).verdict == UNCHECKABLE
    assert decide(claims.sign(+1), [1.0], se=[0.2], df=30).verdict == HOLDS


def test_within_se_too_wide_to_tell_the_claim_from_zero_or_double_cannot_be_checked():
    # chapter 09's sdlm-pooled seeds: 2.07% mean against the paper's 0.95%, scattered so
    # widely (one seed collapses) that the interval's half-width exceeds 0.95 itself
    v = decide(claims.within_se(2, binomial_n=10_000), [1.24, 3.71, 1.25], 0.95)
    assert v.verdict == UNCHECKABLE and "zero or double" in v.detail
    # the same mean with tight seeds is a resolved difference, and near it a holding claim
    assert decide(claims.within_se(2), [2.0, 2.07, 2.14], 0.95).verdict == FAILS
    assert decide(claims.within_se(2), [0.9, 0.95, 1.0], 0.95).verdict == HOLDS


def test_within_se_two_means_uses_the_welch_interval_of_the_difference():
    a, b = [1.0, 2.0, 3.0], [2.0, 3.0, 4.0]  # sd 1 each, n 3: se sqrt(2/3), Welch df 4
    se = claims.standard_error(a, b)
    assert se == pytest.approx(math.sqrt(2 / 3))
    assert claims.welch_df(a, b) == pytest.approx(4.0)
    lo, hi = claims.welch_interval(a, b)
    assert (lo, hi) == pytest.approx((-1 - 2.776 * se, -1 + 2.776 * se), abs=1e-3)
    assert decide(claims.within_se(2), a, b).verdict == HOLDS  # 0 inside
    assert decide(claims.within_se(2), [1.0, 1.1, 1.2], [2.0, 2.1, 2.2]).verdict == FAILS
    assert math.isnan(claims.standard_error([1.0], b))
    assert decide(claims.within_se(2), [1.0], b).verdict == UNCHECKABLE


def test_within_se_with_a_given_standard_error():
    crit = claims.within_se(2)
    assert decide(crit, 1.0, 0.0, se=0.6).verdict == HOLDS
    assert decide(crit, 1.0, 0.0, se=0.4).verdict == FAILS
    assert decide(crit, 1.0, 0.0, se=float("nan")).verdict == UNCHECKABLE


# --- within_tol --------------------------------------------------------------------------


def test_within_tol_absolute_with_an_approximate_band():
    crit = claims.within_tol(1e-3, approx=0.05)
    assert decide(crit, 1.0005, 1.0).verdict == HOLDS
    assert decide(crit, 0.988, 1.0).verdict == APPROX
    assert decide(crit, 0.9, 1.0).verdict == FAILS
    assert decide(claims.within_tol(1e-3), 0.988, 1.0).verdict == FAILS  # no band, no approx


def test_within_tol_relative_and_factor():
    assert decide(claims.within_tol(0.1, scale="rel"), 105.0, 100.0).verdict == HOLDS
    assert decide(claims.within_tol(0.1, scale="rel"), 0.5, 0.4).verdict == FAILS
    crit = claims.within_tol(1.25, approx=2, scale="factor")
    assert decide(crit, (8e-5, 0.015), (7e-5, 0.016)).verdict == HOLDS
    assert decide(crit, (1e-4, 0.025), (7e-5, 0.016)).verdict == APPROX  # the worst end decides
    assert decide(crit, (1e-5, 0.016), (7e-5, 0.016)).verdict == FAILS
    with pytest.raises(ValueError, match="scale"):
        claims.within_tol(1, scale="log")


# --- sign --------------------------------------------------------------------------------


def test_sign_without_and_with_standard_errors():
    assert decide(claims.sign(+1), [0.1, 0.2]).verdict == HOLDS
    assert decide(claims.sign(+1), [0.1, -0.2]).verdict == FAILS
    assert decide(claims.sign(-1), [-0.1, -0.2]).verdict == HOLDS
    assert decide(claims.sign(+1), [0.0]).verdict == FAILS  # no change is not an increase
    assert decide(claims.sign(+1, k=2), 0.5, se=0.2).verdict == HOLDS
    # a known standard error (no seeds): within the noise does not support the claim
    assert decide(claims.sign(+1, k=2), 0.3, se=0.2).verdict == FAILS
    # seeds: within the noise, neither direction resolved, cannot be checked
    assert decide(claims.sign(+1), 0.3, se=0.2, df=2).verdict == UNCHECKABLE
    assert decide(claims.sign(+1), [0.5, 0.5], se=[0.05, 0.3], df=2).verdict == UNCHECKABLE
    # resolved the other way: does not hold, even beside a step that holds
    assert decide(claims.sign(+1), [0.5, -0.9], se=[0.05, 0.1], df=2).verdict == FAILS
    assert decide(claims.sign(+1), 5.0, se=float("nan")).verdict == UNCHECKABLE


# --- exact -------------------------------------------------------------------------------


def test_exact_numbers_strings_and_bools():
    assert decide("c3_params", 1516).verdict == HOLDS
    assert decide("c3_params", 1517).verdict == FAILS
    assert decide("dataset_sizes", (60_000, 10_000)).verdict == HOLDS
    assert decide("dataset_sizes", (60_000, 9_999)).verdict == FAILS
    assert decide("paper_connections", (1, 2)).verdict == FAILS  # wrong length
    assert decide("shift_equivariance", 3e-7).verdict == HOLDS  # float rounding
    assert decide("shift_equivariance", 1e-3).verdict == FAILS
    assert decide("sigmoid_output", "sigmoid").verdict == HOLDS
    assert decide("sigmoid_output", "RBF").verdict == FAILS
    assert decide("tanh_hidden", "scaled tanh").verdict == APPROX
    assert decide("size_formula_lenet", True).verdict == HOLDS
    assert decide("size_formula_lenet", False).verdict == FAILS


# --- interval ----------------------------------------------------------------------------


def test_interval_plain_and_fitted():
    assert decide("scaled_variance", 1.3).verdict == HOLDS
    assert decide("scaled_variance", 0.1).verdict == FAILS
    assert decide("scaled_variance", 0.5).verdict == HOLDS  # bounds included
    assert decide("scaled_variance", (1.0, 0.3)).verdict == FAILS  # every value must be in
    assert decide("gap_law_P", 0.7, ci=(0.6, 0.8)).verdict == HOLDS
    assert decide("gap_law_P", 0.4, ci=(0.3, 0.55)).verdict == APPROX
    assert decide("gap_law_P", 0.3, ci=(0.2, 0.4)).verdict == FAILS
    with pytest.raises(ValueError, match="95% interval"):
        decide("gap_law_P", 0.3)


# --- reference and not_checkable -------------------------------------------------------


def test_reference_and_not_checkable_need_no_data():
    v = decide("paper_is_alexnet")
    assert v.verdict == FAILS and "2012" in v.detail
    assert claims.CLAIMS_BY_ID["paper_is_alexnet"].criterion.cite
    assert decide("relu_unavailable").verdict in claims.VERDICTS
    v = decide("own_digits")
    assert v.verdict == UNCHECKABLE and "not published" in v.detail
    with pytest.raises(ValueError, match="unknown verdict"):
        claims.reference("mostly", "a fact")


def test_a_bad_criterion_in_claims_toml_is_refused_naming_the_claim_and_the_fix(tmp_path):
    row = """[[claim]]
id = "{id}"
claim = "a claim"
section = "1"
notes_value = 1.0
criterion = {crit}
"""
    good = tmp_path / "good.toml"
    good.write_text(row.format(id="ok", crit='{ kind = "within_tol", tol = 0.1, scale = "rel" }'))
    (c,) = claims.load(good)
    assert c.criterion == claims.within_tol(0.1, scale="rel")
    bad = {
        '{ kind = "within_tol", tol = 0.1, scale = "percent" }': "scale must be 'abs', 'rel'",
        '{ kind = "within_tol", approx = 0.2 }': "missing 1 required positional argument: 'tol'",
        '{ kind = "interval", lo = 0, hi = 1, tolerance = 2 }': "unexpected keyword.*'tolerance'",
        '{ kind = "interval", lo = 2, hi = 1 }': "lo <= hi",
        '{ kind = "reference", verdict = "mostly", fact = "f" }': "unknown verdict",
        '{ kind = "within_sd" }': "unknown criterion kind 'within_sd'; use one of",
    }
    for crit, why in bad.items():
        path = tmp_path / "bad.toml"
        path.write_text(row.format(id="broken", crit=crit))
        with pytest.raises(ValueError, match="claims.toml, claim 'broken'") as e:
            claims.load(path)
        assert re.search(why, str(e.value)), str(e.value)
        if "unknown criterion kind" not in why:  # the fix: the kind's parameters
            assert "Its parameters (with their defaults)" in str(e.value)


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(KeyError, match="no claim 'nope'"):
        decide("nope", 1)
    with pytest.raises(ValueError, match="needs our value"):
        decide("c3_params")
    with pytest.raises(TypeError):
        decide(3.0, 1)


# --- the claims as data ------------------------------------------------------------------


def test_every_claim_is_complete():
    for c in claims.CLAIMS:
        assert c.claim and c.section in claims.SECTIONS, c.id
        assert c.criterion.kind in claims.KINDS, c.id
        assert c.source in claims.SOURCES, c.id
        if c.criterion.kind not in ("reference", "not_checkable"):
            assert c.chapter, f"{c.id}: a checkable claim needs the chapter that checks it"
        if c.criterion.kind == "reference":
            assert c.criterion.cite, c.id


def test_the_claims_the_issue_asks_for_are_there():
    for cid in ("first_deep_cnn", "sd3_in_sequence", "scale_distortion_invariance",
                "differences_listed", "table1_input", "paper_errors_3as5",
                "sigmoid_accelerates", "h_large_values", "relu_unavailable",
                "paper_is_alexnet", "paper_test_error", "paper_train_error"):  # fmt: skip
        assert cid in claims.CLAIMS_BY_ID
    # the slow protocol is our hypothesis, not a claim of the notes
    assert not any("slow" in c.id for c in claims.CLAIMS)


def test_citations_are_in_the_bibliography():
    bib = (ROOT / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    for c in claims.CLAIMS:
        assert set(c.criterion.cite) <= keys, c.id


def _anchors(chapter: str) -> tuple[set, set]:
    nb = json.loads((ROOT / "chapters" / f"{chapter}.ipynb").read_text())
    slugs, labels = set(), set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in "".join(cell["source"]).splitlines():
            if m := re.match(r"^#{1,3} (.+)$", line):
                slugs.add(default_slugify(m.group(1)))
            if m := re.match(r"^\(([\w-]+)\)=$", line):
                labels.add(m.group(1))
    return slugs, labels


def test_every_anchor_is_a_section_of_its_chapter():
    for c in claims.CLAIMS:
        if not c.chapter:
            continue
        slugs, labels = _anchors(c.chapter)
        if c.anchor.startswith("ref:"):
            assert c.anchor[4:] in labels, c.id
        elif c.anchor:
            assert c.anchor in slugs, f"{c.id}: no section #{c.anchor} in {c.chapter}"


def test_every_glued_claim_is_decided_and_glued_by_its_chapter():
    # claims.decide("<id>", ...) or decide(f"<template>", ...) in the chapter, and glue_verdict.
    for c in claims.CLAIMS:
        if not c.glued:
            continue
        nb = json.loads((ROOT / "chapters" / f"{c.chapter}.ipynb").read_text())
        src = "\n".join("".join(cell["source"]) for cell in nb["cells"])
        ids = [
            re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(f))
            for f in re.findall(r'decide\(\s*f?"([^"]+)"', src)
        ]
        assert any(re.fullmatch(i, c.id) for i in ids), f"{c.id}: {c.chapter} never decides it"
        assert "glue_verdict(" in src, f"{c.id}: {c.chapter} never glues a verdict"


def test_the_notes_tables_agree_with_the_library():
    from lenet_lib import models, plans

    assert [(o, e) for o, e, _, _ in plans.TABLE2] == list(
        zip(claims.NOTES_TABLE2["optimizer"], claims.NOTES_TABLE2["epochs"], strict=True)
    )
    assert [r.replace(" ", ".") for r in claims.NOTES_TABLE_I] == models.C3_TABLE


def _some_verdicts():
    """A verdict for every claim, as if every chapter had been built."""
    out = {}
    for i, c in enumerate(claims.CLAIMS):
        if c.criterion.kind in ("reference", "not_checkable"):
            out[c.id] = decide(c.id)
        else:
            word = claims.VERDICTS[i % 4]
            out[c.id] = claims.Verdict(c.id, word, "1.5", c.notes_display, c.criterion.text(),
                                       "a detail", value=1.5, lo=1.0, hi=2.0, n=3)  # fmt: skip
    return out


def test_findings_table_has_one_row_per_claim_and_five_columns():
    verdicts = _some_verdicts()
    md = claims.findings_table(verdicts=verdicts)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(claims.CLAIMS) + 1  # the header
    for line in rows:
        assert len(re.findall(r"(?<!\\)\|", line)) == 6, line  # 5 cells: fits 1280 px
    # filtered by verdict, the four lists partition the claims
    n = sum(
        len(claims.findings_table(verdicts=verdicts, verdict=w).splitlines()) - 2
        for w in claims.VERDICTS
    )
    assert n == len(claims.CLAIMS)
    assert "not decided yet" in claims.findings_table(verdicts={})
    assert "†" not in md  # no footnote mark that no row explains


def test_tally_links_each_verdict_to_its_list_on_the_claims_page():
    verdicts = _some_verdicts()
    t = claims.tally(verdicts)
    assert sum(t.values()) == len(claims.CLAIMS) and t[None] == 0
    line = claims.tally_line(verdicts)
    page = (ROOT / "claims.md").read_text()
    for w in claims.VERDICTS:
        label = claims.VERDICT_LABEL[w][1]
        assert f"{t[w]} {claims.VERDICT_LABEL[w][0]} <{label}>" in line
        assert f"({label})=" in page, f"claims.md has no list for {w!r}"
    del verdicts["c3_params"]
    assert "1 not decided yet" in claims.tally_line(verdicts)


def test_ledger_round_trip(tmp_path, monkeypatch):
    # in a book build glue_verdict records the verdict; the pages read it back
    log = tmp_path / "lenet_reads" / "x.log"
    log.parent.mkdir()
    monkeypatch.setenv(claims.LOG_VAR, str(log))
    v = claims.glue_verdict(decide("table2_sgd30", [98.9, 99.0, 99.1]), ours="99.00")
    assert (tmp_path / "lenet_claims" / "table2_sgd30.json").exists()
    back = claims.decided()
    assert back["table2_sgd30"] == claims.Verdict(**{**v.__dict__, "ours": "99.00"})
    assert back["table2_sgd30"].verdict == FAILS and back["table2_sgd30"].lo < 99 < v.hi
    assert back["paper_is_alexnet"].verdict == FAILS  # decided by citation, no chapter needed
    assert "c3_params" not in back
    assert str(tmp_path / "lenet_claims") in log.read_text()  # the page re-executes on change
    monkeypatch.delenv(claims.LOG_VAR)
    assert claims.ledger_dir() is None


# --- what a verdict may say ----------------------------------------------------------------


def test_holds_approximately_only_with_a_tolerance_named_in_the_row():
    for c in claims.CLAIMS:
        crit = c.criterion
        if crit.kind == "reference":
            assert crit.verdict != APPROX, f"{c.id}: a cited fact either holds or does not"
        can_approx = (
            (crit.kind == "within_tol" and crit.approx is not None)
            or (crit.kind == "exact" and crit.approx)
            or (crit.kind == "interval" and crit.fitted)
        )
        if can_approx:
            text = crit.text()
            assert "approximately" in text, f"{c.id}: {text}"
            named = crit.approx if crit.kind != "interval" else "95% interval"
            named = (
                named
                if isinstance(named, str)
                else (", ".join(map(str, named)) if isinstance(named, tuple) else f"{named:g}")
            )
            assert named in text, f"{c.id}: the row must name its looser reading: {text}"
    # measured against seeds, never approximately
    for ours, notes in (([1.0, 1.1, 1.2], 1.5), ([1.0, 1.1, 1.2], 1.1)):
        assert decide(claims.within_se(2), ours, notes).verdict in (HOLDS, FAILS)
    v = decide("centre_of_mass", 0.71)
    assert v.verdict == APPROX and "within 1" in v.criterion and "within 0.5" in v.criterion


def test_verdicts_issue_24_changed():
    # cited facts that refute the claim do not hold; Jarrett et al. (2009) is cited
    for cid in ("first_deep_cnn", "relu_unavailable"):
        assert decide(cid).verdict == FAILS, cid
    assert "jarrett2009what" in claims.CLAIMS_BY_ID["relu_unavailable"].criterion.cite
    # no verdict on words the notes do not use: "several ways", not "four"
    c = claims.CLAIMS_BY_ID["differences_listed"]
    assert "four" not in c.claim and "several" in c.claim and c.notes_value is None
    # Table 1's C1 follows from the 32x32 padding the notes omit
    c = claims.CLAIMS_BY_ID["table1_input"]
    assert "32x32" in c.criterion.text() and "omit" in c.criterion.text()
    # a test that cannot fail is not a verdict: the noisy OR/AND is decided on the Boolean share
    assert "sign" not in claims.CLAIMS_BY_ID["noisy_or_and"].criterion.text()
    assert decide("noisy_or_and", 0.0).verdict == FAILS
    # a minimum at the end of the range cannot be checked
    v = claims.cannot_check("optimal_capacity", "lowest at the widest")
    assert v.verdict == UNCHECKABLE and v.detail == "lowest at the widest"


def test_the_noise_model_is_stated_once_on_the_claims_page():
    text = claims.criteria_text()
    assert text.count(claims.NOISE_RULE) == 1 and "t-interval" in claims.NOISE_RULE
    assert "binomial" in claims.NOISE_RULE  # says it is not used
    assert "2 or 3 seeds" in claims.NOISE_RULE
    page = (ROOT / "claims.md").read_text()
    assert "claims.criteria_text()" in page and "†" not in page


def test_glue_verdict_outside_a_kernel_is_harmless():
    v = claims.glue_verdict(decide("c3_params", 1516))
    assert v.verdict == HOLDS and claims.claim_key("c3_params") == "claim_c3_params_verdict"
    with pytest.raises(ValueError, match="claim id"):
        claims.glue_verdict(decide(claims.exact(), 1, 1))
