"""The sample-log generator: layout, schema, determinism, and every incident where it belongs.

One month at 1,500 rows a day is generated once for the module; each incident is then
measured in its window and around it, with numpy as the oracle.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring import sample
from monitoring.sample import DEFAULT_START, SCHEMA, Incident, generate, incidents
from monitoring.sample import writing as sample_writing

DAYS = 30
ROWS_PER_DAY = 1500
END = DEFAULT_START + timedelta(days=DAYS)
HOUR_US = 3_600_000_000


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("logs"), days=DAYS, rows_per_day=ROWS_PER_DAY, seed=7)


@pytest.fixture(scope="module")
def rows(month):
    """The whole month as numpy arrays: `t` in microseconds, strings as object arrays."""
    table = pa.concat_tables(pq.read_table(path) for path in month.files)
    cols = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    cols["t"] = table["timestamp"].cast(pa.int64()).to_numpy()
    cols["ok"] = cols["status"] == "ok"
    return cols


def between(rows, begin: str, end: str) -> np.ndarray:
    return (rows["t"] >= us(utc(begin))) & (rows["t"] < us(utc(end)))


def hourly(rows, mask: np.ndarray, stat) -> np.ndarray:
    """`stat(indices)` for each UTC hour that has rows under `mask`."""
    hours = rows["t"] // HOUR_US
    return np.array([stat(mask & (hours == h)) for h in np.unique(hours[mask])])


# --- incidents() ------------------------------------------------------------------------

EXPECTED = [
    ("income_drift", "input_drift", "2026-11-03 00:00", "2026-11-23 00:00"),
    ("error_burst", "errors", "2026-11-05 14:00", "2026-11-05 15:30"),
    ("traffic_spike", "traffic_spike", "2026-11-08 19:00", "2026-11-08 20:00"),
    ("downtime_gap", "gap", "2026-11-13 02:10", "2026-11-13 03:25"),
    ("device_drift", "input_drift", "2026-11-15 12:00", "2026-11-23 00:00"),
    ("latency_regression", "latency", "2026-11-17 09:00", "2026-11-19 18:00"),
    ("prediction_shift", "prediction_drift", "2026-11-19 00:00", "2026-11-21 00:00"),
]


def test_incidents_of_the_default_month():
    found = [(i.name, i.kind, i.start, i.end) for i in incidents()]
    assert found == [(n, k, utc(s), utc(e)) for n, k, s, e in EXPECTED]
    assert all(i.description.endswith(".") and i.details is not None for i in incidents())


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (10, []),
        (11, [("income_drift", "2026-11-04 00:00")]),
        (13, [("income_drift", "2026-11-06 00:00"), ("error_burst", "2026-11-05 15:30")]),
        (25, [*((n, e) for n, _, _, e in EXPECTED[:4]), ("income_drift", "2026-11-18 00:00")]),
    ],
)
def test_incidents_of_a_short_range_are_clipped(days, expected):
    found = {i.name: i.end for i in incidents(DEFAULT_START, days)}
    want = {name: utc(end) for name, end in expected}
    # Persisting drifts end with the range; the latency regression is clipped at day 25.
    if days == 25:
        want["device_drift"] = want["latency_regression"] = utc("2026-11-18 00:00")
    assert found == want


def test_incidents_move_with_start():
    start = datetime(2025, 1, 1, tzinfo=UTC)
    shift = start - DEFAULT_START
    moved = incidents(start)
    assert [(i.start, i.end) for i in moved] == [
        (i.start + shift, i.end + shift) for i in incidents()
    ]


def test_incident_is_hashable_and_frozen():
    inc = incidents()[0]
    assert isinstance(inc, Incident) and hash(inc) == hash(incidents()[0])
    with pytest.raises(AttributeError):
        inc.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days"),
        ({"rows_per_day": 0}, "rows_per_day"),
        ({"seed": -1}, "seed"),
        ({"start": datetime(2026, 1, 1, 6, tzinfo=UTC)}, "midnight"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, **kwargs)


# --- layout, schema, determinism ---------------------------------------------------------


def test_hive_layout_one_file_per_day(month):
    root = month.out_dir
    expected = [
        root / f"date={DEFAULT_START + timedelta(days=d):%Y-%m-%d}" / "part-0.parquet"
        for d in range(DAYS)
    ]
    assert list(month.files) == expected
    assert sorted(p for p in root.rglob("*") if p.is_file()) == expected  # no leftovers
    assert month.incidents == tuple(incidents())


def test_schema_is_exact(month):
    for path in month.files:
        assert pq.read_schema(path).remove_metadata() == SCHEMA
        meta = pq.ParquetFile(path).metadata
        assert meta.row_group(0).column(0).compression == "ZSTD"


def test_rows_match_the_result_and_rows_per_day(month, rows):
    assert (
        month.rows
        == rows["t"].size
        == sum(pq.ParquetFile(p).metadata.num_rows for p in month.files)
    )
    # The spike adds about a third of a day and the gap removes little.
    assert abs(month.rows / (DAYS * ROWS_PER_DAY) - 1) < 0.03


def test_request_ids_are_unique_hex(rows):
    ids = rows["request_id"]
    assert np.unique(ids).size == ids.size
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids[:1000])


def test_timestamps_sorted_within_each_file_and_inside_its_day(month):
    for day, path in enumerate(month.files):
        t = pq.read_table(path, columns=["timestamp"])["timestamp"].cast(pa.int64()).to_numpy()
        begin = us(DEFAULT_START + timedelta(days=day))
        assert np.all(np.diff(t) >= 0)
        assert begin <= t[0] and t[-1] < begin + 24 * HOUR_US


def test_constant_and_categorical_values(rows):
    assert set(rows["model_name"]) == {"loan-risk"}
    assert set(rows["endpoint"]) == {"/v1/predict", "/v2/predict"}
    assert set(rows["region"]) == {"north", "south", "east", "west", "central"}
    assert set(rows["channel"]) == {"online", "branch", "partner"}
    assert set(rows["device"]) == {"web", "ios", "android"}
    assert 18 <= rows["age"].min() and rows["age"].max() <= 90
    assert 300 <= rows["credit_score"].min() and rows["credit_score"].max() <= 850
    assert np.all((rows["debt_to_income"] >= 0) & (rows["debt_to_income"] <= 1))
    v2 = rows["endpoint"] == "/v2/predict"
    assert v2.mean() == pytest.approx(0.3, abs=0.01)
    assert np.median(rows["income"][rows["t"] < us(utc("2026-11-03"))]) == pytest.approx(
        52_000, rel=0.05
    )


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = generate(tmp_path / "a", days=3, rows_per_day=500, seed=11)
    b = generate(tmp_path / "b", days=3, rows_per_day=500, seed=11)
    c = generate(tmp_path / "c", days=3, rows_per_day=500, seed=12)
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    ta, tc = (pa.concat_tables(pq.read_table(p) for p in r.files) for r in (a, c))
    assert not ta.equals(tc)
    assert not set(ta["request_id"].to_pylist()) & set(tc["request_id"].to_pylist())


def test_chunking_does_not_change_the_data(tmp_path, monkeypatch):
    whole = generate(tmp_path / "whole", days=2, rows_per_day=4000, seed=3)
    monkeypatch.setattr(sample_writing, "ROW_GROUP_ROWS", 300)
    chunked = generate(tmp_path / "chunked", days=2, rows_per_day=4000, seed=3)
    for w, c in zip(whole.files, chunked.files, strict=True):
        meta = pq.ParquetFile(c).metadata
        assert meta.num_row_groups > 5
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 300
        assert pq.read_table(w).equals(pq.read_table(c))


def test_progress_reports_each_day(tmp_path):
    calls = []
    generate(
        tmp_path, days=4, rows_per_day=100, progress=lambda done, total: calls.append((done, total))
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


# --- traffic and rollout -----------------------------------------------------------------


def test_daily_and_weekly_cycles(rows):
    hours = (rows["t"] // HOUR_US) % 24
    weekday = ~np.isin((rows["t"] // (24 * HOUR_US) + 3) % 7, [5, 6])  # 1970-01-01 was a Thursday
    calm = rows["t"] < us(utc("2026-11-08"))
    assert ((hours == 15) & calm).sum() / ((hours == 4) & calm).sum() == pytest.approx(4, rel=0.2)
    per_day = {True: (weekday & calm).sum() / 10, False: (~weekday & calm).sum() / 5}
    assert per_day[False] / per_day[True] == pytest.approx(0.6, abs=0.05)


@pytest.mark.parametrize(
    ("begin", "end", "shares"),
    [
        ("2026-10-24", "2026-10-28", {"v1": 1.0}),
        ("2026-10-28", "2026-10-30", {"v1": 0.9, "v2": 0.1}),
        ("2026-10-30", "2026-11-01", {"v1": 0.5, "v2": 0.5}),
        ("2026-11-01", "2026-11-10", {"v2": 1.0}),
        ("2026-11-10", "2026-11-12", {"v2": 0.9, "v3": 0.1}),
        ("2026-11-12", "2026-11-23", {"v2": 0.7, "v3": 0.3}),
    ],
)
def test_canary_rollout(rows, begin, end, shares):
    window = between(rows, begin, end)
    versions, counts = np.unique(rows["model_version"][window], return_counts=True)
    assert set(versions) == set(shares)
    for version, count in zip(versions, counts, strict=True):
        assert count / window.sum() == pytest.approx(shares[version], abs=0.03)


# --- each incident, in its window and not outside -----------------------------------------


def p95(rows, mask):
    return np.percentile(rows["latency_ms"][mask & rows["ok"]], 95)


def test_latency_regression(rows):
    window = between(rows, "2026-11-17 09:00", "2026-11-19 18:00")
    inside = hourly(rows, window, lambda m: p95(rows, m))
    outside = hourly(rows, ~window, lambda m: p95(rows, m))
    assert inside.min() > 2000 and inside.mean() > 2500
    assert outside.mean() < 400 and np.mean(outside < 2000) > 0.99
    assert p95(rows, window & (rows["model_version"] == "v3")) > 4000
    assert p95(rows, window & (rows["model_version"] == "v2")) < 400
    assert p95(rows, ~window) < 400


def test_latency_by_version_and_endpoint(rows):
    calm = rows["ok"] & (rows["t"] < us(utc("2026-11-17")))
    lat, ver, end = rows["latency_ms"], rows["model_version"], rows["endpoint"]
    median = {v: np.median(lat[calm & (ver == v) & (end == "/v1/predict")]) for v in ("v1", "v2")}
    assert median["v1"] == pytest.approx(110, rel=0.05)
    assert median["v2"] / median["v1"] == pytest.approx(0.9, abs=0.04)
    v2_endpoint = np.median(lat[calm & (end == "/v2/predict")]) / np.median(
        lat[calm & (end == "/v1/predict")]
    )
    assert v2_endpoint == pytest.approx(1.15, abs=0.05)


def test_error_burst(rows):
    window = between(rows, "2026-11-05 14:00", "2026-11-05 15:30")
    assert (~rows["ok"][window]).mean() >= 0.15
    assert set(rows["error_type"][window & ~rows["ok"]]) == {
        "internal_error",
        "upstream_unavailable",
    }
    day = rows["t"] // (24 * HOUR_US)
    burst_day = us(utc("2026-11-05")) // (24 * HOUR_US)
    daily = {d: (~rows["ok"][day == d]).mean() for d in np.unique(day) if d != burst_day}
    assert max(daily.values()) < 0.01
    assert (~rows["ok"][~window]).mean() == pytest.approx(sample.profile.ERROR_RATE, abs=0.001)


def test_error_rows(rows):
    failed = ~rows["ok"]
    assert set(rows["status"]) == {"ok", "error"}
    assert all(e is None for e in rows["error_type"][rows["ok"]])
    assert set(rows["error_type"][failed]) == set(sample.profile.ERROR_TYPES)
    assert all(p is None for p in rows["prediction"][failed])
    assert np.isnan(rows["score"][failed].astype(float)).all()
    timeouts = rows["latency_ms"][rows["error_type"] == "timeout"]
    assert timeouts.min() >= 5000 and timeouts.max() <= 30000
    fast = rows["latency_ms"][failed & (rows["error_type"] != "timeout")]
    assert fast.min() >= 20 and fast.max() <= 80
    # The request arrived, so its features were logged.
    assert not np.isnan(rows["income"][failed]).any() and None not in set(rows["device"][failed])


def test_downtime_gap(rows):
    assert between(rows, "2026-11-13 02:10", "2026-11-13 03:25").sum() == 0
    assert between(rows, "2026-11-13 01:50", "2026-11-13 02:10").sum() > 0
    assert between(rows, "2026-11-13 03:25", "2026-11-13 03:45").sum() > 0


def test_traffic_spike(rows):
    spike = between(rows, "2026-11-08 19:00", "2026-11-08 20:00").sum()
    day_before = between(rows, "2026-11-07 19:00", "2026-11-07 20:00").sum()
    hour_after = between(rows, "2026-11-08 20:00", "2026-11-08 21:00").sum()
    assert spike > 4 * day_before and spike > 4 * hour_after
    assert hour_after < 2 * day_before


def test_income_drift(rows):
    before = rows["income"][rows["t"] < us(utc("2026-11-03"))]
    after = rows["income"][rows["t"] >= us(utc("2026-11-03"))]
    assert after.mean() / before.mean() == pytest.approx(1.35, abs=0.05)
    first, second = (
        rows["income"][between(rows, b, e)]
        for b, e in [("2026-10-24", "2026-10-29"), ("2026-10-29", "2026-11-03")]
    )
    assert second.mean() / first.mean() == pytest.approx(1.0, abs=0.05)


def test_device_drift(rows):
    android = rows["device"] == "android"
    shift = us(utc("2026-11-15 12:00"))
    assert android[rows["t"] < shift].mean() == pytest.approx(0.30, abs=0.02)
    assert android[rows["t"] >= shift].mean() == pytest.approx(0.65, abs=0.03)


def test_other_features_do_not_drift(rows):
    early = rows["t"] < us(utc("2026-11-08"))
    late = rows["t"] >= us(utc("2026-11-15 12:00"))
    for name in (
        "age",
        "credit_score",
        "loan_amount",
        "debt_to_income",
        "employment_years",
        "num_open_accounts",
    ):
        values = rows[name].astype(float)
        assert values[late].mean() / values[early].mean() == pytest.approx(1, abs=0.04), name
    for name in ("region", "channel"):
        for value in set(rows[name]):
            assert (rows[name][late] == value).mean() == pytest.approx(
                (rows[name][early] == value).mean(), abs=0.03
            )


def test_prediction_shift_and_accuracy(rows):
    window = between(rows, "2026-11-19", "2026-11-21")
    ok, pred, label = rows["ok"], rows["prediction"], rows["label"]
    inside = {c: (pred[ok & window] == c).mean() for c in ("low", "medium", "high")}
    outside = {c: (pred[ok & ~window] == c).mean() for c in ("low", "medium", "high")}
    assert inside == pytest.approx({"low": 0.35, "medium": 0.25, "high": 0.40}, abs=0.03)
    assert outside == pytest.approx({"low": 0.55, "medium": 0.30, "high": 0.15}, abs=0.02)
    labeled = np.array([x is not None for x in label])
    accuracy_in = (label == pred)[labeled & window].mean()
    accuracy_out = (label == pred)[labeled & ~window].mean()
    assert accuracy_out == pytest.approx(0.87, abs=0.02)
    assert accuracy_in < 0.75
    # The true class mix does not move: only the model does.
    high_label = {
        m: (label[labeled & w] == "high").mean() for m, w in (("in", window), ("out", ~window))
    }
    assert high_label["in"] == pytest.approx(high_label["out"], abs=0.04)


def test_labels_arrive_late_for_a_share_of_successes(rows):
    labeled = np.array([x is not None for x in rows["label"]])
    cutoff = us(END - timedelta(days=2))
    assert rows["t"][labeled].max() < cutoff
    assert not labeled[~rows["ok"]].any()
    eligible = rows["ok"] & (rows["t"] < cutoff)
    assert labeled[eligible].mean() == pytest.approx(0.30, abs=0.02)


def test_score_is_a_stable_confidence(rows):
    score = rows["score"][rows["ok"]].astype(float)
    assert not np.isnan(score).any()
    assert score.min() >= 0 and score.max() <= 1
    assert score.mean() == pytest.approx(0.75, abs=0.01)  # Beta(6, 2)
    halves = rows["t"][rows["ok"]] < us(utc("2026-11-08"))
    assert score[halves].mean() == pytest.approx(score[~halves].mean(), abs=0.01)


def test_duckdb_reads_the_tree_as_the_app_will(month):
    con = duckdb.connect()
    total, ids, versions = con.execute(
        "SELECT count(*), count(DISTINCT request_id), count(DISTINCT model_version) "
        "FROM read_parquet(?, hive_partitioning = true)",
        [str(month.out_dir / "**" / "*.parquet")],
    ).fetchone()
    assert total == ids == month.rows and versions == 3


def test_naive_start_is_utc():
    assert incidents(datetime(2026, 10, 24)) == incidents()


SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample_logs"


def test_committed_sample_logs_are_what_the_generator_makes(tmp_path):
    fresh = generate(tmp_path, days=30, rows_per_day=3000, seed=7)
    committed = sorted(SAMPLE_LOGS.glob("date=*/*.parquet"))
    assert [p.relative_to(SAMPLE_LOGS) for p in committed] == [
        p.relative_to(tmp_path) for p in fresh.files
    ]
    for old, new in zip(committed, fresh.files, strict=True):
        assert pq.read_table(old).equals(pq.read_table(new)), old
    assert sum(p.stat().st_size for p in SAMPLE_LOGS.rglob("*")) <= 10_000_000
    readme = (SAMPLE_LOGS / "README.md").read_text()
    assert all(f"`{inc.name}`" in readme for inc in fresh.incidents)
