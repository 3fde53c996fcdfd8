"""The one rule book for verdicts: criteria, standard errors, and `decide`.

A verdict is one of four words (`VERDICT_MEANING` says when each applies). A `Criterion` is
one class per kind (`KINDS`): each holds its stated parameters, its sentence, its explanation
for the claims page and its decision; `decide` turns a criterion and our measurement into a
`Verdict`. The claims themselves are data in claims.toml, read by claims.py through the kinds'
constructors; every chapter decides through `claims.decide`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

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


# --- verdicts and the statistics behind them ----------------------------------------------


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


# --- the kinds of criterion: each states its parameters, its sentence and its decision -----


class Criterion:
    """How a claim is decided. One subclass per kind holds the kind's parameters (checked when
    it is made), its sentence for the tables (`text`), its decision (`_decide`) and, in
    `name` and its docstring, its explanation on the claims page."""

    kind: ClassVar[str]  # its name in claims.toml
    name: ClassVar[str]  # its short name on the claims page
    needs_value: ClassVar[bool] = True  # False: decided without our measurement
    of = ""  # what is compared, where the row names it
    cite = ()  # bibtex keys shown beside the verdict

    def text(self) -> str:
        """The criterion in words, as the tables show it."""
        core = self._text()
        return f"{self.of}: {core}" if self.of else core

    def _text(self) -> str:
        raise NotImplementedError

    def decide(self, ours=None, notes=None, *, se=None, ci=None, df=None, fmt=None, cid=None):
        """Decide this criterion from our measurement: see the module's `decide`."""
        fmt = fmt or "{:.4g}"

        def out(verdict, detail="", ours_text=None, **numbers):
            text = _fmt(ours, fmt) if ours_text is None else ours_text
            if "value" not in numbers and _scalar(ours):
                numbers["value"] = float(_values(ours)[0])
            return Verdict(cid, verdict, text, _fmt(notes, fmt), self.text(), detail, **numbers)

        if self.needs_value and ours is None:
            raise ValueError(f"claim {cid or self.kind}: a {self.kind} criterion needs our value")
        return self._decide(out, ours, notes, se=se, ci=ci, df=df, fmt=fmt, cid=cid)


@dataclass(frozen=True)
class WithinSE(Criterion):
    """A published number against our mean over seeds and its 95% t-interval, by the noise
    model above. There is no approximate band: a difference the seeds resolve is one."""

    kind = "within_se"
    name = "inside our seeds' interval"
    k: float = 2.0  # standard errors allowed, only where one is given (`decide(..., se=)`)
    single_run: bool = False  # accepted for old rows, ignored
    binomial_n: int | None = None  # accepted for old rows, ignored

    def _text(self):
        return "inside our seeds' 95% t-interval"

    def _decide(self, out, ours, notes, *, se, fmt, **_):
        a = _values(ours)
        mean = float(a.mean())
        if se is not None:  # a standard error from elsewhere (a fit): k of them
            ref = float(_values(notes).mean())
            if math.isnan(se):
                return out(UNCHECKABLE, "the standard error is unknown", _fmt(mean, fmt))
            d = mean - ref
            ok = abs(d) <= self.k * se if se > 0 else d == 0
            return out(HOLDS if ok else FAILS, f"difference {d:+.3g}, standard error {se:.2g}",
                       _fmt(mean, fmt))  # fmt: skip
        if len(a) < 2:
            return out(UNCHECKABLE, "one seed: no interval", _fmt(mean, fmt))
        if isinstance(notes, Sequence | np.ndarray) and not isinstance(notes, str):
            b = _values(notes)  # two of our means: the interval of their difference
            if len(b) < 2:
                return out(UNCHECKABLE, "one seed: no interval", _fmt(mean, fmt))
            lo, hi = welch_interval(a, b)
            d = mean - float(b.mean())
            detail = f"difference {d:+.3g}, 95% t-interval {lo:+.3g} to {hi:+.3g}"
            return out(HOLDS if lo <= 0 <= hi else FAILS, detail, _fmt(mean, fmt), lo=lo, hi=hi)
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


@dataclass(frozen=True)
class WithinTol(Criterion):
    """For values computed without noise (a formula, a constant, a range of rates): the
    absolute or relative difference, or the ratio, at most the tolerance named in the row; a
    second, wider tolerance, where the row names one, gives 'holds approximately'."""

    kind = "within_tol"
    name = "stated tolerance"
    tol: float
    approx: float | None = None  # the wider tolerance, for 'holds approximately'
    scale: str = "abs"  # or "rel", or "factor": the larger ratio of the two
    of: str = ""

    def __post_init__(self):
        if self.scale not in ("abs", "rel", "factor"):
            raise ValueError(f"scale must be 'abs', 'rel' or 'factor', not {self.scale!r}")
        for x in (self.tol, self.approx):
            if x is not None and not isinstance(x, int | float):
                raise ValueError(f"a tolerance is a number, not {x!r}")

    def _text(self):
        unit = " (relative)" if self.scale == "rel" else ""
        pre = "a factor of " if self.scale == "factor" else ""
        core = f"within {pre}{self.tol:g}{unit}"
        if self.approx is not None:
            core += f"; holds approximately within {pre}{self.approx:g}"
        return core

    def _decide(self, out, ours, notes, **_):
        a, b = _values(ours), _values(notes)
        if self.scale == "abs":
            dev = np.abs(a - b)
        elif self.scale == "rel":
            dev = np.abs(a - b) / np.abs(b)
        else:
            dev = np.maximum(a / b, b / a)
        worst = float(dev.max())
        detail = f"largest deviation {worst:.3g}"
        if worst <= self.tol:
            return out(HOLDS, detail)
        if self.approx is not None and worst <= self.approx:
            return out(APPROX, detail)
        return out(FAILS, detail)


@dataclass(frozen=True)
class Sign(Criterion):
    """The claimed direction of a difference (or of every step of an ordering): each
    difference's 95% t-interval over seeds must lie wholly on the claimed side. One whose
    interval lies wholly on the other side does not hold; one whose interval straddles zero
    cannot be checked here, the seeds being too few to resolve it. Without seeds (no
    standard error, or one known otherwise) the difference must clear k of them."""

    kind = "sign"
    name = "a sign or an ordering"
    direction: int = 1  # the claimed sign of every value (a difference, or each step)
    k: float = 2.0  # standard errors to clear where one is given without seeds (no `df`)
    of: str = ""

    def __post_init__(self):
        object.__setattr__(self, "direction", 1 if self.direction > 0 else -1)

    def _text(self):
        word = "positive" if self.direction > 0 else "negative"
        return f"every difference {word}, its 95% t-interval wholly {word} where seeds give one"

    def _decide(self, out, ours, notes, *, se, df, **_):
        v = self.direction * _values(ours)
        s = np.zeros_like(v) if se is None else np.broadcast_to(_values(se), v.shape)
        if np.isnan(s).any():
            return out(UNCHECKABLE, "one seed: no interval")
        k = self.k
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


@dataclass(frozen=True)
class Exact(Criterion):
    """Counts, sizes, names and tables: ours must equal the claim (floating-point values up
    to a stated rounding). A weaker reading, where stated, gives 'holds approximately'."""

    kind = "exact"
    name = "equal"
    tol: float = 0.0  # float rounding allowed
    approx: tuple = ()  # values accepted as a stated weaker reading
    of: str = ""

    def __post_init__(self):
        object.__setattr__(self, "approx", tuple(self.approx))

    def _text(self):
        core = "equal" if not self.tol else f"equal up to {self.tol:g} (float rounding)"
        if self.approx:
            core += f"; holds approximately for: {', '.join(map(str, self.approx))}"
        return core

    def _decide(self, out, ours, notes, **_):
        if isinstance(ours, str) or isinstance(notes, str):
            if ours == notes:
                return out(HOLDS)
            if ours in self.approx:
                return out(APPROX, f"a weaker reading: {ours}")
            return out(FAILS, f"{ours} is not {notes}")
        if isinstance(ours, bool | np.bool_) and notes is None:
            return out(HOLDS if ours else FAILS)
        a, b = _values(ours), _values(notes)
        if a.shape != b.shape and b.size != 1:
            return out(FAILS, f"{a.size} values against {b.size}")
        return out(HOLDS if bool(np.all(np.abs(a - b) <= (self.tol or 0.0))) else FAILS)


@dataclass(frozen=True)
class Interval(Criterion):
    """The value lies in the claimed range; a fitted value outside it whose 95% interval
    reaches into it holds approximately."""

    kind = "interval"
    name = "a value in a stated range"
    lo: float
    hi: float
    fitted: bool = False  # given with its 95% interval (`ci`), which may reach the range
    of: str = ""

    def __post_init__(self):
        if not self.lo <= self.hi:
            raise ValueError(f"an interval needs lo <= hi, not [{self.lo}, {self.hi}]")

    def _text(self):
        near = "; holds approximately if its 95% interval reaches it" if self.fitted else ""
        return f"in [{self.lo:g}, {self.hi:g}]{near}"

    def _decide(self, out, ours, notes, *, ci, cid, **_):
        x = _values(ours)  # every value must lie in the range
        band = {} if ci is None else {"lo": ci[0], "hi": ci[1]}
        if ((self.lo <= x) & (x <= self.hi)).all():
            return out(HOLDS, **band)
        if self.fitted and (ci is None or len(x) != 1):
            raise ValueError(f"claim {cid}: a fitted value needs its 95% interval (ci)")
        if self.fitted and ci[1] >= self.lo and ci[0] <= self.hi:
            return out(APPROX, f"95% interval {ci[0]:.3g} to {ci[1]:.3g}", **band)
        return out(FAILS, **band)


@dataclass(frozen=True)
class Reference(Criterion):
    """Historical and bibliographic claims are decided by the publications cited beside
    them, not by a computation."""

    kind = "reference"
    name = "a cited fact"
    needs_value = False
    verdict: str
    fact: str
    cite: tuple = ()  # bibtex keys

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}: use one of {VERDICTS}")
        object.__setattr__(self, "cite", tuple(self.cite))

    def _text(self):
        return "a cited fact"

    def _decide(self, out, ours, notes, **_):
        return out(self.verdict, self.fact, ours_text=self.fact)


@dataclass(frozen=True)
class NotCheckable(Criterion):
    """The reason is given with the claim."""

    kind = "not_checkable"
    name = "cannot be checked here"
    needs_value = False
    fact: str  # why the data here cannot decide

    def _text(self):
        return "–"

    def _decide(self, out, ours, notes, **_):
        return out(UNCHECKABLE, self.fact)


# each kind by its name in claims.toml, in the order the claims page explains them
KINDS = {c.kind: c for c in (WithinSE, WithinTol, Sign, Exact, Interval, Reference, NotCheckable)}

# the constructors under the names the chapters and claims.toml use
within_se, within_tol, sign, exact, interval = WithinSE, WithinTol, Sign, Exact, Interval
not_checkable = NotCheckable


def reference(verdict: str, fact: str, *cite: str) -> Reference:
    """A claim decided by a cited fact: `reference(verdict, fact, *bibtex keys)`."""
    return Reference(verdict, fact, cite)


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
    return crit.decide(ours, notes, se=se, ci=ci, df=df, fmt=fmt, cid=cid)
