"""Drift tests: each one pure function over two small summaries, plus a descriptor.

A test compares the `Summary` of the reference with the `Summary` of the current window
and returns a `Score`. Summaries are computed in DuckDB by `engine` (binned counts, moments
and the sorted merge of the two empirical CDFs), so a test never sees raw rows. To add a
test, write the function and decorate it with `@stattest(...)`: the engine, the page and
the CLI find it in `REGISTRY` by name, and `monitoring.toml` can select it per feature.

    @stattest("hellinger", title="Hellinger distance", kinds=("categorical",), threshold=0.1)
    def hellinger(ref: Summary, cur: Summary) -> Score:
        p, q = proportions(ref.counts), proportions(cur.counts)
        return Score(float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))))

Decisions are by effect size (`decide_on="score"`): a score at or above the threshold is
drift, when it is also above the chance band at that sample size (`bands`: small samples
score high by chance). p-values are reported beside them; on large samples they flag tiny,
harmless shifts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Merge",
    "REGISTRY",
    "SMOOTHING",
    "Score",
    "StatTest",
    "Summary",
    "chisquare",
    "get",
    "jensenshannon",
    "ks",
    "pooled_std",
    "proportions",
    "psi",
    "stattest",
    "wasserstein",
]

# Share given to an empty bin before taking logarithms (PSI): small enough not to matter
# when bins are filled, and the value evidently and most PSI write-ups use.
SMOOTHING = 1e-4


@dataclass(frozen=True)
class Merge:
    """Statistics of the two empirical CDFs F_ref and F_cur together.

    They need both samples at once, so the engine computes them in one DuckDB pass for the
    pair and hands the same `Merge` to both summaries; tests stay two-argument functions.
    Exact (from the sorted merge) when the errors are None; above `[drift] exact_max_rows`
    they come from fine bins, and the errors bound the distance to the exact values:
    |wasserstein - exact| <= wasserstein_error and exact - ks in [0, ks_error].
    """

    wasserstein: float  # integral of |F_ref - F_cur| dx, in the feature's units
    ks: float  # sup |F_ref - F_cur|
    wasserstein_error: float | None = None
    ks_error: float | None = None

    @property
    def exact(self) -> bool:
        return self.wasserstein_error is None and self.ks_error is None


@dataclass(frozen=True)
class Summary:
    """One side of a comparison for one feature, small and already aggregated.

    `counts` are per bin: for a numeric feature the bins between the reference deciles
    (outer bins open); for a categorical one the reference's categories in order, then one
    bin for every category the reference never saw. Nulls are counted apart in `nulls` and
    are not in `counts` (their share is a data-quality figure, not a distribution).
    """

    kind: str  # "numeric" | "categorical"
    n: int  # non-null values
    nulls: int
    counts: tuple[int, ...]
    mean: float | None = None
    std: float | None = None  # population standard deviation (ddof=0)
    min: float | None = None
    max: float | None = None
    merge: Merge | None = None


@dataclass(frozen=True)
class Score:
    value: float
    p_value: float | None = None
    error: float | None = None  # bound on |value - exact value|; None: the value is exact


@dataclass(frozen=True)
class StatTest:
    """A registered drift test: its function and what the product needs to know about it."""

    name: str
    title: str
    kinds: tuple[str, ...]
    threshold: float  # default drift threshold
    func: Callable[[Summary, Summary], Score] = field(repr=False)
    warn: float | None = None  # a lower "watch" level, where one is customary (PSI 0.1)
    has_p_value: bool = False
    decide_on: str = "score"  # "score": drift when score >= threshold; "p_value": when p < threshold
    needs_merge: bool = False  # needs the sorted CDF merge (numeric only)
    help: str = ""

    def __call__(self, ref: Summary, cur: Summary) -> Score:
        return self.func(ref, cur)

    def drifted(self, score: Score, threshold: float, band: float | None = None) -> bool:
        """The one judgement of drift: past the threshold (score at or above it; p-value
        below it) and, when a chance band is given, above what chance gives at that size."""
        if self.decide_on == "p_value":
            return score.p_value is not None and score.p_value < threshold
        return score.value >= threshold and (band is None or score.value > band)

    def status(self, score: Score, threshold: float, band: float | None = None) -> str:
        """"drift", "warn" (past the watch level, and out of chance) or "ok"."""
        if self.drifted(score, threshold, band):
            return "drift"
        if (self.warn is not None and self.decide_on == "score" and score.value >= min(self.warn, threshold)
                and (band is None or score.value > band)):
            return "warn"
        return "ok"


REGISTRY: dict[str, StatTest] = {}


def stattest(name: str, *, title: str, kinds: tuple[str, ...], threshold: float,
             warn: float | None = None, has_p_value: bool = False, decide_on: str = "score",
             needs_merge: bool = False, help: str = ""):
    """Register the decorated `(reference, current) -> Score` function under `name`."""
    if decide_on not in ("score", "p_value"):
        raise ValueError(f"decide_on must be 'score' or 'p_value', got {decide_on!r}")

    def register(func: Callable[[Summary, Summary], Score]):
        if name in REGISTRY:
            raise ValueError(f"drift test {name!r} is registered twice")
        REGISTRY[name] = StatTest(name=name, title=title, kinds=tuple(kinds), threshold=threshold,
                                  func=func, warn=warn, has_p_value=has_p_value,
                                  decide_on=decide_on, needs_merge=needs_merge, help=help)
        return func

    return register


def get(name: str) -> StatTest:
    """The registered test called `name`; KeyError names the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown drift test {name!r} (known: {', '.join(sorted(REGISTRY))})") from None


# -- helpers -----------------------------------------------------------------------------------

def proportions(counts, smoothing: float = 0.0) -> np.ndarray:
    """Counts -> shares; with `smoothing`, empty bins get that share (no renormalisation)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    p = c / total if total > 0 else np.zeros_like(c)
    if smoothing:
        p = np.where(p == 0, smoothing, p)
    return p


def pooled_std(a: Summary, b: Summary) -> float:
    """Population standard deviation of both samples together, from their moments."""
    n = a.n + b.n
    if n == 0:
        return 0.0
    mean = (a.n * (a.mean or 0.0) + b.n * (b.mean or 0.0)) / n
    var = sum(s.n * ((s.std or 0.0) ** 2 + ((s.mean or 0.0) - mean) ** 2) for s in (a, b)) / n
    return math.sqrt(max(var, 0.0))


# -- the tests ---------------------------------------------------------------------------------

@stattest("wasserstein", title="Wasserstein distance / reference std", kinds=("numeric",),
          threshold=0.1, needs_merge=True,
          help="How far values moved, in reference standard deviations (earth mover's distance "
               "between the two empirical distributions; exact up to drift.exact_max_rows values "
               "per side, within a stated bound above). 0.1 = a tenth of a std.")
def wasserstein(ref: Summary, cur: Summary) -> Score:
    merge = ref.merge or cur.merge
    w, err = merge.wasserstein, merge.wasserstein_error
    if w <= 0 and not err:
        return Score(0.0, error=err)
    # A constant reference has no spread to measure against: use the spread of both
    # windows together, which is positive whenever the distance is.
    scale = ref.std if ref.std else pooled_std(ref, cur)
    if scale <= 0:
        return Score(math.inf if w > 0 else 0.0, error=err)
    return Score(max(w, 0.0) / scale, error=None if err is None else err / scale)


@stattest("ks", title="Kolmogorov-Smirnov statistic", kinds=("numeric",), threshold=0.1,
          has_p_value=True, needs_merge=True,
          help="Largest gap between the two cumulative distributions (0-1); p-value from "
               "Smirnov's asymptotic distribution, as scipy's ks_2samp(method='asymp').")
def ks(ref: Summary, cur: Summary) -> Score:
    from scipy.stats import kstwo

    merge = ref.merge or cur.merge
    d, err = float(merge.ks), merge.ks_error
    m, n = sorted((float(ref.n), float(cur.n)), reverse=True)
    en = np.round(m * n / (m + n))
    if en < 1:  # one value on each side: no distribution to speak of
        return Score(d, None, error=err)
    return Score(d, float(np.clip(kstwo.sf(d, en), 0.0, 1.0)), error=err)


@stattest("psi", title="Population stability index", kinds=("numeric", "categorical"),
          threshold=0.25, warn=0.1,
          help="Sum of (cur - ref) * ln(cur / ref) over the bins (reference deciles for numbers, "
               f"categories otherwise), empty bins smoothed to {SMOOTHING}. "
               "Below 0.1 stable, 0.1-0.25 watch, 0.25 and above drift.")
def psi(ref: Summary, cur: Summary) -> Score:
    p = proportions(ref.counts, SMOOTHING)
    q = proportions(cur.counts, SMOOTHING)
    return Score(float(np.sum((q - p) * np.log(q / p))))


@stattest("jensenshannon", title="Jensen-Shannon distance (base 2)", kinds=("categorical",),
          threshold=0.1,
          help="Square root of the Jensen-Shannon divergence in bits, 0 (same shares) to 1 "
               "(no category in common); categories unseen in the reference share one bin.")
def jensenshannon(ref: Summary, cur: Summary) -> Score:
    p = proportions(ref.counts)
    q = proportions(cur.counts)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return Score(math.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


@stattest("chisquare", title="Chi-square test of homogeneity", kinds=("categorical",),
          threshold=0.05, has_p_value=True, decide_on="p_value",
          help="Pearson's chi-square on the 2 x k table of category counts; drift when the "
               "p-value is below the threshold. Flags tiny shifts on large samples: a "
               "secondary figure, not the default decision.")
def chisquare(ref: Summary, cur: Summary) -> Score:
    from scipy.stats import chi2

    obs = np.array([ref.counts, cur.counts], dtype=np.float64)
    obs = obs[:, obs.sum(axis=0) > 0]
    if obs.shape[1] < 2 or (obs.sum(axis=1) == 0).any():
        return Score(0.0, 1.0)
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    stat = float(np.sum((obs - expected) ** 2 / expected))
    return Score(stat, float(chi2.sf(stat, obs.shape[1] - 1)))
