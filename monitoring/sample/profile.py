"""The calm behaviour of the sample service: its model, versions and rollout, traffic shape,
latency, errors, classes, labels and features, the file schema; and the time and sampling
helpers the other parts share. Incidents (incidents.py) are the only departures from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

DEFAULT_START = datetime(2026, 10, 24, tzinfo=UTC)  # a Saturday; 30 days end on Sunday 11-22 24:00

MODEL_NAME = "loan-risk"

# The canary rollout: (offset from start, version shares), each holding until the next.
ROLLOUT: tuple[tuple[timedelta, Mapping[str, float]], ...] = (
    (timedelta(days=0), {"v1": 1.0}),
    (timedelta(days=4), {"v1": 0.9, "v2": 0.1}),
    (timedelta(days=6), {"v1": 0.5, "v2": 0.5}),
    (timedelta(days=8), {"v2": 1.0}),
    (timedelta(days=17), {"v2": 0.9, "v3": 0.1}),
    (timedelta(days=19), {"v2": 0.7, "v3": 0.3}),
)
VERSIONS = ("v1", "v2", "v3")
# Latency multipliers. v3 serves as fast as v2 so that its rollout is not a latency event.
VERSION_SPEED = {"v1": 1.0, "v2": 0.9, "v3": 0.9}
ENDPOINTS = {"/v1/predict": 0.7, "/v2/predict": 0.3}
ENDPOINT_SPEED = {"/v1/predict": 1.0, "/v2/predict": 1.15}

# Latency of successful requests: a lognormal body plus a small slow tail.
LATENCY_MEDIAN_MS = 110.0
LATENCY_SIGMA = 0.45
SLOW_SHARE = 0.02
SLOW_MEDIAN_MS = 900.0
SLOW_SIGMA = 0.5

# Errors. An hour holds only ~35-250 requests at 3,000 a day, so a single error can put
# that hour over a 1% SLO: at 0.1% this happens in ~2% of calm hours (at 0.3%, in ~11%),
# while every calm day stays near 0.1%.
ERROR_RATE = 0.001
ERROR_TYPES = {
    "timeout": 0.25,
    "invalid_input": 0.45,
    "internal_error": 0.2,
    "upstream_unavailable": 0.1,
}
TIMEOUT_MS = (5_000.0, 30_000.0)  # a timed-out request waits this long (uniform)
FAST_ERROR_MS = (20.0, 80.0)  # other errors are rejected quickly (uniform)

CLASSES = ("low", "medium", "high")
CLASS_SHARES = {"low": 0.55, "medium": 0.30, "high": 0.15}
SCORE_BETA = (6.0, 2.0)  # confidence of the predicted class, whatever the class or time
LABELED_SHARE = 0.3  # share of successful requests that eventually get a label
LABEL_DELAY = timedelta(days=2)  # labels exist only for requests older than this at the end
LABEL_AGREEMENT = 0.87  # P(label == prediction) in calm times

# Traffic: intensity relative to the daily peak.
PEAK_HOUR = 15.0
TROUGH_HOUR = 4.0
TROUGH_LEVEL = 0.25
WEEKEND_LEVEL = 0.6

NUMERIC_FEATURES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "age": lambda rng, n: np.clip(np.rint(rng.normal(42.0, 12.0, n)), 18, 90).astype(np.int64),
    "income": lambda rng, n: 52_000.0 * np.exp(rng.normal(0.0, 0.5, n)),
    "credit_score": lambda rng, n: np.clip(np.rint(rng.normal(690.0, 60.0, n)), 300, 850).astype(
        np.int64
    ),
    "loan_amount": lambda rng, n: 15_000.0 * np.exp(rng.normal(0.0, 0.6, n)),
    "debt_to_income": lambda rng, n: rng.beta(3.0, 7.0, n),
    "employment_years": lambda rng, n: rng.gamma(2.0, 3.5, n),
    "num_open_accounts": lambda rng, n: rng.poisson(4.0, n).astype(np.int64),
}
# Decimals kept per float feature, as an application would log them.
FEATURE_DECIMALS = {
    "income": 0,
    "loan_amount": -2,
    "debt_to_income": 3,
    "employment_years": 1,
}
CATEGORICAL_FEATURES: dict[str, Mapping[str, float]] = {
    "region": {"north": 0.22, "south": 0.28, "east": 0.18, "west": 0.20, "central": 0.12},
    "device": {"web": 0.45, "ios": 0.25, "android": 0.30},
    "channel": {"online": 0.60, "branch": 0.25, "partner": 0.15},
}

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("endpoint", pa.string()),
        ("latency_ms", pa.float64()),
        ("status", pa.string()),
        ("error_type", pa.string()),
        ("prediction", pa.string()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("age", pa.int64()),
        ("income", pa.float64()),
        ("credit_score", pa.int64()),
        ("loan_amount", pa.float64()),
        ("debt_to_income", pa.float64()),
        ("employment_years", pa.float64()),
        ("num_open_accounts", pa.int64()),
        ("region", pa.string()),
        ("device", pa.string()),
        ("channel", pa.string()),
    ]
)
# Columns worth a Parquet dictionary; ids, times and continuous values are not.
_DICTIONARY_COLUMNS = [
    "model_name", "model_version", "endpoint", "status", "error_type", "prediction", "label",
    "age", "credit_score", "num_open_accounts", *CATEGORICAL_FEATURES,
]  # fmt: skip

_US_PER_MINUTE = 60_000_000
_US_PER_HOUR = 60 * _US_PER_MINUTE
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float rounding)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _utc_midnight(moment: datetime) -> datetime:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment != moment.replace(hour=0, minute=0, second=0, microsecond=0):
        raise ValueError(f"start must be a UTC midnight, got {moment.isoformat()}")
    return moment

def _cumulative(shares: Mapping[str, float], order: tuple[str, ...]) -> np.ndarray:
    """Cumulative probabilities of `order` (names missing from `shares` get 0)."""
    probs = np.array([shares.get(name, 0.0) for name in order], dtype=np.float64)
    return np.cumsum(probs / probs.sum())


def _pick(u: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Category index for each uniform in `u`, by inverse CDF.

    `cumulative` is (k,) for one distribution or (n, k) for one per row.
    """
    return (u[:, None] >= cumulative[..., :-1]).sum(axis=1, dtype=np.int8)
