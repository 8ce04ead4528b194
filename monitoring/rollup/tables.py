"""The rollup tables and the SQL that fills them, shared by the DuckDB and Spark engines.

Every table is a set of mergeable counts: rows of one table add up across parts (one part
per log file), engines and machines. Each engine first projects the logs into a relation
`rows` with the canonical columns below (its own dialect: casts, validity, the request-id
hash); the aggregations over `rows` are the SQL text of this module, run unchanged by both.

`rows` columns:
    file, row            the log file and the row's 0-based position in it (duplicates)
    rid, h               request id as text, and its 60-bit hash (first 15 hex digits of md5)
    ts_us                microseconds since the epoch, UTC
    model_name, model_version, endpoint, latency_ms, is_error, error_type
    prediction, label    as text (class outcomes; NULL when absent)
    f0, f1, ...          features: numeric ones as finite DOUBLE (else NULL), others as text
    fs                   the score as finite DOUBLE (NULL when absent)
    fsx                  the score is there but not a finite number (fs is then NULL)
    fp                   the prediction as DOUBLE when it is a float (regression), else NULL

Tables (keys, then values; `part` is the file's part id, written as a Hive directory):
    traffic/<grain>  t, model_name, model_version, endpoint, is_error, error_type -> n
                     requests by minute, hour and day; t = the bucket index at that grain
                     (parts hold the minutes; hours and days are summed in the segments)
    latency/<grain>  t, model_name, model_version, endpoint, is_error, error_type, bin -> n
                     by 5 and 15 minutes, hour and day; bin = `sketch.bin_sql(latency_ms)`
                     (parts hold the 5 minutes; the coarser grains are summed in the segments)
    numeric          day, model_name, model_version, role, feature, sign, bin
                     -> n, min, max, sum, sum2     (signed log bins of `sketch`, see below)
    categorical      day, model_name, model_version, role, feature, value -> n
    outcomes         day, model_name, model_version, is_error, prediction, label -> n
    scores           day, model_name, model_version, is_error, prediction, label, bin, cbin -> n
                     score bins of 1/1000 (`score_bin`): bin of the score, cbin of 1 - score
                     (a confidence of the other class), prediction NULL unless a class
    ids              h -> n                        (the exact duplicate check, per file)

Numeric bins do not depend on any reference: the drift engine's decile edges and fine bins
come from the reference, which a store built ahead of time cannot know. A value x is kept as
(sign(x), bin of |x|) with the latency sketch's bins, so every bin spans a relative width of
1% (±0.5% around its representative) at any scale, negative values included; the engine
merges them into whatever edges it needs, each edge within ±0.5% of the exact one. Integers
up to about 100 fall one per bin, so low-cardinality integer features keep exact counts.
`role` is 'feature', 'score' or 'prediction' (a float prediction is numeric, a class one is
categorical and also counted against the label in `outcomes`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import sketch

MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
GRAINS: dict[str, int] = {"minute": 60, "5min": 300, "15min": 900, "hour": 3600, "day": 86400}  # name -> seconds
# Counts by minute (gaps, spikes, error types); latency bins from 5 minutes up (the alert
# engine's grid, so its latency rules read the store): by the minute they would be as many
# rows as the logs at a few hundred requests a minute, so minute-bucket percentiles read the
# raw logs of their (short) window instead.
TRAFFIC_GRAINS = ("minute", "hour", "day")
LATENCY_GRAINS = ("5min", "15min", "hour", "day")
SCORE_BINS = 1000
DIMS = ("model_name", "model_version")


@dataclass(frozen=True)
class Table:
    name: str                      # directory under the store
    keys: tuple[str, ...]
    values: tuple[str, ...]
    negate: tuple[str, ...]        # values that a duplicate correction subtracts
    drop_on_correction: tuple[str, ...] = ()   # values a correction cannot subtract (min, max)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.values


TRAFFIC_KEYS = ("t", "model_name", "model_version", "endpoint", "is_error", "error_type")
LATENCY_KEYS = (*TRAFFIC_KEYS, "bin")
TABLES: dict[str, Table] = {
    **{f"traffic/{g}": Table(f"traffic/{g}", TRAFFIC_KEYS, ("n",), ("n",)) for g in TRAFFIC_GRAINS},
    **{f"latency/{g}": Table(f"latency/{g}", LATENCY_KEYS, ("n",), ("n",)) for g in LATENCY_GRAINS},
    "numeric": Table("numeric", ("day", *DIMS, "role", "feature", "sign", "bin"),
                     ("n", "min", "max", "sum", "sum2"), ("n", "sum", "sum2"), ("min", "max")),
    "categorical": Table("categorical", ("day", *DIMS, "role", "feature", "value"), ("n",), ("n",)),
    "outcomes": Table("outcomes", ("day", *DIMS, "is_error", "prediction", "label"), ("n",), ("n",)),
    "scores": Table("scores", ("day", *DIMS, "is_error", "prediction", "label", "bin", "cbin"), ("n",), ("n",)),
    "ids": Table("ids", ("h",), ("n",), ("n",)),
}
# Tables summed from a finer one (name -> (finer table, factor)), not from the logs: only the
# segments readers read hold them (compact.py sums them from the finer table's segment), not
# the parts. Writing them per part and reading them back to compact was 1.4 s of a 14.5 s
# build at 10M rows (3.4 s of COPY at 100M), for counts the segment sums anyway.
DERIVED: dict[str, tuple[str, int]] = {
    "traffic/hour": ("traffic/minute", 60), "traffic/day": ("traffic/minute", 1440),
    "latency/15min": ("latency/5min", 3), "latency/hour": ("latency/5min", 12),
    "latency/day": ("latency/5min", 288),
}


def _div(col: str, us: int) -> str:
    # Floor division in doubles, identical in DuckDB and Spark (exact for epochs in µs
    # since both are IEEE; DuckDB's `//` truncates toward zero and Spark has no `//`).
    return f"CAST(floor({col} / CAST({us} AS DOUBLE)) AS BIGINT)"


def latency_bin(col: str = "latency_ms") -> str:
    """The sketch's bin, as INTEGER in both dialects (`sketch.bin_sql` verbatim inside)."""
    return f"CAST({sketch.bin_sql(col)} AS INTEGER)"


def signed_bin(col: str) -> tuple[str, str]:
    sign = f"CAST(CASE WHEN {col} > 0 THEN 1 WHEN {col} < 0 THEN -1 ELSE 0 END AS INTEGER)"
    return sign, latency_bin(f"abs({col})")


def traffic_minute_sql() -> str:
    return (f"SELECT file, {_div('ts_us', MINUTE_US)} AS t, model_name, model_version, endpoint, "
            "is_error, error_type, count(*) AS n FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7")


def latency_sql() -> str:
    """Latency bins by 5 minutes (per file); 15 minutes, hours and days are sums of it."""
    return (f"SELECT file, {_div('ts_us', GRAINS['5min'] * 1_000_000)} AS t, model_name, model_version, "
            f"endpoint, is_error, error_type, {latency_bin()} AS bin, count(*) AS n "
            "FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7, 8")


PART_TABLES: tuple[str, ...] = tuple(t for t in TABLES if t not in DERIVED)   # written per part


def coarse_t(name: str, factor: int | None = None) -> str:
    """The derived table `name`'s bucket from the `t` of a grain `factor` times finer (its
    DERIVED table by default): floor(floor(x) / k) is floor(x / k) for an integer k, so it
    is the bucket of the request's own time."""
    return _div("t", factor or DERIVED[name][1])


def coarser_sql(name: str, source_table: str, factor: int | None = None) -> str:
    """A derived table (DERIVED) from a summed finer one, `source_table`, `factor` times finer."""
    cols = ", ".join(TABLES[name].keys[1:])
    return (f"SELECT {coarse_t(name, factor)} AS t, {cols}, CAST(sum(n) AS BIGINT) AS n FROM {source_table} "
            "GROUP BY ALL HAVING sum(n) <> 0")


def numeric_sql(cols: list[str], dialect: str = "duckdb") -> str | None:
    """Signed log bins of every numeric column (features, score, float prediction);
    `feats` maps the column name in `rows` (fi) to its role and feature name.

    DuckDB unnests the columns as a list beside their position (an integer key instead of
    UNPIVOT's column name on each of the values: 10-13% less CPU for this pass at 10M rows,
    docs/rollups.md); Spark runs UNPIVOT. Both leave NULLs out and give the same rows."""
    if not cols:
        return None
    sign, bin_ = signed_bin("x")
    if dialect == "duckdb":
        names = ", ".join(f"'{c}'" for c in cols)
        return (
            f"SELECT u.file, u.day, u.model_name, u.model_version, m.role, m.feature, u.sign, u.bin, "
            "u.n, u.lo AS min, u.hi AS max, u.s1 AS sum, u.s2 AS sum2 FROM ("
            "  SELECT file, day, model_name, model_version, i, sign, bin, "
            "   count(*) AS n, min(x) AS lo, max(x) AS hi, sum(x) AS s1, sum(x * x) AS s2 FROM ("
            f"    SELECT file, day, model_name, model_version, i, x, {sign} AS sign, {bin_} AS bin FROM ("
            f"      SELECT file, {_div('ts_us', DAY_US)} AS day, model_name, model_version, "
            f"       unnest([{', '.join(cols)}]) AS x, unnest(range({len(cols)})) AS i FROM rows"
            "    ) WHERE x IS NOT NULL) GROUP BY 1, 2, 3, 4, 5, 6, 7"
            f") u JOIN feats m ON m.fi = [{names}][u.i + 1]")
    return (
        f"SELECT u.file, u.day, u.model_name, u.model_version, m.role, m.feature, u.sign, u.bin, "
        "u.n, u.lo AS min, u.hi AS max, u.s1 AS sum, u.s2 AS sum2 FROM ("
        f"  SELECT file, day, model_name, model_version, fi, {sign} AS sign, {bin_} AS bin, "
        "   count(*) AS n, min(x) AS lo, max(x) AS hi, sum(x) AS s1, sum(x * x) AS s2 FROM ("
        f"    SELECT file, {_div('ts_us', DAY_US)} AS day, model_name, model_version, {', '.join(cols)} FROM rows"
        f"  ) UNPIVOT (x FOR fi IN ({', '.join(cols)})) GROUP BY 1, 2, 3, 4, 5, 6, 7"
        ") u JOIN feats m ON u.fi = m.fi")


def categorical_sql(cols: list[str]) -> str | None:
    if not cols:
        return None
    return (
        "SELECT u.file, u.day, u.model_name, u.model_version, m.role, m.feature, u.value, u.n FROM ("
        "  SELECT file, day, model_name, model_version, fi, value, count(*) AS n FROM ("
        f"    SELECT file, {_div('ts_us', DAY_US)} AS day, model_name, model_version, {', '.join(cols)} FROM rows"
        f"  ) UNPIVOT (value FOR fi IN ({', '.join(cols)})) GROUP BY 1, 2, 3, 4, 5, 6"
        ") u JOIN feats m ON u.fi = m.fi")


def outcomes_sql() -> str:
    return (f"SELECT file, {_div('ts_us', DAY_US)} AS day, model_name, model_version, is_error, prediction, label, "
            "count(*) AS n FROM rows GROUP BY 1, 2, 3, 4, 5, 6, 7")


NOT_FINITE_BIN = -2      # a score that is there but not a finite number


def score_bin(col: str = "fs") -> str:
    """The score's bin of 1/SCORE_BINS for a non-NULL finite `col`: b in 0..999 holds
    [b, b + 1) / 1000, -1 every score below 0, 1000 exactly 1, 1001 every score above 1
    (so a bin's scores, and their confidences 1 - score, are bounded unless -1 or 1001)."""
    return (f"CAST(CASE WHEN {col} > 1 THEN {SCORE_BINS + 1} "
            f"ELSE least(greatest(floor({col} * {SCORE_BINS}), -1), {SCORE_BINS}) END AS INTEGER)")


def score_bins_sql() -> tuple[str, str]:
    """(bin, cbin) of a row: NULL without a score, NOT_FINITE_BIN (cbin NULL) for a score
    that is not a finite number, else `score_bin` of the score and of 1 - score."""
    return (f"CASE WHEN fs IS NOT NULL THEN {score_bin()} WHEN fsx THEN {NOT_FINITE_BIN} END",
            f"CASE WHEN fs IS NOT NULL THEN {score_bin('(1 - fs)')} END")


def scores_sql(class_prediction: bool = True) -> str:
    sbin, cbin = score_bins_sql()
    pred = "prediction" if class_prediction else "CAST(NULL AS STRING)"
    return (f"SELECT file, day, model_name, model_version, is_error, prediction, label, bin, cbin, count(*) AS n "
            f"FROM (SELECT file, {_div('ts_us', DAY_US)} AS day, model_name, model_version, is_error, "
            f"{pred} AS prediction, label, {sbin} AS bin, {cbin} AS cbin FROM rows) "
            "WHERE bin IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9")


def counts_sql(cat: list[str], class_prediction: bool) -> tuple[str, dict[str, str]]:
    """Every count-only table (traffic by minute, latency by 5 minutes, categorical,
    outcomes, scores) from ONE pass over `rows`: a GROUPING SETS query, one set per table
    (one per categorical column), its result named `counts`. Returns (that query, table name
    -> the SQL that takes the table out of `counts`). Each set's rows are exactly the rows
    of the table's own statement above (`traffic_minute_sql`, `latency_sql`, ...; the Spark
    engine runs those): NULL categorical values are left out as UNPIVOT leaves them out, and
    a NULL score bin is a row without a score (`score_bins_sql`: `greatest` skips NULLs, so
    the bin of a NULL score is NULL by an explicit CASE). One pass reads and filters the batch's
    columns once instead of once per table (measured: 1.15 s of CPU against 1.75 s for the
    five statements, 4M rows)."""
    lbin, day = latency_bin(), _div("ts_us", DAY_US)
    sbin, cbin = score_bins_sql()
    spred = "prediction" if class_prediction else "CAST(NULL AS STRING)"
    inner = (f"SELECT file, model_name, model_version, {_div('ts_us', MINUTE_US)} AS t_minute, "
             f"{_div('ts_us', GRAINS['5min'] * 1_000_000)} AS t_5min, {day} AS day, endpoint, is_error, "
             f"error_type, {lbin} AS lbin, {sbin} AS sbin, {cbin} AS scbin, {spred} AS spred, label, prediction"
             + "".join(f", {c}" for c in cat if c != "prediction") + " FROM rows")
    sets = {"traffic/minute": ("t_minute", "endpoint", "is_error", "error_type"),
            "latency/5min": ("t_5min", "endpoint", "is_error", "error_type", "lbin"),
            "scores": ("day", "is_error", "spred", "label", "sbin", "scbin")}
    if class_prediction:
        sets["outcomes"] = ("day", "is_error", "prediction", "label")
    for c in cat:
        sets[f"categorical:{c}"] = ("day", c)

    dims = ("file", "model_name", "model_version")
    # GROUPING_ID over every grouping column in order of first appearance (Spark requires
    # exactly that list); one bit per column, the first the most significant, 1 = not grouped.
    flags = list(dict.fromkeys([*dims, *(k for keys in sets.values() for k in keys)]))

    def gid(keys: tuple[str, ...]) -> int:
        return sum(1 << (len(flags) - 1 - i) for i, f in enumerate(flags) if f not in (*dims, *keys))

    grouping = ", ".join(f"({', '.join((*dims, *k))})" for k in sets.values())
    query = (f"SELECT {', '.join(flags)}, count(*) AS n, "
             f"GROUPING_ID({', '.join(flags)}) AS gid FROM ({inner}) GROUP BY GROUPING SETS ({grouping})")
    out = {
        "traffic/minute": f"SELECT file, t_minute AS t, model_name, model_version, endpoint, is_error, error_type, n "
                          f"FROM counts WHERE gid = {gid(sets['traffic/minute'])}",
        "latency/5min": f"SELECT file, t_5min AS t, model_name, model_version, endpoint, is_error, error_type, "
                         f"lbin AS bin, n FROM counts WHERE gid = {gid(sets['latency/5min'])}",
        "scores": f"SELECT file, day, model_name, model_version, is_error, spred AS prediction, label, "
                  f"sbin AS bin, scbin AS cbin, n FROM counts WHERE gid = {gid(sets['scores'])} AND sbin IS NOT NULL",
    }
    if class_prediction:
        out["outcomes"] = (f"SELECT file, day, model_name, model_version, is_error, prediction, label, n FROM counts "
                           f"WHERE gid = {gid(sets['outcomes'])}")
    if cat:
        out["categorical"] = " UNION ALL ".join(
            f"SELECT c.file, c.day, c.model_name, c.model_version, m.role, m.feature, c.{col} AS value, c.n "
            f"FROM counts c JOIN feats m ON m.fi = '{col}' WHERE c.gid = {gid(sets[f'categorical:{col}'])} "
            f"AND c.{col} IS NOT NULL" for col in cat)
    return query, out


def ids_sql() -> str:
    # One row per request, not grouped: ids are nearly all distinct, and a hash table of
    # them was the slowest step of a build (the candidate check sums n across files).
    return "SELECT file, h, CAST(1 AS BIGINT) AS n FROM rows"


def dropped_sql() -> str:
    """Of the copies of each duplicated request id in `members` (rows of `rows`), every copy
    but the first by (time, file, row): the rule of `health.find_duplicates`."""
    return ("SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY rid ORDER BY ts_us, file, row) AS k "
            "FROM members) WHERE k > 1")


@dataclass(frozen=True)
class Layout:
    """Which `rows` columns hold which feature: numeric and categorical columns and the
    `feats` rows (fi, role, feature) that name them."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    feats: tuple[tuple[str, str, str], ...]
    class_prediction: bool
    ids: bool = True          # logs without request ids have no duplicates to check

    def passes(self, dialect: str = "duckdb") -> tuple[str, dict[str, str], dict[str, str]]:
        """The plan of one batch: (the counts query, the count tables taken out of `counts`,
        the other statements over `rows`: numeric and ids), in `dialect` (duckdb or spark)."""
        counts, taken = counts_sql(list(self.categorical), self.class_prediction)
        rest = {k: v for k, v in self.statements(dialect).items() if k in ("numeric", "ids")}
        return counts, taken, rest

    def statements(self, dialect: str = "duckdb") -> dict[str, str]:
        """Table name -> SQL over `rows` (and `feats`), the tables of a part; the DERIVED
        tables are summed in the segments (`coarser_sql`)."""
        out = {"traffic/minute": traffic_minute_sql(), "latency/5min": latency_sql()}
        num, cat = numeric_sql(list(self.numeric), dialect), categorical_sql(list(self.categorical))
        if num:
            out["numeric"] = num
        if cat:
            out["categorical"] = cat
        if self.class_prediction:
            out["outcomes"] = outcomes_sql()
        out["scores"] = scores_sql(self.class_prediction)
        if self.ids:
            out["ids"] = ids_sql()
        return out


def layout(features: list[tuple[str, str]], *, has_score: bool, float_prediction: bool,
           has_prediction: bool, has_ids: bool = True) -> Layout:
    """`features`: (name, kind) in the source's order -> the column layout of `rows`."""
    numeric, categorical, feats = [], [], []
    for i, (name, kind) in enumerate(features):
        (numeric if kind == "numeric" else categorical).append(f"f{i}")
        feats.append((f"f{i}", "feature", name))
    if has_score:
        numeric.append("fs")
        feats.append(("fs", "score", "score"))
    if has_prediction and float_prediction:
        numeric.append("fp")
        feats.append(("fp", "prediction", "prediction"))
    elif has_prediction:
        categorical.append("prediction")
        feats.append(("prediction", "prediction", "prediction"))
    return Layout(tuple(numeric), tuple(categorical), tuple(feats),
                  class_prediction=has_prediction and not float_prediction, ids=has_ids)
