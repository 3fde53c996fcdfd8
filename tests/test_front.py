"""The front page (intro.md) and its scorecard (lenet_lib.book.scorecard): a short abstract whose
numbers all come from claims, the scorecard figure, the tally, and no claims table there."""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from lenet_lib import claims, scorecard  # noqa: E402
from lenet_lib.book.claims import APPROX, FAILS, HOLDS, UNCHECKABLE, Verdict, decide  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
INTRO = (ROOT / "intro.md").read_text()
GLUE = re.compile(r"\{glue:(?:text|figure)\}`([^`]+)`|```\{glue:figure\} (\S+)")


def _section(text: str, heading: str) -> str:
    """The prose of a section: its text up to the next heading, without fenced blocks."""
    body = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.sub(r"```.*?```", " ", body, flags=re.S)


def _words(text: str) -> int:
    text = re.sub(r"\{[\w:]+\}`[^`]*`", " X ", text)  # a glued value or citation: one word
    return len(re.findall(r"[\w'’.%-]+", text))


def test_abstract_is_at_most_250_words():
    n = _words(_section(INTRO, "What we found"))
    assert 100 < n <= 250, n


def test_every_glued_value_on_the_front_page_comes_from_a_claim():
    keys = [a or b for a, b in GLUE.findall(INTRO)]
    assert keys, "the front page glues nothing"
    allowed = scorecard.front_keys() | {"front_scorecard"}
    assert set(keys) <= allowed, set(keys) - allowed
    for k in keys:  # each names a claim that exists
        if k.startswith("front_") and k not in ("front_scorecard", "front_table2_higher",
                                                 "front_ladder"):  # fmt: skip
            cid = re.sub(r"_(verdict|ours|notes|interval)$", "", k[len("front_") :])
            assert cid in claims.CLAIMS_BY_ID, k
    # and nothing measured is typed: no decimals or percentages outside the glued values
    abstract = re.sub(r"\{[\w:]+\}`[^`]*`", "", _section(INTRO, "What we found"))
    findings = re.sub(r"\{[\w:]+\}`[^`]*`", "", _section(INTRO, "What a reader should take away"))
    for text in (abstract, findings):
        assert not re.findall(r"\d+\.\d+|\d+\s*%", text), re.findall(r"\d+\.\d+|\d+\s*%", text)


def test_front_page_has_the_scorecard_the_tally_and_no_claims_table():
    assert "```{glue:figure} front_scorecard" in INTRO
    assert 'plots.glue_figure("front_scorecard", scorecard.figure(' in INTRO
    assert "claims.tally_line(verdicts)" in INTRO
    assert "findings_table" not in INTRO  # the full table lives on the claims page only
    findings = _section(INTRO, "What a reader should take away")
    items = [line for line in findings.splitlines() if line.startswith("- ")]
    assert 5 <= len(items) <= 6
    for item in re.split(r"\n- ", findings.strip())[0:]:
        assert "{doc}`chapters/" in item and "{glue:text}`front_" in item, item[:60]
    assert "## How to read this book" in INTRO and "{doc}`chapters/01_dataset`" in INTRO


def _verdicts(word_by_id):
    out = {}
    for cid, word in word_by_id.items():
        c = claims.CLAIMS_BY_ID[cid]
        out[cid] = Verdict(cid, word, "x", c.notes_display, "", "", value=1.2, lo=1.0, hi=1.4, n=3)
    return out


def test_front_values_come_from_the_verdicts():
    v = {"paper_test_error": decide("paper_test_error", [1.11, 1.21, 1.21])}
    v |= _verdicts({cid: FAILS for cid in scorecard.TABLE2_TEST})
    out = scorecard.front_values(v)
    assert set(out) == scorecard.front_keys()
    assert out["front_paper_test_error_verdict"] == FAILS
    assert out["front_paper_test_error_interval"] == "1.03 to 1.32 over 3 seeds"
    assert out["front_paper_test_error_ours"] == "1.18"
    assert out["front_paper_test_error_notes"] == "0.95%"
    assert out["front_c3_params_verdict"] == "not decided yet"
    # 1.2 is below every notes' Table 2 number: no row is beaten
    assert out["front_table2_higher"] == "0 of the 6"


def test_scorecard_has_a_row_per_numeric_claim_and_marks_verdicts_beyond_colour():
    words = {"c3_params": HOLDS, "centre_of_mass": APPROX, "table2_sgd30": FAILS,
             "gap_law_h": UNCHECKABLE, "paper_is_alexnet": FAILS}  # fmt: skip
    verdicts = _verdicts(words)
    verdicts["paper_is_alexnet"] = decide("paper_is_alexnet")  # a cited fact: no number
    rows = scorecard.rows(verdicts)
    assert [c.id for c, _, _ in rows] == [c.id for c in claims.CLAIMS if c.id in words][:-1] or (
        {c.id for c, _, _ in rows} == {"c3_params", "centre_of_mass", "table2_sgd30", "gap_law_h"}
    )
    fig = scorecard.figure(verdicts)
    assert len(fig.axes) == len(rows) == 4
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    for w in (HOLDS, APPROX, FAILS, UNCHECKABLE):  # the word and its mark, not only a colour
        assert f"{claims.VERDICT_MARK[w]} {w}" in texts
    assert len({m for _, m in scorecard.STYLE.values()}) == 4
    assert len({c for c, _ in scorecard.STYLE.values()}) == 4
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # white: readable in dark mode
    matplotlib.pyplot.close(fig)


def test_front_numbers_are_bare_numbers():
    """A row that notes its direction in `ours` ("98.96 (ours 10.73 points higher)") gives the
    front page its number alone, which the page follows with a unit."""
    from lenet_lib import scorecard
    from lenet_lib.base.verdicts import FAILS, Verdict

    cid = "table2_sgd30"
    v = Verdict(cid, FAILS, "98.96 (ours 10.73 points higher)", "88.23", "", "", value=98.96)
    values = scorecard.front_values({cid: v})
    assert values[f"front_{cid}_ours"] == "98.96"
