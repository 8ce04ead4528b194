"""The columns of one hour of requests: ids, versions, errors, latency, predictions, labels
and features, as numpy arrays (codes for categories), incidents applied."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .incidents import _window
from .profile import (
    _US_PER_DAY,
    _US_PER_HOUR,
    _US_PER_MINUTE,
    CATEGORICAL_FEATURES,
    CLASS_SHARES,
    CLASSES,
    ENDPOINT_SPEED,
    ENDPOINTS,
    ERROR_RATE,
    ERROR_TYPES,
    FAST_ERROR_MS,
    FEATURE_DECIMALS,
    LABEL_AGREEMENT,
    LABELED_SHARE,
    LATENCY_MEDIAN_MS,
    LATENCY_SIGMA,
    NUMERIC_FEATURES,
    SCORE_BETA,
    SLOW_MEDIAN_MS,
    SLOW_SHARE,
    SLOW_SIGMA,
    TIMEOUT_MS,
    VERSION_SPEED,
    VERSIONS,
    _cumulative,
    _pick,
)
from .traffic import _Plan


def _hour_columns(
    plan: _Plan, day: int, hour: int, minute_counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Every column of one hour's requests, as numpy arrays (codes for categories)."""
    rng = plan.rng(day, 1 + hour)
    hour_start = plan.start_us + day * _US_PER_DAY + hour * _US_PER_HOUR
    minute = np.repeat(np.arange(60, dtype=np.int64), minute_counts)
    t = np.sort(hour_start + minute * _US_PER_MINUTE + rng.integers(0, _US_PER_MINUTE, minute.size))
    for inc in plan.of_kind("gap"):
        t = t[~_window(t, inc)]
    n = t.size

    # A bijective mix of (day, hour, position) is unique by construction and looks random.
    keys = (
        (np.uint64(day) << np.uint64(40))
        | (np.uint64(hour) << np.uint64(35))
        | np.arange(n, dtype=np.uint64)
    )
    cols: dict[str, np.ndarray] = {
        "request_id": _mix64(keys + _mix64(np.array([plan.seed], dtype=np.uint64)))
    }
    cols["timestamp"] = t

    phase = np.searchsorted(plan.rollout_us, t, side="right") - 1
    version = _pick(rng.random(n), plan.version_cum[phase])
    endpoint = _pick(rng.random(n), _cumulative(ENDPOINTS, tuple(ENDPOINTS)))
    cols["model_version"], cols["endpoint"] = version, endpoint

    # Errors: the base rate, or an incident's rate and error mix inside its window.
    error_p = np.full(n, ERROR_RATE)
    type_cum = np.broadcast_to(_cumulative(ERROR_TYPES, tuple(ERROR_TYPES)), (n, len(ERROR_TYPES)))
    for inc in plan.of_kind("errors"):
        inside = _window(t, inc)
        error_p = np.where(inside, inc.details["error_rate"], error_p)
        burst_cum = _cumulative(inc.details["error_types"], tuple(ERROR_TYPES))
        type_cum = np.where(inside[:, None], burst_cum, type_cum)
    failed = rng.random(n) < error_p
    error_type = _pick(rng.random(n), type_cum)
    cols["failed"], cols["error_type"] = failed, error_type

    cols["latency_ms"] = _latency(rng, plan, t, version, endpoint, failed, error_type)

    # Predictions: the base mix, moved towards an incident's mix inside its window. Labels
    # follow the unshifted prediction, so the true class mix never changes.
    base = _pick(rng.random(n), _cumulative(CLASS_SHARES, CLASSES))
    prediction = base
    for inc in plan.of_kind("prediction_drift"):
        shifted = _shift(rng, base, CLASS_SHARES, inc.details["shares"])
        prediction = np.where(_window(t, inc), shifted, prediction)
    cols["prediction"] = prediction
    cols["score"] = rng.beta(*SCORE_BETA, n)
    other = (base + 1 + rng.integers(0, len(CLASSES) - 1, n)) % len(CLASSES)
    cols["label"] = np.where(rng.random(n) < LABEL_AGREEMENT, base, other).astype(np.int8)
    cols["labeled"] = ~failed & (t < plan.label_cutoff_us) & (rng.random(n) < LABELED_SHARE)

    drifts = {inc.details["feature"]: inc for inc in plan.of_kind("input_drift")}
    for name, sample in NUMERIC_FEATURES.items():
        values = sample(rng, n)
        dtype = values.dtype
        if name in drifts:
            values = np.where(
                _window(t, drifts[name]), values * drifts[name].details["factor"], values
            )
        if name in FEATURE_DECIMALS:
            values = np.round(values, FEATURE_DECIMALS[name])
        cols[name] = np.rint(values).astype(dtype) if dtype.kind == "i" else values
    for name, shares in CATEGORICAL_FEATURES.items():
        u = rng.random(n)
        codes = _pick(u, _cumulative(shares, tuple(shares)))
        if name in drifts:
            drifted = _pick(u, _cumulative(drifts[name].details["shares"], tuple(shares)))
            codes = np.where(_window(t, drifts[name]), drifted, codes)
        cols[name] = codes
    return cols

def _latency(
    rng: np.random.Generator,
    plan: _Plan,
    t: np.ndarray,
    version: np.ndarray,
    endpoint: np.ndarray,
    failed: np.ndarray,
    error_type: np.ndarray,
) -> np.ndarray:
    n = t.size
    slow = rng.random(n) < SLOW_SHARE
    z = rng.standard_normal(n)
    ok_ms = np.where(
        slow,
        SLOW_MEDIAN_MS * np.exp(SLOW_SIGMA * z),
        LATENCY_MEDIAN_MS * np.exp(LATENCY_SIGMA * z),
    )
    ok_ms *= np.array([VERSION_SPEED[v] for v in VERSIONS])[version]
    ok_ms *= np.array([ENDPOINT_SPEED[e] for e in ENDPOINTS])[endpoint]
    for inc in plan.of_kind("latency"):
        hit = _window(t, inc) & (version == VERSIONS.index(inc.details["model_version"]))
        ok_ms = np.where(hit, ok_ms * inc.details["factor"], ok_ms)
    u = rng.random(n)
    timeout = error_type == tuple(ERROR_TYPES).index("timeout")
    error_ms = np.where(
        timeout,
        TIMEOUT_MS[0] + u * (TIMEOUT_MS[1] - TIMEOUT_MS[0]),
        FAST_ERROR_MS[0] + u * (FAST_ERROR_MS[1] - FAST_ERROR_MS[0]),
    )
    return np.round(np.where(failed, error_ms, ok_ms), 3)

def _shift(
    rng: np.random.Generator,
    codes: np.ndarray,
    base: Mapping[str, float],
    target: Mapping[str, float],
) -> np.ndarray:
    """Move the fewest rows between classes so their mix goes from `base` to `target`."""
    b = np.array([base[c] for c in CLASSES])
    b = b / b.sum()
    goal = np.array([target.get(c, 0.0) for c in CLASSES])
    goal = goal / goal.sum()
    leave = np.clip((b - goal) / b, 0.0, None)  # share of each over-represented class that moves
    gain = np.clip(goal - b, 0.0, None)  # where the movers go, in proportion
    if gain.sum() == 0:
        return codes
    moves = rng.random(codes.size) < leave[codes]
    destination = _pick(rng.random(codes.size), np.cumsum(gain / gain.sum()))
    return np.where(moves, destination, codes).astype(np.int8)

def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 that scatters consecutive keys."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
