"""The one rule book for verdicts: criteria, standard errors, and `decide`.

A verdict is one of four words (`VERDICT_MEANING` says when each applies). A `Criterion` is
a kind (claims.KINDS explains each once, on the claims page) with its stated parameters; `decide`
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
    HOLDS: "the criterion stated in the row is met.",
    APPROX: (
        "the criterion is missed but a second, wider tolerance named in the same row is met "
        "(a value computed without noise: a formula, a count, a constant), or the 95% interval "
        "of a fitted value reaches into the claimed range. Never used for a value measured over "
        "seeds, and never for a statement decided by a citation."
    ),
    FAILS: "the criterion is missed, and so is the wider tolerance where the row names one.",
    UNCHECKABLE: (
        "the data here cannot decide, and the row says why: the files lack what the claim is "
        "about, a single seed gives no spread, the interval is so wide that the claimed value "
        "could as well be zero or double, or the range measured cannot show it."
    ),
}

# The one noise model, stated once on the claims page.
NOISE_RULE = (
    "Our value over n seeds is their mean with a 95% t-interval, mean ± t(n−1) × sd / √n, "
    "t from Student's distribution with n − 1 degrees of freedom. Most rows have 2 or 3 seeds; "
    "t is then 12.7 or 4.3, the interval wide and its width itself uncertain, and the row "
    "says how many seeds it rests on. A single published number (the notes' or the paper's, "
    "each from one run) holds when it lies inside our interval; it is never set against a "
    "binomial sampling error or any other noise model. Two of our means are compared by the "
    "t-interval of their difference (Welch's degrees of freedom), and a claimed direction "
    "holds only when that interval lies wholly on the claimed side. One seed gives no "
    "interval: cannot be checked here. Nor can a claim whose interval is wider than the "
    "claimed value itself. Values computed without noise are compared with the tolerance "
    "named in their row."
)

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
            return "inside our seeds' 95% t-interval"
        if self.kind == "within_tol":
            unit = {"abs": "", "rel": " (relative)", "factor": ""}[self.scale]
            core = (
                f"within a factor of {self.tol:g}"
                if self.scale == "factor"
                else f"within {self.tol:g}{unit}"
            )
            if self.approx is not None:
                wide = f"{'a factor of ' if self.scale == 'factor' else ''}{self.approx:g}"
                core += f"; holds approximately within {wide}"
            return core
        if self.kind == "sign":
            word = "positive" if self.direction > 0 else "negative"
            return f"every difference {word}, its 95% t-interval wholly {word} where seeds give one"
        if self.kind == "exact":
            core = "equal" if not self.tol else f"equal up to {self.tol:g} (float rounding)"
            if self.approx:
                core += f"; holds approximately for: {', '.join(map(str, self.approx))}"
            return core
        if self.kind == "interval":
            near = "; holds approximately if its 95% interval reaches it" if self.fitted else ""
            return f"in [{self.lo:g}, {self.hi:g}]{near}"
        if self.kind == "reference":
            return "a cited fact"
        return "–"


def within_se(k: float = 2.0, single_run: bool = False, binomial_n: int | None = None):
    """A published number (or our other mean) against our seeds' 95% t-interval (`NOISE_RULE`).
    `single_run`, `binomial_n`: accepted for old rows, ignored; `k`: only where a standard error
    is given instead of seeds (`decide(..., se=)`). No approximate band."""
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
    value: float | None = None  # our mean, where seeds give an interval (the scorecard)
    lo: float | None = None
    hi: float | None = None
    n: int | None = None  # seeds


def _scalar(x) -> bool:
    if isinstance(x, bool | np.bool_ | str) or x is None:
        return False
    return np.ndim(x) == 0 or np.size(x) == 1


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


def t_interval(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the per-seed values `x` and its t-interval (NaN ends for a single value)."""
    from scipy import stats

    x = _values(x)
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - h, m + h


def welch_interval(a, b, level: float = 0.95) -> tuple[float, float]:
    """The t-interval of mean(a) - mean(b), Welch's degrees of freedom (each of 2+ values)."""
    from scipy import stats

    a, b = _values(a), _values(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    d = float(a.mean() - b.mean())
    if se == 0:
        return d, d
    h = float(stats.t.ppf(0.5 + level / 2, welch_df(a, b)) * se)
    return d - h, d + h


def welch_df(a, b) -> float:
    """Welch's degrees of freedom for the difference of the means of `a` and `b`."""
    a, b = _values(a), _values(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return math.inf
    return (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))


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
    crit, ours=None, notes=None, *, se=None, ci=None, df=None, fmt: str | None = None, cid=None
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
    df : degrees of freedom of each standard error in `se` (sign): the t quantile then
        replaces k, so that each difference's 95% t-interval must clear zero.
    cid : the claim's id, carried into the verdict.

    Used by every chapter that decides a claim, and by the claims page for the claims decided
    by a citation.
    """
    if not isinstance(crit, Criterion):
        raise TypeError(f"decide needs a Criterion, not {type(crit).__name__}")
    fmt = fmt or "{:.4g}"

    def out(verdict, detail="", ours_text=None, **numbers):
        text = _fmt(ours, fmt) if ours_text is None else ours_text
        if "value" not in numbers and _scalar(ours):
            numbers["value"] = float(_values(ours)[0])
        return Verdict(cid, verdict, text, _fmt(notes, fmt), crit.text(), detail, **numbers)

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
        if se is not None:  # a standard error from elsewhere (a fit): k of them
            ref = float(_values(notes).mean())
            if math.isnan(se):
                return out(UNCHECKABLE, "the standard error is unknown", _fmt(mean, fmt))
            d = mean - ref
            ok = abs(d) <= crit.k * se if se > 0 else d == 0
            return out(HOLDS if ok else FAILS, f"difference {d:+.3g}, standard error {se:.2g}",
                       _fmt(mean, fmt))  # fmt: skip
        if len(a) < 2:
            return out(UNCHECKABLE, "one seed: no interval", _fmt(mean, fmt))
        if isinstance(notes, Sequence | np.ndarray) and not isinstance(notes, str):
            b = _values(notes)  # two of our means: the interval of their difference
            if len(b) < 2:
                return out(UNCHECKABLE, "one seed: no interval", _fmt(mean, fmt))
            ref = float(b.mean())
            lo, hi = welch_interval(a, b)
            d = mean - ref
            ok = lo <= 0 <= hi
            detail = f"difference {d:+.3g}, 95% t-interval {lo:+.3g} to {hi:+.3g}"
            return out(HOLDS if ok else FAILS, detail, _fmt(mean, fmt), lo=lo, hi=hi)
        ref = float(notes)
        m, lo, hi = t_interval(a)
        detail = f"95% t-interval {_fmt(lo, fmt)} to {_fmt(hi, fmt)}, {len(a)} seeds"
        if len(a) <= 3:
            detail += " (few: a wide interval)"
        kw = dict(value=m, lo=lo, hi=hi, n=len(a))
        if ref and (hi - lo) / 2 > abs(ref):
            detail += (
                ": wider than the claimed value itself, too wide to tell it from zero or double"
            )
            return out(UNCHECKABLE, detail, _fmt(mean, fmt), **kw)
        ok = lo <= ref <= hi
        side = "" if ok else (" (ours higher)" if ref < lo else " (ours lower)")
        return out(HOLDS if ok else FAILS, detail + side, _fmt(mean, fmt), **kw)

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
            return out(UNCHECKABLE, "one seed: no interval")
        k = crit.k
        if df is not None:  # seeds: the t quantile of each difference's interval
            from scipy import stats

            k = stats.t.ppf(0.975, np.broadcast_to(_values(df), v.shape))
        margin, far = v - k * s, v + k * s
        detail = f"smallest margin {float(margin.min()):.3g}"
        if (margin > 0).all():
            return out(HOLDS, detail)
        if (far < 0).any() or df is None:  # resolved the other way, or no seeds to blame
            return out(FAILS, detail)
        return out(UNCHECKABLE, detail + ": a difference the seeds do not resolve either way")

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
            return out(HOLDS, **({} if ci is None else {"lo": ci[0], "hi": ci[1]}))
        if crit.fitted and (ci is None or len(x) != 1):
            raise ValueError(f"claim {cid}: a fitted value needs its 95% interval (ci)")
        band = {} if ci is None else {"lo": ci[0], "hi": ci[1]}
        if crit.fitted and ci[1] >= crit.lo and ci[0] <= crit.hi:
            return out(APPROX, f"95% interval {ci[0]:.3g} to {ci[1]:.3g}", **band)
        return out(FAILS, **band)

    raise ValueError(f"unknown criterion kind {kind!r}")
