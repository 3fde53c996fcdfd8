"""The one rule book for verdicts: criteria, standard errors, and `decide`.

A verdict is one of four words (`VERDICT_MEANING` says when each applies). A `Criterion` is
a kind (`KINDS` explains each once, on the claims page) with its stated parameters; `decide`
turns a criterion and our measurement into a `Verdict`. The claims themselves are data in
claims.toml, read by claims.py; every chapter decides through `claims.decide`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
        "error is unknown (one seed) or so wide that the claimed value could as well be zero "
        "or double, or no chapter measures it; the reason is given."
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
        "is unknown and the claim cannot be checked, and so it cannot when k standard errors "
        "exceed the claimed value itself (a small error rate against scattered seeds): such "
        "data would let the claim stand whether the true value were zero or double it. There "
        "is no approximate band: a difference the data resolve is a difference.",
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


def decide(
    crit, ours=None, notes=None, *, se=None, ci=None, fmt: str | None = None, cid=None
) -> Verdict:
    """Decide a criterion from our measurement (`claims.decide` calls this for a claim id).

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
    cid : the claim's id, carried into the verdict.

    Used by every chapter that decides a claim, and by the claims page for the claims decided
    by a citation.
    """
    if not isinstance(crit, Criterion):
        raise TypeError(f"decide needs a Criterion, not {type(crit).__name__}")
    fmt = fmt or "{:.4g}"

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
        if ok and ref and crit.k * se > abs(ref):
            detail += (
                f": {crit.k:g} standard errors ({crit.k * se:.2g}) exceed the claimed value "
                "itself, too wide to tell it from zero or from double"
            )
            return out(UNCHECKABLE, detail, _fmt(mean, fmt))
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
