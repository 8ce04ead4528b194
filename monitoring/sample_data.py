"""Deterministic, realistic prediction logs with documented incidents.

`generate()` writes the logs of a loan-risk classifier ("loan-risk") to a Hive-partitioned
Parquet tree, ``out_dir/date=YYYY-MM-DD/part-0.parquet``, one file per UTC day. The data
follow the log contract (shared LOG_SCHEMA.md): every row is one request with its
timestamp, model version, endpoint, latency, status, prediction, score, late label and ten
input features.

Calm behaviour is stationary on purpose, so that nothing looks like an incident except the
incidents listed by `incidents()`: features are iid over time and independent of the time
of day, version and endpoint; the score never drifts; the base error rate (0.1%) and the
latency P95 (~0.25 s) sit well inside the SLOs (1% errors, P95 < 2000 ms). Traffic follows
a daily cycle (peak 15:00 UTC, trough 04:00 UTC at a quarter of the peak) and a weekly one
(weekends at 0.6 of weekdays); versions roll out as a canary (`ROLLOUT`).

Every random draw comes from a numpy Generator seeded by (seed, day, stream), one stream
per hour, so days and hours are independent of each other: the same arguments give
byte-identical files however the work is chunked, and memory stays bounded by a couple of
chunks (each at most `ROW_GROUP_ROWS` rows), whatever the size of the output.

    result = generate("sample_logs", days=30, rows_per_day=3000, seed=7)
    result.rows, len(result.files)  # (90865, 30)
"""

from __future__ import annotations

import copy
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "DEFAULT_START",
    "ROLLOUT",
    "SCHEMA",
    "GenerateResult",
    "Incident",
    "generate",
    "incidents",
]

DEFAULT_START = datetime(2026, 10, 24, tzinfo=UTC)  # a Saturday; 30 days end on Sunday 11-22 24:00

MODEL_NAME = "loan-risk"
ROW_GROUP_ROWS = 1_000_000
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3

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


@dataclass(frozen=True)
class Incident:
    """One injected anomaly: what it is, when (UTC, end exclusive) and its parameters.

    `details` holds what the generator applies, by `kind`:
    latency {"model_version", "factor"}; errors {"error_rate", "error_types"};
    traffic_spike {"factor"}; gap {}; input_drift {"feature", "factor"} for a numeric
    feature or {"feature", "shares"} for a categorical one; prediction_drift {"shares"}.
    """

    name: str
    kind: str
    start: datetime
    end: datetime
    description: str
    details: dict = field(default_factory=dict, hash=False)


# (name, kind, start offset, end offset or None to persist to the end, description, details)
_INCIDENTS: tuple[tuple[str, str, timedelta, timedelta | None, str, dict], ...] = (
    (
        "income_drift",
        "input_drift",
        timedelta(days=10),
        None,
        "Applicant income jumps by 35% and stays there.",
        {"feature": "income", "factor": 1.35},
    ),
    (
        "error_burst",
        "errors",
        timedelta(days=12, hours=14),
        timedelta(days=12, hours=15, minutes=30),
        "A quarter of all requests fail with internal or upstream errors for 90 minutes.",
        {"error_rate": 0.25, "error_types": {"internal_error": 0.7, "upstream_unavailable": 0.3}},
    ),
    (
        "traffic_spike",
        "traffic_spike",
        timedelta(days=15, hours=19),
        timedelta(days=15, hours=20),
        "Traffic jumps to six times its usual level for one hour.",
        {"factor": 6},
    ),
    (
        "downtime_gap",
        "gap",
        timedelta(days=20, hours=2, minutes=10),
        timedelta(days=20, hours=3, minutes=25),
        "The service is down and logs no request for 75 minutes.",
        {},
    ),
    (
        "device_drift",
        "input_drift",
        timedelta(days=22, hours=12),
        None,
        "Android requests grow from 30% to 65% of traffic and stay there.",
        {"feature": "device", "shares": {"web": 0.20, "ios": 0.15, "android": 0.65}},
    ),
    (
        "latency_regression",
        "latency",
        timedelta(days=24, hours=9),
        timedelta(days=26, hours=18),
        "Model v3 answers twenty times slower than usual, pushing the overall P95 past 2 s.",
        {"model_version": "v3", "factor": 20},
    ),
    (
        "prediction_shift",
        "prediction_drift",
        timedelta(days=26),
        timedelta(days=28),
        "The model predicts far more high-risk loans while true risk is unchanged.",
        {"shares": {"low": 0.35, "medium": 0.25, "high": 0.40}},
    ),
)


def incidents(start: datetime = DEFAULT_START, days: int = 30) -> list[Incident]:
    """Incidents that fall inside [start, start + days), in order of start time.

    Each sits at a fixed offset from `start`; its end is clipped to the end of the range,
    and drifts that persist end there. Returns a new list of `Incident`.
    """
    start = _utc_midnight(start)
    end = start + timedelta(days=days)
    found = []
    for name, kind, begin, finish, description, details in _INCIDENTS:
        inc_start = start + begin
        inc_end = end if finish is None else min(start + finish, end)
        if inc_start < end:
            found.append(
                Incident(name, kind, inc_start, inc_end, description, copy.deepcopy(details))
            )
    return found


@dataclass(frozen=True)
class GenerateResult:
    """What `generate()` wrote: row count, Parquet files (one per day), and the incidents."""

    rows: int
    files: tuple[Path, ...]
    out_dir: Path
    incidents: tuple[Incident, ...]


def generate(
    out_dir: str | Path,
    *,
    days: int = 30,
    rows_per_day: int = 3000,
    seed: int = 7,
    start: datetime = DEFAULT_START,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Write `days` days of logs from `start` to ``out_dir/date=YYYY-MM-DD/part-0.parquet``.

    Files are zstd-compressed, sorted by timestamp, in row groups of at most
    `ROW_GROUP_ROWS` rows; a file of the same name is replaced (written aside, then
    renamed), other files are left alone. `rows_per_day` is the expected number of rows of
    the average day of the range without incidents (the spike adds rows, the gap removes
    some); weekdays get more and weekends fewer.
    `start` must be a UTC midnight (naive values are taken as UTC). `progress(done, total)`
    is called after each day. Returns a `GenerateResult`.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if rows_per_day < 1:
        raise ValueError(f"rows_per_day must be at least 1, got {rows_per_day}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    start = _utc_midnight(start)
    out = Path(out_dir)
    plan = _Plan.build(start, days, rows_per_day, seed)
    files: list[Path] = []
    rows = 0
    # Building a chunk (numpy) overlaps with encoding the previous one (Parquet, which
    # releases the GIL) in one writer thread. Waiting for every queued task before queueing
    # the next keeps at most two chunks in memory, and `progress` runs on this thread.
    queue: deque[Future] = deque()

    def drain() -> None:
        nonlocal rows
        while queue:
            done = queue.popleft().result()
            if done is not None:
                files.append(done[0])
                rows += done[1]
                if progress is not None:
                    progress(len(files), days)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sample-data-writer") as writer:
        for day in range(days):
            day_file = _DayFile(out, start + timedelta(days=day))
            for table in _day_tables(plan, day):
                drain()
                queue.append(writer.submit(day_file.write, table))
            queue.append(writer.submit(day_file.close))
        drain()
    return GenerateResult(rows, tuple(files), out, tuple(plan.incidents))


# --- the plan: everything that does not depend on the day -------------------------------

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


def _daily_profile(hours: np.ndarray) -> np.ndarray:
    """Traffic level at an hour of the UTC day, 1 at the peak and TROUGH_LEVEL at the trough."""
    # A raised cosine, stretched to rise over the 11 h from trough to peak and fall over 13 h.
    rise = (PEAK_HOUR - TROUGH_HOUR) % 24
    since = (hours - TROUGH_HOUR) % 24
    phase = np.where(since < rise, 0.5 * since / rise, 0.5 + 0.5 * (since - rise) / (24 - rise))
    return TROUGH_LEVEL + (1 - TROUGH_LEVEL) * (1 - np.cos(2 * np.pi * phase)) / 2


@dataclass(frozen=True)
class _Plan:
    start: datetime
    start_us: int
    seed: int
    label_cutoff_us: int
    per_minute: np.ndarray  # (1440,) expected requests per minute of a weekday, no incident
    rollout_us: np.ndarray  # start of each rollout phase
    version_cum: np.ndarray  # (phases, versions) cumulative shares
    incidents: list[Incident]

    @classmethod
    def build(cls, start: datetime, days: int, rows_per_day: int, seed: int) -> _Plan:
        minute_hours = (np.arange(24 * 60) + 0.5) / 60
        profile = _daily_profile(minute_hours)
        weekly = np.array([_weekly_level(start + timedelta(days=d)) for d in range(days)])
        # Scale so the range holds rows_per_day rows per day on average before incidents.
        per_minute = profile * rows_per_day * days / (profile.sum() * weekly.sum())
        return cls(
            start=start,
            start_us=_us(start),
            seed=seed,
            label_cutoff_us=_us(start + timedelta(days=days) - LABEL_DELAY),
            per_minute=per_minute,
            rollout_us=np.array([_us(start + offset) for offset, _ in ROLLOUT], dtype=np.int64),
            version_cum=np.stack([_cumulative(shares, VERSIONS) for _, shares in ROLLOUT]),
            incidents=incidents(start, days),
        )

    def of_kind(self, kind: str) -> list[Incident]:
        return [inc for inc in self.incidents if inc.kind == kind]

    def rng(self, day: int, stream: int) -> np.random.Generator:
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(day, stream)))
        )


def _weekly_level(day: datetime) -> float:
    return WEEKEND_LEVEL if day.weekday() >= 5 else 1.0


def _window(t_us: np.ndarray, inc: Incident) -> np.ndarray:
    return (t_us >= _us(inc.start)) & (t_us < _us(inc.end))


# --- one day ----------------------------------------------------------------------------


class _DayFile:
    """One day's Parquet file, written under a temporary name and renamed when complete."""

    def __init__(self, out: Path, day_start: datetime) -> None:
        folder = out / f"date={day_start:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "part-0.parquet"
        # Not *.parquet, so readers of the directory never see a half-written file.
        self.partial = folder / "part-0.parquet.partial"
        self.writer = pq.ParquetWriter(
            self.partial,
            SCHEMA,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            use_dictionary=_DICTIONARY_COLUMNS,
        )
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    def close(self) -> tuple[Path, int]:
        self.writer.close()
        os.replace(self.partial, self.path)
        return self.path, self.rows


def _day_tables(plan: _Plan, day: int) -> Iterator[pa.Table]:
    """The day's rows in time order, as tables of at most ROW_GROUP_ROWS rows (or one hour)."""
    counts = _minute_counts(plan, day)
    for hours in _hour_chunks(counts.reshape(24, 60).sum(axis=1)):
        parts = [_hour_columns(plan, day, h, counts[h * 60 : h * 60 + 60]) for h in hours]
        yield _to_table({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})


def _minute_counts(plan: _Plan, day: int) -> np.ndarray:
    """Requests in each of the day's 1440 minutes: Poisson around the traffic intensity."""
    day_start_us = plan.start_us + day * _US_PER_DAY
    lam = plan.per_minute * _weekly_level(plan.start + timedelta(days=day))
    midpoints = (
        day_start_us + np.arange(24 * 60, dtype=np.int64) * _US_PER_MINUTE + _US_PER_MINUTE // 2
    )
    for inc in plan.of_kind("traffic_spike"):
        lam = np.where(_window(midpoints, inc), lam * inc.details["factor"], lam)
    return plan.rng(day, 0).poisson(lam)


def _hour_chunks(hour_counts: np.ndarray) -> list[list[int]]:
    """Consecutive hours grouped so each group holds at most ROW_GROUP_ROWS rows (or one hour)."""
    chunks: list[list[int]] = [[]]
    size = 0
    for hour, count in enumerate(hour_counts):
        if chunks[-1] and size + count > ROW_GROUP_ROWS:
            chunks.append([])
            size = 0
        chunks[-1].append(hour)
        size += int(count)
    return chunks


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


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_ids(ids: np.ndarray) -> pa.Array:
    """16 lower-case hex characters per uint64, built straight into an Arrow string array."""
    n = ids.size
    raw = ids.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, 16), dtype=np.uint8)
    chars[:, 0::2] = _HEX[raw >> 4]
    chars[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _strings(
    values: tuple[str, ...], codes: np.ndarray, null: np.ndarray | None = None
) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(codes, mask=null))


def _to_table(cols: dict[str, np.ndarray]) -> pa.Table:
    failed = cols["failed"]
    n = failed.size
    arrays = {
        "request_id": _hex_ids(cols["request_id"]),
        "timestamp": pa.array(
            cols["timestamp"].view("datetime64[us]"), SCHEMA.field("timestamp").type
        ),
        "model_name": _strings((MODEL_NAME,), np.zeros(n, dtype=np.int8)),
        "model_version": _strings(VERSIONS, cols["model_version"]),
        "endpoint": _strings(tuple(ENDPOINTS), cols["endpoint"]),
        "latency_ms": pa.array(cols["latency_ms"]),
        "status": _strings(("ok", "error"), failed.astype(np.int8)),
        "error_type": _strings(tuple(ERROR_TYPES), cols["error_type"], ~failed),
        "prediction": _strings(CLASSES, cols["prediction"], failed),
        "score": pa.array(np.round(cols["score"], 4), mask=failed),
        "label": _strings(CLASSES, cols["label"], ~cols["labeled"]),
    }
    for name in NUMERIC_FEATURES:
        arrays[name] = pa.array(cols[name])
    for name, shares in CATEGORICAL_FEATURES.items():
        arrays[name] = _strings(tuple(shares), cols[name])
    return pa.Table.from_arrays([arrays[f.name] for f in SCHEMA], schema=SCHEMA)
