"""Every claim of the notes, as data (claims.toml), decided by the one rule book (verdicts.py).

`CLAIMS` holds each claim in our words with where the notes make it, the notes' number, the
criterion that decides it and the section that checks it. A chapter calls `decide(claim_id,
ours, ...)` and `glue_verdict` (keys `claim_<id>_verdict` and `claim_<id>_ours`);
`findings_table` renders the rows for the introduction and the claims page, and
`criteria_text` explains each kind of criterion once. Never trains, never reads `results/`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .notes import NOTES_TABLE1, NOTES_TABLE2, NOTES_TABLE_I, PAPER  # noqa: F401 (re-exported)
from .verdicts import (  # noqa: F401 (re-exported: chapters use claims.X)
    APPROX,
    FAILS,
    HOLDS,
    KINDS,
    UNCHECKABLE,
    VERDICT_MEANING,
    VERDICTS,
    Criterion,
    Verdict,
    _fmt,
    binomial_se,
    exact,
    interval,
    not_checkable,
    reference,
    sign,
    standard_error,
    within_se,
    within_tol,
)
from .verdicts import decide as _decide


@dataclass(frozen=True)
class Claim:
    """One claim: `id`, the claim in our words, the notes' `section`, the notes' number
    (`notes_value` as data, `notes_text` as shown), its criterion, and the chapter and
    anchor that check it (`chapter` "" for claims decided by a citation).

    `glued` is True once the chapter glues `claim_<id>_verdict` and `claim_<id>_ours`; until
    then `verdict_key` names the chapter's own verdict key and `ours` a template of its glue
    keys in braces, e.g. "{dataset_box_fits}%".
    """

    id: str
    claim: str
    section: str
    notes_value: object
    criterion: Criterion
    chapter: str = ""
    anchor: str = ""
    link: str = ""
    notes_text: str = ""
    source: str = "notes"
    fmt: str = "{:.4g}"
    glued: bool = False
    verdict_key: str | None = None
    ours: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def notes_display(self) -> str:
        if self.notes_text:
            return self.notes_text
        if self.notes_value is None:
            return "–"
        return _fmt(self.notes_value, self.fmt)


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


DATA = Path(__file__).with_name("claims.toml")


def load(path=DATA) -> tuple[Claim, ...]:
    """The claims of `claims.toml`, in the notes' order."""
    rows = tomllib.loads(Path(path).read_text())["claim"]
    out = []
    for r in rows:
        crit = {k: _tuples(v) for k, v in r.pop("criterion").items()}
        r = {k: _tuples(v) for k, v in r.items()}
        out.append(Claim(notes_value=r.pop("notes_value", None), criterion=Criterion(**crit), **r))
    return tuple(out)


CLAIMS = load()
CLAIMS_BY_ID = {c.id: c for c in CLAIMS}
if len(CLAIMS_BY_ID) != len(CLAIMS):
    raise RuntimeError("claim ids must be unique")

SECTIONS = {  # the notes' sections, in order, for the claims page
    "1": "1 The paper",
    "1.1": "1.1 Dataset",
    "1.2": "1.2 Preprocessing",
    "1.3.1": "1.3.1 Learning from data",
    "1.3.2": "1.3.2 Convolutional networks",
    "1.4.1": "1.4.1 Activation functions",
    "1.4.2": "1.4.2 Final architecture",
    "2": "2 Implementation",
    "2.1": "2.1 MNIST training",
    "2.2": "2.2 Testing",
}


# --- rendering -----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _glue_ref(chapter: str, key: str) -> str:
    return f"{{glue:text}}`chapters/{chapter}.ipynb::{key}:s`"


def _ours_cell(c: Claim) -> str:
    if c.glued:
        return _glue_ref(c.chapter, claim_key(c.id, "ours"))
    if c.ours:
        # a template of the chapter's glue keys in braces, e.g. "{dataset_box_fits}%"
        parts = c.ours.replace("}", "{").split("{")
        return "".join(_glue_ref(c.chapter, p) if i % 2 else p for i, p in enumerate(parts))
    return "–"


def _verdict_cell(c: Claim) -> str:
    word = _glue_ref(c.chapter, claim_key(c.id, "verdict")) if c.glued else None
    if c.criterion.kind in ("reference", "not_checkable"):  # decided here, glued or not
        v = decide(c)
        cites = "".join(f" {{cite}}`{k}`" for k in c.criterion.cite)
        return f"**{word or v.verdict}**: {v.detail}{cites}"
    if word:
        return f"**{word}**"
    if c.verdict_key:
        return f"**{_glue_ref(c.chapter, c.verdict_key)}** †"
    return "not decided yet"


def _link_cell(c: Claim) -> str:
    if not c.chapter:
        return "the references"
    if c.anchor.startswith("ref:"):
        return f"{{ref}}`{c.link} <{c.anchor[4:]}>`"
    if c.anchor:
        return f"[{c.link}](chapters/{c.chapter}.ipynb#{c.anchor})"
    return f"{{doc}}`chapters/{c.chapter}`"


def findings_table(claims: Sequence[Claim] = CLAIMS, section: str | None = None) -> str:
    """The findings as a MyST markdown table, one row per claim (of one notes' section if
    given): the claim, where the notes make it, the notes' number, ours, the verdict, the
    criterion and the section that checks it. Cells hold glue references to the chapters'
    keys. Used by the introduction and the claims page."""
    rows = [c for c in claims if section is None or c.section == section]
    lines = [
        "| Claim | Notes | Notes' number | Ours | Verdict | Criterion | Checked in |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in rows:
        claim = c.claim + (" (the paper's claim)" if c.source == "paper" else "")
        cells = [
            claim,
            c.section,
            c.notes_display,
            _ours_cell(c),
            _verdict_cell(c),
            c.criterion.text(),
            _link_cell(c),
        ]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def criteria_text() -> str:
    """Each verdict word and each kind of criterion, explained once (the claims page)."""
    out = ["Verdicts:\n"]
    out += [f"- *{word}*: {meaning}" for word, meaning in VERDICT_MEANING.items()]
    out.append("\nCriteria:\n")
    out += [f"- **{name}** (`{kind}`): {text}" for kind, (name, text) in KINDS.items()]
    return "\n".join(out) + "\n"


def counts(claims: Sequence[Claim] = CLAIMS) -> dict:
    """How many claims each kind of criterion decides, and how many are decided by a
    citation or cannot be checked (the introduction's summary line)."""
    kinds = [c.criterion.kind for c in claims]
    return {k: kinds.count(k) for k in KINDS if k in kinds}


def decide(claim, ours=None, notes=None, *, se=None, ci=None, fmt: str | None = None) -> Verdict:
    """Decide a claim (its id, a `Claim`, or a bare `Criterion`) from our measurement; the
    parameters are those of `verdicts.decide`, `notes` defaulting to the claim's number."""
    if isinstance(claim, str):
        if claim not in CLAIMS_BY_ID:
            raise KeyError(f"no claim {claim!r}: see lenet_lib/claims.toml for the ids")
        claim = CLAIMS_BY_ID[claim]
    if isinstance(claim, Criterion):
        return _decide(claim, ours, notes, se=se, ci=ci, fmt=fmt)
    if not isinstance(claim, Claim):
        raise TypeError(f"decide needs a claim id, a Claim or a Criterion, not {type(claim)}")
    notes = claim.notes_value if notes is None else notes
    return _decide(claim.criterion, ours, notes, se=se, ci=ci, fmt=fmt or claim.fmt, cid=claim.id)


def _glue(key: str, value) -> None:
    """myst-nb's glue inside a kernel; nothing outside one (a script or a test).

    Prefers `lenet_lib.book.glue` where it exists; this fallback is private.
    """
    try:
        from .book import glue  # type: ignore[attr-defined]
    except ImportError:
        from IPython import get_ipython

        if get_ipython() is None:
            return
        from myst_nb import glue
    glue(key, value, display=False)


def claim_key(claim_id: str, what: str = "verdict") -> str:
    """The glue key of a claim's verdict or of our number: `claim_<id>_verdict`, `_ours`."""
    return f"claim_{claim_id}_{what}"


def glue_verdict(v: Verdict, ours: str | None = None) -> Verdict:
    """Glue a verdict and our number under the claim's keys; return the verdict. `ours`,
    where given, is shown instead of the decided values (a summary of many runs' values, or
    a number for a claim that cannot be checked)."""
    if v.claim_id is None:
        raise ValueError("only a verdict decided for a claim id can be glued")
    _glue(claim_key(v.claim_id, "verdict"), v.verdict)
    _glue(claim_key(v.claim_id, "ours"), v.ours if ours is None else ours)
    return v


# --- the claims ----------------------------------------------------------------------------
