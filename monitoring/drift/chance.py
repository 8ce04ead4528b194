"""What chance alone scores: one column of the reference as a distribution to draw from
(`NullModel`), and each test's vectorised twin (`CHANCE`), which scores a whole matrix of
drawn counts at once. `bands` draws and judges with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .stattests import SMOOTHING


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
