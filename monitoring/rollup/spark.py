"""The Apache Spark engine: the same rollup parts as the DuckDB engine, from PySpark 4.

Only the `rows` projection is Spark's own dialect (casts, validity, the request-id hash);
every table is the SQL text of `tables`, run by `spark.sql` over that projection (the same
three passes as DuckDB: `Layout.passes`), and each
(table, part) is written as the same Hive directory the DuckDB engine writes. The schema,
feature list and column mapping come from the `LogSource` (one place decides them), and the
duplicate correction, which reads only the rows of duplicated ids, runs in DuckDB over the
parts Spark wrote (see docs/scale.md for what that means on a cluster).

    spark = session("local[2]")
    roll(source, entries, staging, spark=spark)

Needs `pip install .[spark]` (pyspark>=4) and Java 17 or later.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from ..logs.source import INTEGER_TYPES, NUMERIC_TYPES, LogSource
from . import store as st
from .tables import TABLES

FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")
_SESSION = None


def session(master: str | None = None):
    """A SparkSession in UTC (naive timestamps are UTC, as the log contract says). Inside
    spark-submit the session it configured is returned; else `master` (default local[2])."""
    global _SESSION
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ValueError("the spark engine needs PySpark: pip install '.[spark]' (and Java 17+)") from exc
    if _SESSION is not None:
        return _SESSION
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        _SESSION = active
    else:
        b = (SparkSession.builder.appName("modelwatch-rollup")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false"))
        # Under spark-submit (which sets SPARK_ENV_LOADED) master and partitions come from
        # its flags; locally, a few shuffle partitions suit a few cores.
        if master or not os.environ.get("SPARK_ENV_LOADED"):
            b = (b.master(master or "local[2]")
                 .config("spark.sql.shuffle.partitions", os.environ.get("MODELWATCH_SPARK_PARTITIONS", "4")))
        try:
            _SESSION = b.getOrCreate()
        except Exception as exc:  # Py4J / PySpark start-up errors have many classes
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ValueError(f"could not start Spark (it needs Java 17 or later): {first}") from exc
        _SESSION.sparkContext.setLogLevel("ERROR")
    _SESSION.conf.set("spark.sql.session.timeZone", "UTC")
    return _SESSION


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _col(source: LogSource, canonical: str) -> str | None:
    c = source.columns.get(canonical)
    return _q(c) if c is not None else None


def _text(source: LogSource, canonical: str) -> str:
    c = _col(source, canonical)
    return f"CAST({c} AS STRING)" if c else "CAST(NULL AS STRING)"


def _double(expr: str | None, numeric: bool) -> str:
    if expr is None:
        return "CAST(NULL AS DOUBLE)"
    return f"CAST({expr} AS DOUBLE)" if numeric else f"try_cast({expr} AS DOUBLE)"


def _finite(v: str) -> str:
    return f"CASE WHEN isnan({v}) OR abs({v}) = double('inf') THEN NULL ELSE {v} END"


def _feature_expr(f) -> str:
    """A feature's DuckDB expression (a quoted column, or nested struct_extract calls of
    `columns._leaf_sql`) in Spark SQL: backquoted names joined by dots."""
    return _spark_path(f.expr)


def _spark_path(expr: str) -> str:
    if expr.startswith("struct_extract(") and expr.endswith("')"):
        inner, _, part = expr[len("struct_extract("):-2].rpartition(", '")
        name = part.replace("''", "'")
        return f"{_spark_path(inner)}.{_q(name)}"
    if expr.startswith('"') and expr.endswith('"'):
        return _q(expr[1:-1].replace('""', '"'))
    raise ValueError(f"the spark engine cannot read the feature expression {expr[:80]}")


def rows_sql(source: LogSource, numeric_prediction: bool) -> str:
    """The `rows` projection in Spark SQL over the view `raw` (with __file and __row): each
    column as `LogSource.base_sql` defines it in DuckDB."""
    derived = sorted(source.exprs)
    if derived:
        raise ValueError(f"the spark engine reads columns from the files only; {', '.join(derived)} "
                         "come from directory names here: use --engine duckdb")
    types = source.types
    ts = _col(source, "timestamp")
    ts_t = types.get("timestamp", "")
    if ts is None:
        ts_us = "CAST(NULL AS BIGINT)"
    elif ts_t.startswith(("TIMESTAMP", "DATE")):
        ts_us = f"unix_micros(CAST({ts} AS TIMESTAMP))"
    elif ts_t in NUMERIC_TYPES:
        raise ValueError("the spark engine does not read epoch-number timestamps yet: use --engine duckdb")
    else:
        ts_us = f"unix_micros(try_cast({ts} AS TIMESTAMP))"
    lat = _double(_col(source, "latency_ms"), types.get("latency_ms") in NUMERIC_TYPES)
    status = _col(source, "status")
    if status is None:
        is_error = "false"
    elif types.get("status") in INTEGER_TYPES:
        is_error = f"({status} >= 400)"
    else:
        is_error = (f"(CASE WHEN {status} = 'ok' THEN false WHEN lower(trim(CAST({status} AS STRING))) = 'ok' "
                    f"THEN false ELSE NOT coalesce(try_cast({status} AS INT) < 400, false) END)")
    rid = _text(source, "request_id") if source.has("request_id") else "concat(__file, '#', CAST(__row AS STRING))"
    raw_score = _double(_col(source, "score"), types.get("score") in NUMERIC_TYPES)
    score = _finite(raw_score)
    pred = _col(source, "prediction")
    endpoint = f"coalesce({_text(source, 'endpoint')}, '(none)')" if source.has("endpoint") else "CAST(NULL AS STRING)"
    version = _text(source, "model_version") if source.has("model_version") else "'default'"
    cols = [
        "__file AS file", "__row AS row", f"{rid} AS rid",
        f"CAST(conv(substr(md5({rid}), 1, 15), 16, 10) AS BIGINT) AS h",
        f"{ts_us} AS ts_us",
        f"coalesce({_text(source, 'model_name')}, 'default') AS model_name",
        f"{version} AS model_version",
        f"{endpoint} AS endpoint",
        f"{lat} AS latency_ms", f"{is_error} AS is_error",
        f"{_text(source, 'error_type')} AS error_type",
        f"{_text(source, 'prediction')} AS prediction",
        f"{_text(source, 'label')} AS label",
        f"{score} AS fs",
        f"({raw_score} IS NOT NULL AND ({score}) IS NULL) AS fsx",
        f"{_finite(_double(pred, True)) if numeric_prediction and pred else 'CAST(NULL AS DOUBLE)'} AS fp",
    ]
    for i, f in enumerate(source.features):
        e = _feature_expr(f)
        cols.append(f"{_finite(f'try_cast({e} AS DOUBLE)') if f.kind == 'numeric' else f'CAST({e} AS STRING)'} AS f{i}")
    valid = ["TRUE"]
    if ts is not None:
        valid.append(f"{ts_us} IS NOT NULL")
    if source.has("request_id"):
        valid.append(f"{rid} IS NOT NULL")
    if source.has("latency_ms"):
        valid.append(f"{lat} >= 0 AND NOT isnan({lat}) AND {lat} <> double('inf')")
    if status is not None:
        valid.append(f"{status} IS NOT NULL")
    if source.has("model_version"):
        valid.append(f"{version} IS NOT NULL")
    return f"SELECT {', '.join(cols)} FROM raw WHERE {' AND '.join(valid)}"


def _uri_to_path(uri: str, paths: dict[str, str]) -> str | None:
    if uri in paths:
        return paths[uri]
    local = unquote(uri[len("file:"):]) if uri.startswith("file:") else uri
    while local.startswith("//"):
        local = local[1:]
    return paths.get(os.path.abspath(local))


def roll(source: LogSource, entries: list[st.FileEntry], staging: Path, *, spark=None) -> None:
    """Roll `entries` into `staging/<table>/part=<id>/` with Spark (same tables as DuckDB)."""
    from .duck import source_layout

    spark = spark or session()
    lay = source_layout(source)
    files = [e.path for e in entries]
    raw = (spark.read.option("mergeSchema", "true").parquet(*files)
           .selectExpr("*", "_metadata.file_path AS __file", "_metadata.row_index AS __row"))
    raw.createOrReplaceTempView("raw")
    spark.sql(rows_sql(source, "fp" in lay.numeric)).createOrReplaceTempView("rows")
    spark.createDataFrame(list(lay.feats), "fi STRING, role STRING, feature STRING").createOrReplaceTempView("feats")
    # The DuckDB engine's passes, in Spark: every count table from the one GROUPING SETS
    # query of `tables.counts_sql` (one scan of the logs instead of five), then numeric
    # bins and id hashes (a scan each); the tables are taken out of the cached counts.
    counts_sql, taken, rest = lay.passes("spark")
    counts = spark.sql(counts_sql).cache()
    counts.createOrReplaceTempView("counts")
    # Spark names files by URI: map each one the counts saw back to its manifest path.
    by_path = {os.path.abspath(e.path): e.part for e in entries} | {e.path: e.part for e in entries}
    seen = [r[0] for r in counts.select("file").distinct().collect()]
    mapping = [(u, by_path[p]) for u in seen if (p := _uri_to_path(u, {k: k for k in by_path})) is not None]
    if len(mapping) != len(seen):
        raise ValueError("spark reported files the manifest does not list: "
                         + ", ".join(u for u in seen if _uri_to_path(u, {k: k for k in by_path}) is None)[:300])
    spark.createDataFrame(mapping or [("", "")], "file STRING, part STRING").createOrReplaceTempView("parts")
    # The coarser grains of traffic and latency are summed in the segments (compact.py).
    frames = {name: spark.sql(sql) for name, sql in taken.items()}
    for name, sql in rest.items():
        frames[name] = spark.sql(sql)
    for name, df in frames.items():
        table = TABLES[name]
        df.createOrReplaceTempView("acc")
        cols = ", ".join(f"a.{_q(c)}" for c in table.columns)
        out = spark.sql(f"SELECT p.part, {cols} FROM acc a JOIN parts p ON a.file = p.file")
        out.write.mode("overwrite").partitionBy("part").parquet(str(staging / table.name))
    counts.unpersist()
