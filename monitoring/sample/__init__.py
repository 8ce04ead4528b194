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

Parts: profile.py (the calm behaviour and the schema), incidents.py (what departs from it),
traffic.py (how many requests arrive when), columns.py (one hour's requests), writing.py
(the day files and `generate()`). `monitoring.sample` is the same API under its old name.
"""

from .incidents import Incident, incidents
from .profile import DEFAULT_START, ROLLOUT, SCHEMA
from .writing import GenerateResult, generate

__all__ = [
    "DEFAULT_START",
    "ROLLOUT",
    "SCHEMA",
    "GenerateResult",
    "Incident",
    "generate",
    "incidents",
]
