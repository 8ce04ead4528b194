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

import contextlib
import hashlib
import math
import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import priority
from . import chance
from .bandstore import BandStore
from .chance import CHANCE, NullModel
from .stattests import SMOOTHING

__all__ = ["CHANCE", "Bands", "NullModel", "atom_probs", "categorical_model", "numeric_model", "shared"]

BAND_QUANTILE = 0.997
DRAWS = 1500
ATOMS = 512
SEED = 20_261_201
# From this effective size on, a band is scaled from this size's (the draws are then
# Gaussian enough that the power law holds; measured within 2% at 4x this size).
ASYMPTOTIC = 2 ** 16
GRID_STEPS_PER_OCTAVE = 2
WORKERS = max(1, min(4, os.cpu_count() or 1))  # threads of `Bands.prepare`
# What the simulations' results depend on besides a model and the constants above: the code
# of the draws (this module) and of the tests' twins (`chance`), PSI's smoothing, numpy's streams.
# Without readable sources (a sourceless install) a key of this process alone: the store misses.
try:
    _CODE = hashlib.blake2b(Path(__file__).read_bytes() + Path(chance.__file__).read_bytes()
                            + repr((SMOOTHING, np.__version__)).encode(), digest_size=16).hexdigest()
except OSError:
    _CODE = os.urandom(16).hex()




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

    @contextlib.contextmanager
    def calibration(self) -> Iterator[None]:
        """Held while calibrating (`overtime.calibrate`): one thread at a time; a background
        job holding it never waits for the pages (`priority.holding`), which may wait for it."""
        with self.calibrating, priority.holding():
            yield

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
        steps = self._steps(key, n_eff)
        if len(steps) == 1:
            return self._sim(key, steps[0])[which] * (_size(steps[0]) / n_eff) ** power
        lo, hi = steps
        s_lo, s_hi = _size(lo), _size(hi)
        v_lo, v_hi = self._sim(key, lo)[which], self._sim(key, hi)[which]
        if n_eff <= s_lo or v_lo <= 0 or v_hi <= 0:
            return v_lo
        t = (math.log(n_eff) - math.log(s_lo)) / (math.log(s_hi) - math.log(s_lo))
        return math.exp((1 - t) * math.log(v_lo) + t * math.log(v_hi))

    def _steps(self, key: tuple[str, str], n_eff: float) -> tuple[int, ...]:
        """The grid steps `_scaled` reads at `n_eff`: the two around it, or the top."""
        top = self._top(key)
        x = GRID_STEPS_PER_OCTAVE * math.log2(n_eff)
        if x >= top:
            return (top,)
        lo = max(math.floor(x), 0)
        return (lo, lo + 1)

    def prepare(self, sizes: Iterable[tuple[tuple[str, str], float]], *, effective: bool = False) -> None:
        """Draw at once, on `WORKERS` threads, the simulations that `band` will read for
        these (key, n) pairs (`mean`, for effective sizes, with `effective`): numpy's
        Poisson draws and the twins' array operations release the interpreter lock, so a
        page's chunks, comparison or calibration draw on every core. Same seeds, same
        values: only the order of the draws changes."""
        todo: dict[tuple[tuple[str, str], int], None] = {}
        for key, n in sizes:
            if not self.applies(key) or not n > 0:
                continue
            n_eff = max(n if effective else effective_size(n, self.models[key].m), 1.0)
            for step in self._steps(key, n_eff):
                if (key, step) not in self._cache:
                    self._load(key)
                    if (key, step) not in self._cache:
                        todo[(key, step)] = None
        if len(todo) < 2:
            return
        draw = priority.carried(lambda ks: simulate(self.models[ks[0]], ks[0], ks[1], self.draws, self.quantile))
        with ThreadPoolExecutor(min(WORKERS, len(todo)), thread_name_prefix="modelwatch-bands") as pool:
            drawn = list(pool.map(draw, todo))
        for ks, value in zip(todo, drawn, strict=True):
            self._cache.setdefault(ks, value)
            if self.store is not None:
                self._unsaved.add(ks[0])

    def prepare_top(self, keys: Iterable[tuple[str, str]]) -> None:
        """`prepare` the top of these columns' grids (where `stable_size` starts)."""
        self.prepare(((key, 2.0 * ASYMPTOTIC) for key in keys), effective=True)  # beyond every top

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
        return float(model.std) if _per_std(model) else 1.0

    def _drawn(self, key: tuple[str, str], step: int) -> tuple[float, float]:
        """`_sim` before the division by `_unit`: from memory, the store, or drawn."""
        hit = self._cache.get((key, step))
        if hit is not None:
            return hit
        self._load(key)
        hit = self._cache.get((key, step))
        if hit is not None:
            return hit
        value = self._cache[(key, step)] = simulate(self.models[key], key, step, self.draws, self.quantile)
        if self.store is not None:
            self._unsaved.add(key)
        return value

    def _load(self, key: tuple[str, str]) -> None:
        """What `store` holds of column `key`, into memory (once per column)."""
        if self.store is not None and key not in self._read:
            self._read.add(key)
            for s, v in self.store.read(self.digest(key)).items():
                self._cache.setdefault((key, s), v)

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
        _hash_model(h, self.models[key])
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
    priority.checkpoint()   # a background job's draws let the pages go first
    rng = np.random.default_rng([SEED, zlib.crc32(repr(key).encode()), step])
    # Poisson counts per bin: given their total they are multinomial, and they cost a
    # third of numpy's multinomial; shares are taken over each draw's own total
    counts = rng.poisson(_size(step) * model.probs, size=(draws, len(model.probs)))
    total = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    scores = CHANCE[model.method].func(model, counts, total)
    return float(np.quantile(scores, quantile)), float(np.mean(scores))


# The bands of the references seen in this process, by what they are drawn from: the page,
# the summary and the alert rules compare windows with one reference again and again, and
# its simulations and clustering factors do not depend on the window. Nor on the last bits
# of a Wasserstein column's std, which DuckDB's parallel sums change from query to query:
# with them in the fingerprint no two comparisons shared their Bands (each drew and
# calibrated again); stds equal to 9 digits share, and a band served with the first std
# seen differs by ~1e-16 relative.
_SHARED: dict[str, Bands] = {}
_SHARED_MAX = 8


def shared(models: dict[tuple[str, str], NullModel], store: BandStore | None = None) -> Bands:
    """The `Bands` of these reference models: the one already built in this process for
    the same models (same columns, tests and reference distributions), else a new one;
    with `store`, its simulations are read from and kept there."""
    h = hashlib.blake2b(digest_size=16)
    for key in sorted(models):
        _hash_model(h, models[key], std_digits=9)
    fp = h.hexdigest()
    hit = _SHARED.get(fp)
    if hit is None:
        while len(_SHARED) >= _SHARED_MAX:
            _SHARED.pop(next(iter(_SHARED)))
        hit = _SHARED[fp] = Bands(models, store=store)
    elif hit.store is None and store is not None:
        hit.store = store
    return hit


def _per_std(m: NullModel) -> bool:
    """Whether the band of `m` is its simulation divided by its std (`Chance.per_std`)."""
    return m.method in CHANCE and CHANCE[m.method].per_std and bool(m.std)


def _hash_model(h, m: NullModel, std_digits: int = 0) -> None:
    """What `m` is, in `h`; a std its bands are only divided by (`_per_std`) to
    `std_digits` significant digits (0: left out)."""
    std = (f"{m.std:.{std_digits}g}" if std_digits else "per std") if _per_std(m) else repr(m.std)
    h.update(repr((m.key, m.kind, m.method, m.m, std)).encode())
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
