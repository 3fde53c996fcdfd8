"""Every claim of the notes, as data (claims.toml), decided by the one rule book (verdicts.py).

`CLAIMS` holds each claim in our words with where the notes make it, the notes' number, the
criterion that decides it and the section that checks it. A chapter calls `decide(claim_id,
ours, ...)` and `glue_verdict` (keys `claim_<id>_verdict` and `claim_<id>_ours`), which in a
book build also writes the decided verdict to the build's ledger; the claims page and the
front page read the ledger back (`decided`) and render it (`findings_table`, `scorecard.py`).
`criteria_text` states the noise model and explains each kind of criterion once. Never
trains, never reads `results/`.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from lenet_lib.base.inputs import LOG_VAR, record_read
from lenet_lib.base.notes import NOTES_TABLE1, NOTES_TABLE2, NOTES_TABLE_I, PAPER  # noqa: F401 (re-exported)
from lenet_lib.base.verdicts import (  # noqa: F401 (re-exported: chapters use claims.X)
    APPROX,
    FAILS,
    HOLDS,
    KINDS,
    NOISE_RULE,
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
    t_interval,
    welch_df,
    welch_interval,
    within_se,
    within_tol,
)
from lenet_lib.base.verdicts import decide as _decide

# Who makes a claim, by a claim's `source`: the notes, the paper, or Yadav & Bottou's run of
# Lush's LeNet-5 demo (QMNIST, 2019).
SOURCES = {"notes": "notes", "paper": "the paper", "lush": "Yadav & Bottou"}


@dataclass(frozen=True)
class Claim:
    """One claim: `id`, the claim in our words, the notes' `section`, the notes' number
    (`notes_value` as data, `notes_text` as shown), its criterion, and the chapter and
    anchor that check it (`chapter` "" for claims decided by a citation).

    `glued` is True where the chapter decides the claim and glues `claim_<id>_verdict` and
    `claim_<id>_ours`; `extra` holds what else its chapter's check needs (a claim's own
    parameters, e.g. chapter 03's `min_widths`).
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


def criterion(row: dict, claim_id: str = "") -> Criterion:
    """The criterion of one claims.toml row (`{kind = ..., <its parameters>}`), made by its
    kind's constructor, so that its checks run; a bad row is refused naming the claim."""
    where = f"claims.toml, claim {claim_id!r}" if claim_id else "a criterion"
    row = dict(row)
    kind = row.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown criterion kind {kind!r}; use one of {list(KINDS)}")
    cls = KINDS[kind]
    try:
        return cls(**row)
    except (TypeError, ValueError) as e:
        params = ", ".join(
            f.name if f.default is MISSING else f"{f.name} = {f.default!r}" for f in fields(cls)
        )
        raise ValueError(
            f"{where}: bad {kind} criterion {row}: {e}. Its parameters (with their defaults): "
            f"{params}; lenet_lib/base/verdicts.py, class {cls.__name__}, says what each means"
        ) from None


def load(path=DATA) -> tuple[Claim, ...]:
    """The claims of `claims.toml`, in the notes' order, each criterion made by its kind's
    constructor (`criterion`)."""
    rows = tomllib.loads(Path(path).read_text())["claim"]
    out = []
    for r in rows:
        crit = {k: _tuples(v) for k, v in r.pop("criterion").items()}
        r = {k: _tuples(v) for k, v in r.items()}
        crit = criterion(crit, r.get("id", ""))
        out.append(Claim(notes_value=r.pop("notes_value", None), criterion=crit, **r))
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


# --- the ledger: what the chapters decided, for the claims page and the front page --------


def ledger_dir() -> Path | None:
    """The build's ledger folder (beside the inputs extension's read logs), or None outside a
    book build: chapters write their verdicts there, the claims and front pages read them."""
    log = os.environ.get(LOG_VAR)
    return Path(log).parent.parent / "lenet_claims" if log else None


def _record(v: Verdict, ours: str) -> None:
    folder = ledger_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    rec = {**v.__dict__, "ours": ours}
    rec = {k: (None if isinstance(x, float) and x != x else x) for k, x in rec.items()}
    tmp = folder / f"{v.claim_id}.json.tmp"
    tmp.write_text(json.dumps(rec, indent=1, sort_keys=True, default=float))
    os.replace(tmp, folder / f"{v.claim_id}.json")


def decided(claims: Sequence[Claim] = CLAIMS, folder=None) -> dict:
    """`{claim id: Verdict}` for every claim decided so far: those decided by a citation here,
    the others as their chapter recorded them in the ledger (missing: the chapter has not
    been built). Used by the claims page and the front page."""
    folder = Path(folder) if folder else ledger_dir()
    if folder is not None:
        record_read(folder)  # the page re-executes when a chapter records a new verdict
    out = {}
    for c in claims:
        if c.criterion.kind in ("reference", "not_checkable"):
            out[c.id] = decide(c)
        path = None if folder is None else folder / f"{c.id}.json"
        if path is not None and path.exists():
            out[c.id] = Verdict(**json.loads(path.read_text()))
    return out


# --- rendering -----------------------------------------------------------------------------

VERDICT_LABEL = {  # the tally's words and the claims page's anchors
    HOLDS: ("hold", "verdict-holds"),
    APPROX: ("hold within a stated tolerance", "verdict-approx"),
    FAILS: ("do not hold", "verdict-fails"),
    UNCHECKABLE: ("cannot be checked here", "verdict-uncheckable"),
}
VERDICT_MARK = {HOLDS: "✓", APPROX: "≈", FAILS: "✗", UNCHECKABLE: "?"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link_cell(c: Claim) -> str:
    if not c.chapter:
        return "the references"
    if c.anchor.startswith("ref:"):
        return f"{{ref}}`{c.link} <{c.anchor[4:]}>`"
    if c.anchor:
        return f"[{c.link}](chapters/{c.chapter}.ipynb#{c.anchor})"
    return f"{{doc}}`chapters/{c.chapter}`"


def _verdict_cell(c: Claim, v: Verdict | None) -> str:
    if v is None:
        return "not decided yet (its chapter has not been built)"
    cites = "".join(f" {{cite}}`{k}`" for k in c.criterion.cite)
    why = c.criterion.fact if c.criterion.kind in ("reference", "not_checkable") else v.detail
    crit = "" if c.criterion.kind in ("reference", "not_checkable") else c.criterion.text()
    parts = [p for p in (crit, why) if p]
    small = "; ".join(parts) + cites
    return f"{VERDICT_MARK[v.verdict]} **{v.verdict}**" + (
        f"<br><small>{small}</small>" if small else ""
    )


def findings_table(
    claims: Sequence[Claim] = CLAIMS,
    section: str | None = None,
    verdicts: dict | None = None,
    verdict: str | None = None,
) -> str:
    """The claims as a MyST table, one row per claim (of one notes' section, or with one
    verdict, if given): the claim and its section of the notes, the notes' number, ours, the
    verdict with its criterion and reasoning on a second line, and the section that checks it.
    Five columns, so that it fits the page (the claims page)."""
    verdicts = decided(claims) if verdicts is None else verdicts
    rows = [c for c in claims if section is None or c.section == section]
    rows = [
        c
        for c in rows
        if verdict is None or getattr(verdicts.get(c.id), "verdict", None) == verdict
    ]
    lines = ["| Claim | Notes | Ours | Verdict | Checked in |", "|---|---|---|---|---|"]
    for c in rows:
        v = verdicts.get(c.id)
        who = SOURCES.get(c.source, "notes")
        claim = f"{c.claim} <br><small>{who}, §{c.section}</small>"
        ours = "–" if v is None or c.criterion.kind in ("reference", "not_checkable") else v.ours
        cells = [claim, c.notes_display, ours or "–", _verdict_cell(c, v), _link_cell(c)]
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"


def tally(verdicts: dict, claims: Sequence[Claim] = CLAIMS) -> dict:
    """How many claims have each verdict, and how many are not decided yet."""
    words = [getattr(verdicts.get(c.id), "verdict", None) for c in claims]
    return {w: words.count(w) for w in (*VERDICTS, None)}


def tally_line(verdicts: dict, page: str = "claims") -> str:
    """The tally as MyST, each count linking to its list on the claims page (`page`)."""
    t = tally(verdicts)
    parts = [
        f"{VERDICT_MARK[w]} {{ref}}`{t[w]} {VERDICT_LABEL[w][0]} <{VERDICT_LABEL[w][1]}>`"
        for w in VERDICTS
    ]
    line = f"Of the {sum(t.values())} claims: " + " · ".join(parts)
    if t[None]:
        line += f" · {t[None]} not decided yet (their chapters have not been built)"
    return line + "."


def criteria_text() -> str:
    """The noise model, each verdict word and each kind of criterion, explained once (the
    claims page)."""
    out = [NOISE_RULE, "\nVerdicts:\n"]
    out += [f"- {VERDICT_MARK[w]} *{w}*: {meaning}" for w, meaning in VERDICT_MEANING.items()]
    out.append("\nCriteria:\n")
    out += [
        f"- **{c.name}** (`{kind}`): {' '.join(c.__doc__.split())}" for kind, c in KINDS.items()
    ]
    return "\n".join(out) + "\n"


def counts(claims: Sequence[Claim] = CLAIMS) -> dict:
    """How many claims each kind of criterion decides, and how many are decided by a
    citation or cannot be checked (the introduction's summary line)."""
    kinds = [c.criterion.kind for c in claims]
    return {k: kinds.count(k) for k in KINDS if k in kinds}


def decide(
    claim, ours=None, notes=None, *, se=None, ci=None, df=None, fmt: str | None = None
) -> Verdict:
    """Decide a claim (its id, a `Claim`, or a bare `Criterion`) from our measurement; the
    parameters are those of `verdicts.decide`, `notes` defaulting to the claim's number."""
    if isinstance(claim, str):
        if claim not in CLAIMS_BY_ID:
            raise KeyError(f"no claim {claim!r}: see lenet_lib/book/claims.toml for the ids")
        claim = CLAIMS_BY_ID[claim]
    if isinstance(claim, Criterion):
        return _decide(claim, ours, notes, se=se, ci=ci, df=df, fmt=fmt)
    if not isinstance(claim, Claim):
        raise TypeError(f"decide needs a claim id, a Claim or a Criterion, not {type(claim)}")
    notes = claim.notes_value if notes is None else notes
    return _decide(
        claim.criterion, ours, notes, se=se, ci=ci, df=df, fmt=fmt or claim.fmt, cid=claim.id
    )


def _glue(key: str, value) -> None:
    """myst-nb's glue inside a kernel; nothing outside one (a script or a test).

    Prefers `lenet_lib.book.glue` where it exists; this fallback is private.
    """
    try:
        from .page import glue  # type: ignore[attr-defined]
    except ImportError:
        from IPython import get_ipython

        if get_ipython() is None:
            return
        from myst_nb import glue
    glue(key, value, display=False)


def cannot_check(claim_id: str, reason: str, ours: str = "") -> Verdict:
    """The verdict of a claim the data measured here cannot decide, with the reason (e.g. a
    minimum claimed inside a range whose lowest value is at its end: chapter 03)."""
    c = CLAIMS_BY_ID[claim_id]
    return Verdict(claim_id, UNCHECKABLE, ours or "–", c.notes_display, c.criterion.text(), reason)


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
    _record(v, v.ours if ours is None else ours)
    return v


# --- the claims ----------------------------------------------------------------------------
