"""Chance bands: how high a column's score goes by chance alone at a given sample size,
judged against the reference itself.

A fixed effect-size threshold (Wasserstein 0.1, Jensen-Shannon 0.1) is the right
decision on large samples and a false alarm on small ones: 190 rows drawn from the very
distribution of the reference score a Jensen-Shannon distance of 0.2 on a 25-category
column. So a column drifts only when its score is above its threshold **and** above its
chance band, the `BAND_QUANTILE` quantile of the scores that samples of the same size
drawn from the reference get.

The reference is a `NullModel`: its categories with their shares, or for a numeric
column `ATOMS` quantiles of its values (ties merged, shares summed). A band at size n is
`DRAWS` seeded multinomial draws from those shares, each scored by the test's vectorised
twin in `CHANCE`: it costs the same at 100 rows as at 10 million and reads no row. The
current chunk and the reference are both samples, so the draws are of the effective size
n_eff = n m / (n + m) (m: reference values), which gives the difference of two samples
the variance it has (1/n + 1/m). Bands are cached per column on a half-octave grid of
n_eff and scaled to sizes in between (and beyond `ASYMPTOTIC`) by the test's power law
(distances fall as n^-1/2, PSI as n^-1), so a window of 1,000 chunks of different sizes
costs a handful of simulations per column.

Rows are often not independent: a census file lists the members of a household one after
the other, a log the requests of one session. `Bands.inflation` measures, per column, how
much more the reference's own consecutive chunks vary than independent draws (the ratio
of their mean scores, at least 1: see `overtime.calibrate`), and widens the bands by it.

Tests decided by a p-value (chi-square) already account for the sample size: no band.

With a `BandStore` (`bandstore.py`, under the data folder) the simulations are kept on disk
by `Bands.digest` and read back by the next process: a restarted server draws none again.
"""

from __future__ import annotations

import hashlib
import math
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bandstore import BandStore
from .stattests import SMOOTHING

BAND_QUANTILE = 0.997
DRAWS = 1500
ATOMS = 512
SEED = 20_261_201
# From this effective size on, a band is scaled from this size's (the draws are then
# Gaussian enough that the power law holds; measured within 2% at 4x this size).
ASYMPTOTIC = 2 ** 16
GRID_STEPS_PER_OCTAVE = 2
# What the simulations' results depend on besides a model and the constants above: this
# module's code (the draws and the tests' twins), the smoothing of PSI and numpy's streams.
_CODE = hashlib.blake2b(Path(__file__).read_bytes() + repr((SMOOTHING, np.__version__)).encode(),
                        digest_size=16).hexdigest()


@dataclass(frozen=True)
class NullModel:
    """One column of the reference as a distribution to draw from.

    `probs` are the shares of its categories (with a last, empty bin for categories the
    reference never saw) or of its numeric atoms `values` (sorted, distinct). `m` is the
    number of non-null reference values, `std` the reference's standard deviation
    (numeric), `bins` the PSI bin of each atom (numeric) and `bin_probs` the reference's
    shares per PSI bin.
    """

    key: tuple[str, str]  # (name, role)
    kind: str
    method: str
    m: int
    probs: np.ndarray
    values: np.ndarray | None = None
    std: float | None = None
    bins: np.ndarray | None = None
    bin_probs: np.ndarray | None = None


# -- vectorised twins of the tests: (model, counts [draws x atoms], n [draws x 1]) -> scores --------

def _cdf_gap(model: NullModel, counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.cumsum(model.probs)[None, :] - np.cumsum(counts, axis=1) / n


def _wasserstein(model: NullModel, counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    # in the units of the values: `Bands` divides the quantile and the mean by the std
    # (`Chance.per_std`), which DuckDB sums in parallel and so differs in its last bits
    # from one process to the next; the stored simulations do not depend on it
    gaps = np.diff(model.values)
    w = np.abs(_cdf_gap(model, counts, n))[:, :-1] @ gaps
    return w if model.std else np.where(w > 0, np.inf, 0.0)


def _ks(model: NullModel, counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.abs(_cdf_gap(model, counts, n)).max(axis=1)


def _binned(model: NullModel, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if model.bins is None:
        return model.probs, counts
    out = np.zeros((counts.shape[0], len(model.bin_probs)))
    np.add.at(out.T, model.bins, counts.T)
    return model.bin_probs, out


def _psi(model: NullModel, counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    p, c = _binned(model, counts)
    p = np.where(p == 0, SMOOTHING, p)[None, :]
    q = c / n
    q = np.where(q == 0, SMOOTHING, q)
    return np.sum((q - p) * np.log(q / p), axis=1)


def _jensenshannon(model: NullModel, counts: np.ndarray, n: np.ndarray) -> np.ndarray:
    p = model.probs[None, :]
    q = counts / n
    m = (p + q) / 2

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log2(np.where(a > 0, a, 1) / np.where(m > 0, m, 1)), 0.0)
        return t.sum(axis=1)

    return np.sqrt(np.maximum((kl(np.broadcast_to(p, q.shape)) + kl(q)) / 2, 0.0))


@dataclass(frozen=True)
class Chance:
    """A test's vectorised twin and how its null scores shrink with the sample size."""

    func: Callable[[NullModel, np.ndarray, np.ndarray], np.ndarray]
    power: float  # score ~ n_eff ** -power on large samples
    per_std: bool = False  # the score is func's over the reference's std (when it has one)


CHANCE: dict[str, Chance] = {
    "wasserstein": Chance(_wasserstein, 0.5, per_std=True),
    "ks": Chance(_ks, 0.5),
    "jensenshannon": Chance(_jensenshannon, 0.5),
    "psi": Chance(_psi, 1.0),
}


def effective_size(n: int, m: int) -> float:
    """n m / (n + m): the one-sample size whose draws vary as two samples' difference."""
    return n * m / (n + m) if n > 0 and m > 0 else 0.0


@dataclass
class Bands:
    """Chance bands of every column, computed on demand and cached per grid size."""

    models: dict[tuple[str, str], NullModel]
    quantile: float = BAND_QUANTILE
    draws: int = DRAWS
    # per column, how much more its scores vary over the reference's own consecutive chunks
    # than over independent draws (rows that come in clusters: households, sessions); >= 1
    inflation: dict[tuple[str, str], float] = field(default_factory=dict)
    _cache: dict[tuple[tuple[str, str], int], tuple[float, float]] = field(default_factory=dict, repr=False)
    _bands: dict[tuple[tuple[str, str], int], float] = field(default_factory=dict, repr=False)
    calibrated: bool = False  # `overtime.calibrate` has set `inflation` from the reference's chunks
    # held while calibrating: a page and the alert thread share one Bands (`shared`)
    calibrating: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    store: BandStore | None = None  # simulations kept on disk (`bandstore`), read before drawing
    _read: set[tuple[str, str]] = field(default_factory=set, repr=False)  # columns looked up in `store`
    _unsaved: set[tuple[str, str]] = field(default_factory=set, repr=False)  # columns drawn since `save`

    def __getstate__(self) -> dict:  # pages cache results by pickling them: a lock does not pickle
        return {k: v for k, v in self.__dict__.items() if k != "calibrating"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, calibrating=threading.Lock())

    def applies(self, key: tuple[str, str]) -> bool:
        model = self.models.get(key)
        return model is not None and model.method in CHANCE and model.m > 0

    def band(self, key: tuple[str, str], n: int) -> float | None:
        """The chance band of column `key` for a sample of `n` values; None when its test
        needs none (p-value tests) or the reference has no values."""
        if not self.applies(key) or n <= 0:
            return None
        hit = self._bands.get((key, n))
        if hit is None:  # a thousand daily chunks have a few dozen distinct sizes
            model = self.models[key]
            hit = self._bands[(key, n)] = self._scaled(key, max(effective_size(n, model.m), 1.0), 0)
        return hit * self.inflation.get(key, 1.0)

    def _scaled(self, key: tuple[str, str], n_eff: float, which: int) -> float:
        """The simulated quantile (which=0) or mean (1) at `n_eff`: interpolated in
        log-log between the two grid sizes around it (sparse categories make the curve
        bend at small sizes), by the power law beyond ASYMPTOTIC."""
        power = CHANCE[self.models[key].method].power
        top = self._top(key)
        x = GRID_STEPS_PER_OCTAVE * math.log2(n_eff)
        if x >= top:
            return self._sim(key, top)[which] * (_size(top) / n_eff) ** power
        lo = max(math.floor(x), 0)
        hi = lo + 1
        s_lo, s_hi = _size(lo), _size(hi)
        v_lo, v_hi = self._sim(key, lo)[which], self._sim(key, hi)[which]
        if n_eff <= s_lo or v_lo <= 0 or v_hi <= 0:
            return v_lo
        t = (math.log(n_eff) - math.log(s_lo)) / (math.log(s_hi) - math.log(s_lo))
        return math.exp((1 - t) * math.log(v_lo) + t * math.log(v_hi))

    def _top(self, key: tuple[str, str]) -> int:
        """The grid step from which the power law holds: every bin expects 20 values
        (at least 2^13, at most ASYMPTOTIC)."""
        p = self.models[key].probs
        smallest = float(p[p > 0].min()) if (p > 0).any() else 1.0
        size = min(max(20 / smallest, 2 ** 13), ASYMPTOTIC)
        return math.ceil(GRID_STEPS_PER_OCTAVE * math.log2(size))

    def mean(self, key: tuple[str, str], n_eff: float) -> float | None:
        """The mean score of independent draws of effective size `n_eff` (no inflation)."""
        if not self.applies(key) or n_eff <= 0:
            return None
        return self._scaled(key, max(n_eff, 1.0), 1)

    def _at(self, key: tuple[str, str], step: int) -> float:
        return self._sim(key, step)[0] * self.inflation.get(key, 1.0)

    def _sim(self, key: tuple[str, str], step: int) -> tuple[float, float]:
        """(BAND_QUANTILE quantile, mean) of the scores of `draws` samples at grid `step`."""
        q, mean = self._drawn(key, step)
        unit = self._unit(key)
        return (q / unit, mean / unit) if unit != 1.0 else (q, mean)

    def _unit(self, key: tuple[str, str]) -> float:
        model = self.models[key]
        return float(model.std) if CHANCE[model.method].per_std and model.std else 1.0

    def _drawn(self, key: tuple[str, str], step: int) -> tuple[float, float]:
        """`_sim` before the division by `_unit`: from memory, the store, or drawn."""
        hit = self._cache.get((key, step))
        if hit is not None:
            return hit
        if self.store is not None and key not in self._read:  # once per column: what is on disk
            self._read.add(key)
            for s, v in self.store.read(self.digest(key)).items():
                self._cache.setdefault((key, s), v)
            hit = self._cache.get((key, step))
            if hit is not None:
                return hit
        value = self._cache[(key, step)] = simulate(self.models[key], key, step, self.draws, self.quantile)
        if self.store is not None:
            self._unsaved.add(key)
        return value

    def save(self) -> None:
        """Write the columns drawn since the last save to `store`, one file each (the callers
        save once a comparison or a chunking is done: a file per draw cost 3 ms each)."""
        if self.store is None:
            return
        for key in list(self._unsaved):
            self._unsaved.discard(key)
            self.store.write(self.digest(key), {s: v for (k, s), v in list(self._cache.items()) if k == key})

    def digest(self, key: tuple[str, str]) -> str:
        """What column `key`'s simulations depend on, hashed: its model (the key seeds its
        draws), the draws, the quantile, the seed and `_CODE`; not the std the Wasserstein
        band is divided by (`_unit`)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((_CODE, SEED, self.draws, self.quantile, key)).encode())
        _hash_model(h, self.models[key], with_std=self._unit(key) == 1.0)
        return h.hexdigest()

    def stable_size(self, key: tuple[str, str], threshold: float, limit: int) -> int | None:
        """The smallest sample size (non-null values) whose band is at most `threshold`:
        from there on a shift of the threshold's size stands out of chance. None when no
        size up to `limit` gets there, or the test has no band."""
        if not self.applies(key) or not threshold > 0:
            return None
        model = self.models[key]
        power = CHANCE[model.method].power
        top = self._top(key)
        # guess by the power law from the top of the grid, then walk the grid to the crossing
        at_top = self._at(key, top)
        n_eff = _size(top) * (at_top / threshold) ** (1 / power)
        if n_eff > _size(top):
            step = None
        else:
            step = min(max(round(GRID_STEPS_PER_OCTAVE * math.log2(max(n_eff, 1.0))), 0), top)
            while step < top and self._at(key, step) > threshold:
                step += 1
            while step > 0 and self._at(key, step - 1) <= threshold:
                step -= 1
            lo = _size(step - 1) if step > 0 else 1
            # inside the step, interpolate in log-log like `band`
            v_lo, v_hi = (self._at(key, step - 1), self._at(key, step)) if step > 0 else (threshold, threshold)
            if step > 0 and v_lo > v_hi > 0:
                t = math.log(v_lo / threshold) / math.log(v_lo / v_hi)
                n_eff = math.exp(math.log(lo) + t * (math.log(_size(step)) - math.log(lo)))
            else:
                n_eff = _size(step)
        if n_eff >= model.m:
            return None
        n = math.ceil(n_eff * model.m / (model.m - n_eff))
        return n if n <= limit else None


def simulate(model: NullModel, key: tuple[str, str], step: int, draws: int, quantile: float) -> tuple[float, float]:
    """(quantile, mean) of the scores of `draws` seeded samples of grid `step`'s size drawn
    from `model` (a Wasserstein score not yet divided by the std: `Chance.per_std`)."""
    rng = np.random.default_rng([SEED, zlib.crc32(repr(key).encode()), step])
    # Poisson counts per bin: given their total they are multinomial, and they cost a
    # third of numpy's multinomial; shares are taken over each draw's own total
    counts = rng.poisson(_size(step) * model.probs, size=(draws, len(model.probs)))
    total = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    scores = CHANCE[model.method].func(model, counts, total)
    return float(np.quantile(scores, quantile)), float(np.mean(scores))


# The bands of the references seen in this process, by what they are drawn from: the page,
# the summary and the alert rules compare windows with one reference again and again, and
# its simulations and clustering factors do not depend on the window.
_SHARED: dict[str, Bands] = {}
_SHARED_MAX = 8


def shared(models: dict[tuple[str, str], NullModel], store: BandStore | None = None) -> Bands:
    """The `Bands` of these reference models: the one already built in this process for
    the same models (same columns, tests and reference distributions), else a new one;
    with `store`, its simulations are read from and kept there."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(models):
        _hash_model(h, models[key])
    fp = h.hexdigest()
    hit = _SHARED.get(fp)
    if hit is None:
        while len(_SHARED) >= _SHARED_MAX:
            _SHARED.pop(next(iter(_SHARED)))
        hit = _SHARED[fp] = Bands(models, store=store)
    elif hit.store is None and store is not None:
        hit.store = store
    return hit


def _hash_model(h, m: NullModel, with_std: bool = True) -> None:
    h.update(repr((m.key, m.kind, m.method, m.m, m.std if with_std else "per std")).encode())
    for a in (m.probs, m.values, m.bins, m.bin_probs):
        h.update(b"-" if a is None else repr((a.dtype.str, a.shape)).encode() + np.ascontiguousarray(a).tobytes())


def _size(step: int) -> int:
    """The sample size of grid point `step` (half-octaves from 1)."""
    return max(1, round(2 ** (step / GRID_STEPS_PER_OCTAVE)))


# -- building the models -----------------------------------------------------------------------

def atom_probs() -> list[float]:
    """The quantile levels of a numeric column's atoms (mid-points of ATOMS equal shares)."""
    return [(j + 0.5) / ATOMS for j in range(ATOMS)]


def numeric_model(key: tuple[str, str], method: str, quantiles: list[float] | None, m: int,
                  std: float | None, edges: tuple[float, ...], ref_counts: tuple[int, ...]) -> NullModel | None:
    """A numeric column's model from its reference quantiles at `atom_probs()`."""
    if not quantiles or m <= 0:
        return None
    raw = np.asarray(quantiles, dtype=np.float64)
    values, inverse = np.unique(raw, return_inverse=True)
    probs = np.bincount(inverse, minlength=len(values)).astype(np.float64) / len(raw)
    bins = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right") if edges else \
        np.zeros(len(values), dtype=np.int64)
    total = sum(ref_counts)
    bin_probs = (np.asarray(ref_counts, dtype=np.float64) / total) if total else None
    if bin_probs is None or len(bin_probs) != (len(edges) + 1):
        bin_probs = np.bincount(bins, weights=probs, minlength=len(edges) + 1)
    return NullModel(key, "numeric", method, m, probs, values=values, std=std, bins=bins, bin_probs=bin_probs)


def categorical_model(key: tuple[str, str], method: str, ref_counts: tuple[int, ...]) -> NullModel | None:
    """A categorical column's model from its reference counts (last bin: unseen, empty)."""
    c = np.asarray(ref_counts, dtype=np.float64)
    m = int(c.sum())
    if m <= 0:
        return None
    return NullModel(key, "categorical", method, m, c / m)
