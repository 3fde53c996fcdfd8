"""Every claim of the notes as data, and the one function that decides every verdict.

`CLAIMS` holds each claim in our words with where the notes make it, the notes' number, the
criterion that decides it and the section that checks it. `decide` turns a criterion and our
measurement into a `Verdict`; `glue_verdict` glues it under keys derived from the claim id.
`findings_table` renders the rows for the introduction and the claims page, and `criteria_text`
explains each kind of criterion once. The chapters check the claims; this module never trains
and never reads `results/`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .notes import NOTES_TABLE1, NOTES_TABLE2, NOTES_TABLE_I, PAPER  # noqa: F401 (read here)

HOLDS = "holds"
APPROX = "holds approximately"
FAILS = "does not hold"
UNCHECKABLE = "cannot be checked here"
VERDICTS = (HOLDS, APPROX, FAILS, UNCHECKABLE)

# What each verdict word means, for the claims page.
VERDICT_MEANING = {
    HOLDS: "the criterion stated with the claim is met.",
    APPROX: (
        "the criterion is missed, but the claim is met under a looser reading stated with it "
        "in advance: a second, wider tolerance for a value computed without noise (a formula, "
        "a count, a constant); the 95% interval of a fitted value reaching into the claimed "
        "range while the value itself lies outside it; or, for a statement, a named weaker "
        "reading. A difference measured against seed or sampling noise is never "
        "approximately right: beyond k standard errors it does not hold."
    ),
    FAILS: "the criterion is missed, and so is its looser reading where one is stated.",
    UNCHECKABLE: (
        "the data here cannot decide: the files lack what the claim is about, a standard "
        "error is unknown (one seed), or no chapter measures it; the reason is given."
    ),
}

# The paper's own numbers (LeCun et al. 1998) where a chapter compares with them.
# --- criteria ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """How a claim is decided: a kind and its stated parameters (see the constructors)."""

    kind: str
    k: float = 2.0
    tol: float | None = None
    approx: float | tuple | None = None
    scale: str = "abs"
    lo: float | None = None
    hi: float | None = None
    direction: int = 1
    single_run: bool = False
    binomial_n: int | None = None
    fitted: bool = False
    of: str = ""
    verdict: str | None = None
    fact: str = ""
    cite: tuple = ()

    def text(self) -> str:
        """The criterion in words, as the tables show it."""
        core = self._text()
        return f"{self.of}: {core}" if self.of else core

    def _text(self) -> str:
        if self.kind == "within_se":
            extra = ""
            if self.single_run:
                extra = "; the notes' single run has the spread of one of our seeds"
            if self.binomial_n:
                extra = f"; the paper's rate has the sampling error of {self.binomial_n:,} digits"
            return f"difference within {self.k:g} standard errors of the difference{extra}"
        if self.kind == "within_tol":
            unit = {"abs": "", "rel": " (relative)", "factor": ""}[self.scale]
            core = (
                f"within a factor of {self.tol:g}"
                if self.scale == "factor"
                else f"within {self.tol:g}{unit}"
            )
            if self.approx is not None:
                wide = (
                    f"a factor of {self.approx:g}" if self.scale == "factor" else f"{self.approx:g}"
                )
                core += f"; approximately within {wide}"
            return core
        if self.kind == "sign":
            word = "positive" if self.direction > 0 else "negative"
            return f"every difference {word}, by more than {self.k:g} standard errors where seeds give one"
        if self.kind == "exact":
            core = "equal" if not self.tol else f"equal up to {self.tol:g} (float rounding)"
            if self.approx:
                core += f"; approximately: {', '.join(map(str, self.approx))}"
            return core
        if self.kind == "interval":
            core = f"in [{self.lo:g}, {self.hi:g}]"
            return core + ("; approximately: its 95% interval reaches it" if self.fitted else "")
        if self.kind == "reference":
            return "a cited fact"
        return "–"


def within_se(k: float = 2.0, single_run: bool = False, binomial_n: int | None = None):
    """Our mean against the claimed value, the difference against k standard errors.

    The standard error is that of the difference: our seeds' standard error of the mean, and
    the claimed value's own (`single_run`: one run of the notes', given our seeds' spread;
    `binomial_n`: an error rate in % on that many digits). No approximate band.
    """
    return Criterion("within_se", k=k, single_run=single_run, binomial_n=binomial_n)


def within_tol(tol: float, approx: float | None = None, scale: str = "abs", of: str = ""):
    """A value computed without noise within a stated tolerance (`abs`, `rel`, or `factor`,
    the larger ratio of the two); `approx`, a wider tolerance, gives 'holds approximately'."""
    if scale not in ("abs", "rel", "factor"):
        raise ValueError(f"scale must be 'abs', 'rel' or 'factor', not {scale!r}")
    return Criterion("within_tol", tol=tol, approx=approx, scale=scale, of=of)


def sign(direction: int = 1, k: float = 2.0, of: str = ""):
    """Every value (a difference, or successive differences for an ordering) has the sign of
    `direction`, by more than k standard errors where a standard error is given."""
    return Criterion("sign", direction=1 if direction > 0 else -1, k=k, of=of)


def exact(tol: float = 0.0, approx: tuple = (), of: str = ""):
    """Counts, shapes, names: equal (numbers up to `tol`, float rounding). `approx` lists
    values accepted as a stated weaker reading."""
    return Criterion("exact", tol=tol, approx=tuple(approx), of=of)


def interval(lo: float, hi: float, fitted: bool = False, of: str = ""):
    """A value in [lo, hi]. For a `fitted` value, given with its 95% interval, an interval
    that reaches the range while the value lies outside gives 'holds approximately'."""
    return Criterion("interval", lo=lo, hi=hi, fitted=fitted, of=of)


def reference(verdict: str, fact: str, *cite: str):
    """A historical or bibliographic claim, decided by a cited fact (bibtex keys in `cite`)."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}: use one of {VERDICTS}")
    return Criterion("reference", verdict=verdict, fact=fact, cite=cite)


def not_checkable(reason: str):
    """A claim the data here cannot decide, and why."""
    return Criterion("not_checkable", fact=reason)


KINDS = {  # each kind of criterion, explained once on the claims page
    "within_se": (
        "difference against k standard errors",
        "Our mean over seeds against the claimed value. The standard error is that of the "
        "difference: the standard error of our mean over seeds (their standard deviation "
        "over the square root of their number) combined with the claimed value's own, where "
        "it has one (an error rate of the paper counted on 10,000 test digits; a single run "
        "of the notes', taken to vary as one of our seeds does). For two means over seeds it "
        "is the square root of the sum of the two squared standard errors. The claim holds "
        "when the difference is at most k standard errors; with one seed the standard error "
        "is unknown and the claim cannot be checked. There is no approximate band: a "
        "difference the data resolve is a difference.",
    ),
    "within_tol": (
        "stated tolerance",
        "For values computed without noise (a formula, a constant, a range of rates): the "
        "absolute or relative difference, or the ratio, at most the tolerance stated with the "
        "claim; a second, wider tolerance, where stated, gives 'holds approximately'.",
    ),
    "sign": (
        "a sign or an ordering",
        "The claimed direction of a difference (or of every step of an ordering). Where seeds "
        "give a standard error, each difference must exceed k of them in that direction; a "
        "difference within the noise does not support the claim.",
    ),
    "exact": (
        "equal",
        "Counts, sizes, names and tables: ours must equal the claim (floating-point values "
        "up to a stated rounding). A weaker reading, where stated, gives 'holds "
        "approximately'.",
    ),
    "interval": (
        "a value in a stated range",
        "The value lies in the claimed range; a fitted value outside it whose 95% interval "
        "reaches into it holds approximately.",
    ),
    "reference": (
        "a cited fact",
        "Historical and bibliographic claims are decided by the publications cited beside "
        "them, not by a computation.",
    ),
    "not_checkable": (
        "cannot be checked here",
        "The reason is given with the claim.",
    ),
}


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A decided claim: the verdict, our value and the notes' (as text), the criterion in
    words, and a line on how it was decided."""

    claim_id: str | None
    verdict: str
    ours: str
    notes: str
    criterion: str
    detail: str = ""


def _values(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=float))


def standard_error(a, b=None) -> float:
    """Standard error of the mean of `a`, or of the difference of the means of `a` and `b`
    (each a sequence of per-seed values; a scalar counts as exact). NaN when a sequence has
    a single value, whose spread is unknown."""

    def se_mean(x):
        if np.ndim(x) == 0:
            return 0.0
        x = _values(x)
        return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan

    if b is None:
        return se_mean(a)
    return math.hypot(se_mean(a), se_mean(b))


def binomial_se(rate: float, n: int) -> float:
    """Standard error, in points of %, of an error rate `rate` (%) counted on n digits."""
    p = rate / 100
    return 100 * math.sqrt(p * (1 - p) / n)


def _fmt(x, fmt: str = "{:.4g}") -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    v = _values(x)
    if len(v) == 1:
        return fmt.format(v[0])
    return ", ".join(fmt.format(e) for e in v)


def decide(claim, ours=None, notes=None, *, se=None, ci=None, fmt: str | None = None) -> Verdict:
    """Decide a claim (a claim id, a `Claim` or a `Criterion`) from our measurement.

    Parameters
    ----------
    ours : our value: a number, per-seed values (within_se: their mean is compared, their
        spread gives the standard error), values that must all pass (sign, within_tol),
        a bool, or a string (exact). Not needed for reference and not_checkable.
    notes : the claimed value; defaults to the claim's `notes_value`.
    se : standard error(s) for a `sign` criterion (NaN: unknown, the claim cannot be
        checked); for within_se, the standard error of the difference when it was computed
        elsewhere (e.g. from a fit).
    ci : the 95% interval (lo, hi) of `ours`, for an `interval` criterion.

    Used by every chapter that decides a claim, and by the claims page for the claims decided
    by a citation.
    """
    if isinstance(claim, str) and claim not in CLAIMS_BY_ID:
        raise KeyError(f"no claim {claim!r}: see lenet_lib.claims.CLAIMS for the ids")
    c = (
        CLAIMS_BY_ID[claim]
        if isinstance(claim, str)
        else claim
        if isinstance(claim, Claim)
        else None
    )
    crit = c.criterion if c else claim
    if not isinstance(crit, Criterion):
        raise TypeError(f"decide needs a claim id, a Claim or a Criterion, not {type(claim)}")
    if notes is None and c is not None:
        notes = c.notes_value
    fmt = fmt or (c.fmt if c else "{:.4g}")
    cid = c.id if c else None

    def out(verdict, detail="", ours_text=None):
        return Verdict(
            cid,
            verdict,
            _fmt(ours, fmt) if ours_text is None else ours_text,
            _fmt(notes, fmt),
            crit.text(),
            detail,
        )

    kind = crit.kind
    if kind == "reference":
        return out(crit.verdict, crit.fact, ours_text=crit.fact)
    if kind == "not_checkable":
        return out(UNCHECKABLE, crit.fact)
    if ours is None:
        raise ValueError(f"claim {cid or crit.kind}: a {kind} criterion needs our value")

    if kind == "within_se":
        a = _values(ours)
        mean = float(a.mean())
        if se is None:
            if len(a) < 2:
                return out(UNCHECKABLE, "one seed: the standard error is unknown", _fmt(mean, fmt))
            se_ours = standard_error(a)
            if isinstance(notes, Sequence | np.ndarray) and not isinstance(notes, str):
                se_notes, ref = standard_error(notes), float(_values(notes).mean())
            else:
                ref = float(notes)
                se_notes = 0.0
                if crit.single_run:
                    se_notes = float(a.std(ddof=1))
                if crit.binomial_n:
                    se_notes = binomial_se(ref, crit.binomial_n)
            se = math.hypot(se_ours, se_notes)
        else:
            ref = float(_values(notes).mean())
        if math.isnan(se):
            return out(UNCHECKABLE, "one seed: the standard error is unknown", _fmt(mean, fmt))
        d = mean - ref
        if se == 0:
            ok, ratio = d == 0, "exact values"
        else:
            ok, ratio = abs(d) <= crit.k * se, f"{abs(d) / se:.1f} standard errors"
        detail = f"difference {d:+.3g}, {ratio} (standard error {se:.2g})"
        return out(HOLDS if ok else FAILS, detail, _fmt(mean, fmt))

    if kind == "within_tol":
        a, b = _values(ours), _values(notes)
        if crit.scale == "abs":
            dev = np.abs(a - b)
        elif crit.scale == "rel":
            dev = np.abs(a - b) / np.abs(b)
        else:
            dev = np.maximum(a / b, b / a)
        worst = float(dev.max())
        detail = f"largest deviation {worst:.3g}"
        if worst <= crit.tol:
            return out(HOLDS, detail)
        if crit.approx is not None and worst <= crit.approx:
            return out(APPROX, detail)
        return out(FAILS, detail)

    if kind == "sign":
        v = crit.direction * _values(ours)
        s = np.zeros_like(v) if se is None else np.broadcast_to(_values(se), v.shape)
        if np.isnan(s).any():
            return out(UNCHECKABLE, "one seed: the standard error is unknown")
        margin = v - crit.k * s
        detail = f"smallest margin {float(margin.min()):.3g}"
        return out(HOLDS if (margin > 0).all() else FAILS, detail)

    if kind == "exact":
        if isinstance(ours, str) or isinstance(notes, str):
            if ours == notes:
                return out(HOLDS)
            if ours in crit.approx:
                return out(APPROX, f"a weaker reading: {ours}")
            return out(FAILS, f"{ours} is not {notes}")
        if isinstance(ours, bool | np.bool_) and notes is None:
            return out(HOLDS if ours else FAILS)
        a, b = _values(ours), _values(notes)
        if a.shape != b.shape and b.size != 1:
            return out(FAILS, f"{a.size} values against {b.size}")
        ok = bool(np.all(np.abs(a - b) <= (crit.tol or 0.0)))
        return out(HOLDS if ok else FAILS)

    if kind == "interval":
        x = _values(ours)  # every value must lie in the range
        if ((crit.lo <= x) & (x <= crit.hi)).all():
            return out(HOLDS)
        if crit.fitted and (ci is None or len(x) != 1):
            raise ValueError(f"claim {cid}: a fitted value needs its 95% interval (ci)")
        if crit.fitted and ci[1] >= crit.lo and ci[0] <= crit.hi:
            return out(APPROX, f"95% interval {ci[0]:.3g} to {ci[1]:.3g}")
        return out(FAILS)

    raise ValueError(f"unknown criterion kind {kind!r}")


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


def glue_verdict(v: Verdict) -> Verdict:
    """Glue a verdict and our number under the claim's keys; return the verdict."""
    if v.claim_id is None:
        raise ValueError("only a verdict decided for a claim id can be glued")
    _glue(claim_key(v.claim_id, "verdict"), v.verdict)
    _glue(claim_key(v.claim_id, "ours"), v.ours)
    return v


# --- the claims ----------------------------------------------------------------------------


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


def _c(*args, **kw) -> Claim:
    return Claim(*args, **kw)


def _table2(row: int, name: str, anchor: str) -> Claim:
    r = NOTES_TABLE2.iloc[row]
    opt, epochs, test = r.optimizer, int(r.epochs), float(r.notes_test_acc)
    return _c(
        f"table2_{opt}{epochs}",
        f"Table 2: {name} for {epochs} epochs reaches {test:.2f}% test accuracy",
        "2.1",
        test,
        within_se(2, single_run=True),
        "07_optimizers",
        anchor,
        "Table 2",
        fmt="{:.2f}",
        verdict_key="optimizers_claim_table2",
        ours=f"{{optimizers_{opt}{epochs}_test_acc}}%",
    )


NCX = "the files carry no writer ids"
CLAIMS = (
    # 1 The paper
    _c(
        "paper_is_alexnet",
        'The paper summarised is "AlexNet", proposed in 1998',
        "1",
        "1998",
        reference(
            FAILS,
            "AlexNet is Krizhevsky, Sutskever and Hinton's network of 2012; the 1998 paper "
            "introduces LeNet-5",
            "krizhevsky2012imagenet",
            "lecun1998gradient",
        ),
    ),
    _c(
        "first_deep_cnn",
        "The 1998 paper is one of the first publications of a deep convolutional network",
        "1",
        "1998",
        reference(
            APPROX,
            "early, but not among the first: its authors trained convolutional networks by "
            "back-propagation on handwritten digits in 1989, after Fukushima's neocognitron "
            "(1980); the 1998 paper is their mature account",
            "lecun1989backpropagation",
            "fukushima1980neocognitron",
        ),
    ),
    # 1.1 Dataset
    _c(
        "sd1_writers",
        "NIST's SD-1 holds 58,527 digit images by 500 writers",
        "1.1",
        None,
        not_checkable(f"{NCX} (the notes repeat the paper)"),
        "01_dataset",
        "where-the-digits-come-from",
        "where the digits come from",
        notes_text="58,527 images, 500 writers",
    ),
    _c(
        "sd3_in_sequence",
        "SD-3 stores each writer's digits as a block, one writer after another",
        "1.1",
        None,
        not_checkable(f"{NCX} and no NIST order (the notes repeat the paper)"),
        "01_dataset",
        "where-the-digits-come-from",
        "where the digits come from",
    ),
    _c(
        "train_writers",
        "The training set takes about 30,000 digits from SD-1's first 250 writers and the "
        "rest from SD-3",
        "1.1",
        None,
        not_checkable(NCX),
        "01_dataset",
        "where-the-digits-come-from",
        "where the digits come from",
        notes_text="30,000 digits, 250 writers",
    ),
    _c(
        "dataset_sizes",
        "60,000 training digits; a test set of 5,000 from each database",
        "1.1",
        (60_000, 10_000),
        exact(),
        "01_dataset",
        "where-the-digits-come-from",
        "where the digits come from",
        notes_text="60,000 and 10,000",
        verdict_key="dataset_sizes_verdict",
        ours="{dataset_n_train} and {dataset_n_test}",
    ),
    _c(
        "box_20",
        "Every digit is scaled to fit a 20x20 box, its aspect ratio kept",
        "1.1",
        100.0,
        exact(),
        "01_dataset",
        "claim-the-digits-fit-a-20x20-box",
        "the 20x20 box",
        notes_text="20x20",
        fmt="{:.2f}",
        verdict_key="dataset_box_verdict",
        ours="{dataset_box_fits}% fit",
    ),
    _c(
        "grey_levels",
        "The scaling's interpolation leaves grey levels: most ink pixels are grey",
        "1.1",
        None,
        interval(50, 100, of="% of ink pixels strictly grey"),
        "01_dataset",
        "claim-grey-levels-come-from-the-interpolation",
        "grey levels",
        verdict_key="dataset_grey_verdict",
        ours="{dataset_grey_of_ink}% of ink pixels",
    ),
    _c(
        "centre_of_mass",
        "Each digit's centre of mass is at the centre of the 28x28 field: 99% or more "
        "within a pixel of it",
        "1.1",
        None,
        interval(99, 100, of="% within a pixel of (14, 14)"),
        "01_dataset",
        "claim-the-digits-are-centred-by-centre-of-mass",
        "centre of mass",
        notes_text="28x28 centre",
        verdict_key="dataset_com_verdict",
        ours="{dataset_com_within1}% within a pixel",
    ),
    # 1.2 Preprocessing
    _c(
        "scaling_values",
        "The inputs are scaled so that the background is -0.1 and the ink 1.175",
        "1.2",
        (PAPER["input_background"], PAPER["input_ink"]),
        reference(HOLDS, "the paper's own values (Section II-B)", "lecun1998gradient"),
        notes_text="-0.1 and 1.175",
    ),
    _c(
        "scaled_mean",
        "That scaling makes the mean input roughly 0 (within 0.1)",
        "1.2",
        0.0,
        within_tol(0.1, of="mean at 28x28 and 32x32"),
        "02_preprocessing",
        "mean-and-variance-of-the-scaled-pixels",
        "mean and variance",
        notes_text="roughly 0",
        verdict_key="preprocessing_claim_mean",
        ours="{preprocessing_paper_28_mean} (28x28), {preprocessing_paper_32_mean} (32x32)",
    ),
    _c(
        "scaled_variance",
        "... and the variance roughly 1 (between 0.5 and 2)",
        "1.2",
        1.0,
        interval(0.5, 2, of="variance at 28x28 and 32x32"),
        "02_preprocessing",
        "mean-and-variance-of-the-scaled-pixels",
        "mean and variance",
        notes_text="roughly 1",
        verdict_key="preprocessing_claim_variance",
        ours="{preprocessing_paper_28_variance} (28x28), {preprocessing_paper_32_variance} (32x32)",
    ),
    # 1.3.1 Learning from data
    _c(
        "gap_law_P",
        "The test-training gap falls as $k (h/P)^\\alpha$ with $\\alpha$ between 0.5 and 1: "
        "over the training-set size P",
        "1.3.1",
        (0.5, 1.0),
        interval(0.5, 1.0, fitted=True, of="fitted alpha"),
        "03_capacity",
        "the-gap-over-the-training-set-size",
        "gap over P",
        notes_text="0.5 to 1",
        verdict_key="capacity_claim_alpha_P",
        ours="$\\alpha$ = {capacity_P_alpha}",
    ),
    _c(
        "gap_law_h",
        "... over the capacity h",
        "1.3.1",
        (0.5, 1.0),
        interval(0.5, 1.0, fitted=True, of="fitted alpha"),
        "03_capacity",
        "the-gap-over-the-capacity",
        "gap over h",
        notes_text="0.5 to 1",
        verdict_key="capacity_claim_alpha_h",
        ours="$\\alpha$ = {capacity_h_alpha}",
    ),
    _c(
        "train_error_falls",
        "The training error falls as the capacity grows",
        "1.3.1",
        None,
        sign(-1, of="E_train from each width to the next"),
        "03_capacity",
        "the-gap-over-the-capacity",
        "gap over h",
        verdict_key="capacity_claim_train_falls",
    ),
    _c(
        "gap_grows",
        "The test-training gap grows with the capacity",
        "1.3.1",
        None,
        sign(+1, of="gap from each width to the next"),
        "03_capacity",
        "the-gap-over-the-capacity",
        "gap over h",
        verdict_key="capacity_claim_gap_grows",
    ),
    _c(
        "optimal_capacity",
        "Some capacity gives the lowest test error (a minimum inside the range tried)",
        "1.3.1",
        None,
        sign(+1, of="E_test at both ends minus the lowest"),
        "03_capacity",
        "the-gap-over-the-capacity",
        "gap over h",
        verdict_key="capacity_claim_optimum",
        ours="best width {capacity_best_width}",
    ),
    _c(
        "regularization",
        "Minimising $E_{train} + \\beta H(W)$ limits the capacity: it narrows the gap",
        "1.3.1",
        None,
        sign(+1, of="gap without decay minus gap with the strongest"),
        "03_capacity",
        "ref:capacity-regularization",
        "regularization",
        verdict_key="capacity_claim_decay",
        ours="narrower by {capacity_wd_narrowing} points",
    ),
    _c(
        "h_large_values",
        "$H(W)$ takes large values on the parameters $W$",
        "1.3.1",
        None,
        reference(
            FAILS,
            "as written it says nothing: the paper's $H(W)$ takes large values on parameters "
            "that belong to high-capacity subsets of the parameter space (Section I-A), the "
            "condition the notes leave out",
            "lecun1998gradient",
        ),
        "03_capacity",
        "ref:capacity-regularization",
        "regularization",
    ),
    # 1.3.2 Convolutional networks
    _c(
        "scale_distortion_invariance",
        "Local fields, shared weights and subsampling give some invariance to scale and distortion",
        "1.3.2",
        None,
        not_checkable(
            "not measured yet: chapter 04 shifts digits but does not rescale or distort them"
        ),
        "04_convolution",
        "what-the-shifts-do-to-the-answers",
        "the answers",
    ),
    _c(
        "local_field",
        "A unit with a 5x5 kernel reads a 5x5 area: 25 weights and a bias",
        "1.3.2",
        (25, 1),
        exact(),
        "04_convolution",
        "local-receptive-fields-and-shared-weights",
        "receptive fields",
        notes_text="25 + 1",
        verdict_key="convolution_claim_local_field",
        ours="{convolution_c1_unit_params}",
    ),
    _c(
        "shared_weights",
        "The units of a feature map share their weights",
        "1.3.2",
        0.0,
        exact(tol=1e-5),
        "04_convolution",
        "local-receptive-fields-and-shared-weights",
        "receptive fields",
        notes_text="shared",
        verdict_key="convolution_claim_shared_weights",
        ours="largest difference {convolution_sharing_error}",
    ),
    _c(
        "shift_equivariance",
        "A shifted input shifts the feature map by the same amount",
        "1.3.2",
        0.0,
        exact(tol=1e-5),
        "04_convolution",
        "claim-a-shifted-image-gives-shifted-feature-maps",
        "shifts",
        notes_text="same shift",
        verdict_key="convolution_claim_shift",
        ours="largest difference {convolution_c1_shift_error}",
    ),
    _c(
        "subsampling_shift",
        "Subsampling reduces the sensitivity to shifts (1-pixel shifts: a subsampling layer "
        "moves less than the layer it reads)",
        "1.3.2",
        1.0,
        sign(-1, of="S2/C1 and S4/C3 change ratios minus 1"),
        "04_convolution",
        "claim-subsampling-reduces-the-sensitivity-to-shifts",
        "subsampling",
        verdict_key="convolution_claim_subsampling_shift",
        ours="ratio {convolution_ratio_k1_range}",
    ),
    _c(
        "robust_shift",
        "Convolutional networks are robust to shifts: shifts of up to 2 pixels cost at most "
        "5 points of accuracy",
        "1.3.2",
        0.0,
        within_tol(5.0, of="points of accuracy lost"),
        "04_convolution",
        "what-the-shifts-do-to-the-answers",
        "the answers",
        notes_text="robust",
        verdict_key="convolution_claim_robust_shift",
        ours="{convolution_acc_drop_k1} points at 1 pixel, {convolution_acc_drop_max} at "
        "{convolution_max_shift}",
    ),
    _c(
        "subsampling_blur",
        "A small subsampling coefficient blurs (R² of a linear fit in the block's average "
        "at least 0.99)",
        "1.3.2",
        None,
        interval(0.99, 1.0, of="R² at the small gain"),
        "04_convolution",
        "claim-small-coefficients-blur-large-ones-give-a-noisy-or-or-and",
        "OR and AND",
        verdict_key="convolution_claim_blur",
        ours="R² {convolution_r2_lin_small}",
    ),
    _c(
        "noisy_or_and",
        "A large one gives a noisy OR or a noisy AND, by the bias (the sign agrees with the "
        "gate on 90% of real units or more)",
        "1.3.2",
        None,
        interval(90, 100, of="% sign agreement at the large gain"),
        "04_convolution",
        "claim-small-coefficients-blur-large-ones-give-a-noisy-or-or-and",
        "OR and AND",
        verdict_key="convolution_claim_noisy_or_and",
        ours="{convolution_sign_agree}% agree",
    ),
    _c(
        "rf_centres_c5",
        "The receptive-field centres of the last convolutional layer form a central 20x20 "
        "area: read as C5",
        "1.3.2",
        20,
        exact(),
        "05_architecture",
        "receptive-fields-and-the-20x20-claim",
        "receptive fields",
        notes_text="20x20",
        verdict_key="architecture_claim_rf_centres_c5",
        ours="{architecture_c5_units} units",
    ),
    _c(
        "rf_centres_c3",
        "... read as C3, the layer the paper means",
        "1.3.2",
        20,
        exact(),
        "05_architecture",
        "receptive-fields-and-the-20x20-claim",
        "receptive fields",
        notes_text="20x20",
        verdict_key="architecture_claim_rf_centres_c3",
        ours="{architecture_c3_span}",
    ),
    # 1.4.1 Activation function
    _c(
        "sigmoid_output",
        "The output layer uses the sigmoid",
        "1.4.1",
        "sigmoid",
        exact(),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
        verdict_key="architecture_claim_sigmoid_output",
        ours="{architecture_output_kind}",
    ),
    _c(
        "sigmoid_accelerates",
        "The sigmoid is used at the output because it accelerates training",
        "1.4.1",
        None,
        reference(
            FAILS,
            "the paper's output layer has no sigmoid (Euclidean RBF units, Section II-B); what "
            "it says accelerates learning is the input scaling (Section II-B), and symmetric "
            "squashing functions are said to converge faster (Appendix A)",
            "lecun1998gradient",
        ),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
    ),
    _c(
        "tanh_hidden",
        "The other layers use tanh",
        "1.4.1",
        "tanh",
        exact(approx=("scaled tanh",)),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
        verdict_key="architecture_claim_tanh_hidden",
        ours="1.7159 tanh(2a/3)",
    ),
    _c(
        "tanh_identity",
        "$\\tanh(x) = 2S(x) - 1$",
        "1.4.1",
        0.0,
        within_tol(1e-9),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
        notes_text="identity",
        verdict_key="architecture_claim_tanh_identity",
        ours="off by up to {architecture_tanh_err_notes}",
    ),
    _c(
        "relu_unavailable",
        "ReLU was not available when the paper was published",
        "1.4.1",
        "1998",
        reference(
            APPROX,
            "rectifying units are older (Fukushima's neocognitron, 1980); in networks trained "
            "by gradient descent they came into use later, from 2010",
            "fukushima1980neocognitron",
            "nair2010rectified",
        ),
    ),
    # 1.4.2 Final architecture
    _c(
        "size_formula_lenet",
        "Output side $\\lceil (W - K + 2P)/S \\rceil + 1$: for LeNet-5's layers",
        "1.4.2",
        None,
        exact(),
        "05_architecture",
        "the-output-size-formula",
        "output size",
        notes_text="formula (1)",
        verdict_key="architecture_claim_size_formula_lenet",
    ),
    _c(
        "size_formula_general",
        "... as a general formula",
        "1.4.2",
        0,
        exact(),
        "05_architecture",
        "the-output-size-formula",
        "output size",
        notes_text="formula (1)",
        verdict_key="architecture_claim_size_formula_general",
        ours="wrong in {architecture_n_ceil_wrong} cases",
    ),
    _c(
        "param_formulas",
        "Parameters: $f K^2 C$ for a convolution, $C_{in} C_{out}$ for a full layer",
        "1.4.2",
        None,
        exact(),
        "05_architecture",
        "the-parameter-formulas",
        "parameter formulas",
        verdict_key="architecture_claim_param_formulas",
        ours="short by {architecture_formula_missing}",
    ),
    _c(
        "table1",
        "Table 1: the output size and trainable parameters of every layer, 60,000 in all",
        "1.4.2",
        60_000,
        exact(),
        "05_architecture",
        "table-1-recounted",
        "Table 1",
        notes_text="60,000",
        verdict_key="architecture_claim_table1",
        ours="{architecture_total_paper}",
    ),
    _c(
        "table1_input",
        "Table 1's sizes (C1 28x28) follow from the 28x28 digits of section 1.1",
        "1.4.2",
        28,
        exact(),
        "05_architecture",
        "the-output-size-formula",
        "output size",
        notes_text="28x28",
    ),
    _c(
        "s4_max_pooling",
        "The fourth layer is a max pooling, with 32 parameters",
        "1.4.2",
        32,
        exact(),
        "05_architecture",
        "table-1-recounted",
        "Table 1",
        notes_text="max pooling, 32",
        verdict_key="architecture_claim_s4_max_pooling",
        ours="{architecture_s4_kind}, {architecture_s4_params}",
    ),
    _c(
        "c3_table",
        "Table I: C3 maps 0-5 read 3 S2 maps, 6-14 read 4, 15 reads all 6",
        "1.4.2",
        None,
        exact(),
        "05_architecture",
        "the-connections-of-c3",
        "C3",
        notes_text="6 x 3, 9 x 4, 1 x 6",
        verdict_key="architecture_claim_c3_groups",
    ),
    _c(
        "c3_params",
        "C3 has 1,516 trainable parameters",
        "1.4.2",
        1_516,
        exact(),
        "05_architecture",
        "the-connections-of-c3",
        "C3",
        notes_text="1,516",
        verdict_key="architecture_claim_c3_params",
        ours="{architecture_c3_paper_params}",
    ),
    _c(
        "c3_full",
        "A fully connected C3 would have 2,416",
        "1.4.2",
        2_416,
        exact(),
        "05_architecture",
        "the-connections-of-c3",
        "C3",
        notes_text="2,416",
        verdict_key="architecture_claim_c3_full",
        ours="{architecture_c3_full_params}",
    ),
    _c(
        "c3_reduction",
        "The sparse table reduces the connections and parameters",
        "1.4.2",
        None,
        sign(+1, of="connections and parameters saved"),
        "05_architecture",
        "the-connections-of-c3",
        "C3",
        verdict_key="architecture_claim_c3_reduction",
        ours="{architecture_c3_saved}% fewer connections",
    ),
    _c(
        "c3_symmetry",
        "The sparse table breaks the symmetry, so C3's maps learn different features",
        "1.4.2",
        None,
        not_checkable("a design motive: no chapter compares the features of sparse and full C3"),
        "05_architecture",
        "the-connections-of-c3",
        "C3",
    ),
    # 2 Implementation
    _c(
        "differences_listed",
        "The implementation differs from the paper in four ways (full C3, max pooling, ReLU, "
        "softmax output)",
        "2",
        4,
        reference(
            FAILS,
            "the list is incomplete: the input scaling, the trainable subsampling, the loss, "
            "the optimizer, the initialisation and the padding to 32x32 also differ or go "
            "unstated",
            "lecun1998gradient",
        ),
        "09_paper",
        "two-networks",
        "two networks",
        notes_text="4",
    ),
    # 2.1 MNIST training
    _c(
        "sgd_lr1",
        "Vanilla SGD with a learning rate of 1 trains the network (better than always "
        "answering the commonest digit)",
        "2.1",
        1.0,
        sign(+1, of="test accuracy minus the commonest digit's share"),
        "07_optimizers",
        "step-size-and-batch-size",
        "step and batch size",
        notes_text="lr 1",
        verdict_key="optimizers_claim_lr1",
        ours="{optimizers_gap_lr1}%",
    ),
    _table2(0, "vanilla SGD", "table-2-ours-beside-the-notes"),
    _table2(1, "SGD with classic momentum", "table-2-ours-beside-the-notes"),
    _table2(2, "SGD with Nesterov momentum", "table-2-ours-beside-the-notes"),
    _table2(3, "Adam", "table-2-ours-beside-the-notes"),
    _table2(4, "Adam", "table-2-ours-beside-the-notes"),
    _table2(5, "Adam", "table-2-ours-beside-the-notes"),
    # 2.2 Testing
    _c(
        "own_digits",
        "The trained model reads 8 of the author's 10 handwritten digits",
        "2.2",
        8,
        not_checkable("the author's digits are not published"),
        "08_handwriting",
        "eight-out-of-ten",
        "eight out of ten",
        notes_text="8 of 10",
        ours="{handwriting_acc_new}% on other writers",
    ),
    _c(
        "error_3as5",
        "Reading a 3 as a 5 is an understandable, common error (among the 5 commonest)",
        "2.2",
        None,
        interval(1, 5, of="rank among the errors"),
        "08_handwriting",
        "which-digits-are-confused",
        "confusions",
        verdict_key="handwriting_claim_3as5",
        ours="{handwriting_new_3as5}",
    ),
    _c(
        "error_7as3",
        "Reading a 7 as a 3 is an understandable, common error (among the 5 commonest)",
        "2.2",
        None,
        interval(1, 5, of="rank among the errors"),
        "08_handwriting",
        "which-digits-are-confused",
        "confusions",
        verdict_key="handwriting_claim_7as3",
        ours="{handwriting_new_7as3}",
    ),
    _c(
        "paper_errors_3as5",
        "Many of the paper's misclassified digits are 3s read as 5s",
        "2.2",
        None,
        not_checkable(
            "the labels of the paper's figure of misclassified digits are not data here; our "
            "run of the paper's network has its own commonest confusion"
        ),
        "09_paper",
        "the-digits-it-gets-wrong",
        "the digits it gets wrong",
        ours="commonest: {paper_top_pair}",
    ),
    # The paper's own numbers, checked where the book trains the paper's network.
    _c(
        "paper_connections",
        "The paper's connection counts per layer",
        "1.4.2",
        tuple(PAPER["connections"].values()),
        exact(),
        "05_architecture",
        "connections-per-layer",
        "connections",
        notes_text="122,304 ... 10,164",
        source="paper",
        verdict_key="architecture_claim_paper_connections",
    ),
    _c(
        "scaled_tanh_unit",
        "$f(a) = 1.7159 \\tanh(2a/3)$ gives $f(\\pm 1) = \\pm 1$",
        "1.4.1",
        1.0,
        within_tol(1e-9, approx=1e-4),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
        source="paper",
        verdict_key="architecture_claim_scaled_tanh",
        ours="f(1) = {architecture_f1}",
    ),
    _c(
        "scaled_tanh_curvature",
        "$f''$ is largest in absolute value at $a = \\pm 1$",
        "1.4.1",
        1.0,
        within_tol(1e-3, approx=0.05),
        "05_architecture",
        "the-squashing-functions",
        "squashing functions",
        source="paper",
        verdict_key="architecture_claim_scaled_tanh_curvature",
        ours="{architecture_d2_peak}",
    ),
    _c(
        "paper_rates",
        "In the first pass the effective rates run from about 7e-5 to 0.016",
        "2.1",
        PAPER["effective_rates"],
        within_tol(1.25, approx=2.0, scale="factor"),
        "09_paper",
        "the-curvature-estimate",
        "the curvature estimate",
        notes_text="7e-5 to 0.016",
        source="paper",
        verdict_key="paper_claim_rates",
        ours="{paper_rate_lo} to {paper_rate_hi}",
    ),
    _c(
        "paper_test_error",
        "The paper's network, trained its way, reaches 0.95% test error",
        "2.1",
        PAPER["test_error"],
        within_se(2, binomial_n=PAPER["test_digits"]),
        "09_paper",
        "twenty-passes",
        "twenty passes",
        notes_text="0.95%",
        source="paper",
        fmt="{:.2f}",
        verdict_key="paper_claim_095",
        ours="{paper_best_error}%",
    ),
    _c(
        "paper_train_error",
        "... and 0.35% training error after 19 passes",
        "2.1",
        PAPER["train_error_pass19"],
        within_se(2, binomial_n=PAPER["train_digits"]),
        "09_paper",
        "twenty-passes",
        "twenty passes",
        notes_text="0.35%",
        source="paper",
        fmt="{:.2f}",
    ),
)
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
    kind = c.criterion.kind
    if kind in ("reference", "not_checkable"):
        v = decide(c)
        cites = "".join(f" {{cite}}`{k}`" for k in c.criterion.cite)
        return f"**{v.verdict}**: {v.detail}{cites}"
    if c.glued:
        return f"**{_glue_ref(c.chapter, claim_key(c.id, 'verdict'))}**"
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
