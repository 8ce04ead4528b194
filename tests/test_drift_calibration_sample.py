"""The chance bands' calibration on a large reference scores about CALIBRATION_CHUNKS of its
consecutive chunks, spread evenly over it, instead of every one (10,000 at 10M rows)."""

import threading

import duckdb
import numpy as np
import pytest

from monitoring.drift.overtime import every_nth_chunk
from monitoring.drift.sql import Side
from monitoring.logs.sql import run


@pytest.mark.parametrize("rows, n0, stride", [
    (1000, 100, 1), (1000, 100, 3), (1050, 100, 4), (99, 100, 2), (12_345, 250, 7),
])
def test_every_nth_chunk_keeps_whole_chunks_in_order(rows, n0, stride):
    con = duckdb.connect()
    rng = np.random.default_rng(rows)
    order = rng.permutation(rows)            # stored out of order: the side's order decides
    con.execute("CREATE TABLE t AS SELECT unnest($i) AS i", {"i": order.tolist()})
    side = Side(name="s", ctes=(), rows_sql="t", params={}, exprs={"i": "i"}, order_sql="i")
    got = run(con, f"SELECT i FROM {every_nth_chunk(side, n0, stride).rows_sql} ORDER BY i",
              every_nth_chunk(side, n0, stride).params)["i"].to_list()
    want = [i for i in range(rows) if (i // n0) % stride == 0]     # hand rule over positions
    assert got == want
    # chunks of n0 rows of the result are the kept chunks themselves
    assert all(got[j * n0] == (j * stride) * n0 for j in range(len(got) // n0))


@pytest.mark.parametrize("n", [1, 2, 7, 999, 19_999, 20_000, 20_001, 123_457])
@pytest.mark.parametrize("ties", [False, True])
def test_compressed_reference_is_numpys_order_statistics(n, ties):
    """Over time, a large reference is merged as CHUNK_REFERENCE_POINTS order statistics:
    the value at position floor((j + 0.5) n / P) of the sorted values, for every j < P."""
    from monitoring.drift.merges import CHUNK_REFERENCE_POINTS as P
    from monitoring.drift.merges import reference_points_sql
    rng = np.random.default_rng(n)
    x = rng.integers(0, 5, size=n).astype(float) if ties else rng.normal(size=n)
    con = duckdb.connect()
    con.execute("CREATE TABLE rv AS SELECT unnest($x) AS x UNION ALL SELECT NULL", {"x": x.tolist()})
    # equal values may come as several rows (one per position): their weights add up
    got = run(con, f"SELECT x, sum(wr) AS wr FROM ({reference_points_sql('rv')}) GROUP BY x ORDER BY x",
              {"ref_points": P})
    picked = np.sort(x)[np.floor((np.arange(P) + 0.5) * n / P).astype(int)]
    values, counts = np.unique(picked, return_counts=True)
    assert got["x"].to_list() == values.tolist()
    assert got["wr"].to_list() == counts.tolist()


@pytest.mark.parametrize("rows, n0, stride", [(1000, 100, 3), (1050, 100, 4), (12_345, 250, 7)])
def test_materialised_sample_is_every_nth_chunk_in_one_sort(rows, n0, stride):
    """The calibration's table: the same rows as every_nth_chunk, each with its position in
    the side (mw_pos), so its chunks of n0 rows in mw_pos order are the kept chunks."""
    from monitoring.drift.overtime import _materialised
    con = duckdb.connect()
    order = np.random.default_rng(rows).permutation(rows)
    con.execute("CREATE TABLE t AS SELECT unnest($i) AS i", {"i": order.tolist()})
    side = Side(name="s", ctes=(), rows_sql="t", params={}, exprs={"i": "i"}, order_sql="i")
    kept, table = _materialised(con, side, n0, stride)
    assert table is not None and kept.order_sql == "mw_pos" and kept.params == {}
    got = run(con, f"SELECT {kept.exprs['i']} AS i, mw_pos FROM {kept.rows_sql} ORDER BY mw_pos", {})
    want = [i for i in range(rows) if (i // n0) % stride == 0]     # hand rule over positions
    assert got["i"].to_list() == want and got["mw_pos"].to_list() == want
    nth = every_nth_chunk(side, n0, stride)
    assert got["i"].to_list() == run(con, f"SELECT i FROM {nth.rows_sql} ORDER BY i", nth.params)["i"].to_list()


def test_materialised_keeps_clashing_columns_by_their_expressions():
    """A join's clashing names (a.i, b.i) broke `SELECT *`; the table keeps each column's
    expression as a column of its own, so it is made, with the kept chunks' rows."""
    from monitoring.drift.overtime import _materialised
    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT range AS i FROM range(500)")
    con.execute("CREATE TABLE b AS SELECT range AS i FROM range(500)")
    side = Side(name="s", ctes=(), rows_sql="a JOIN b ON a.i = b.i", params={}, exprs={"i": "a.i"},
                order_sql="a.i")
    kept, table = _materialised(con, side, 100, 2)
    assert table is not None and kept.order_sql == "mw_pos"
    got = run(con, f"SELECT {kept.exprs['i']} AS i FROM {table} ORDER BY mw_pos", {})["i"].to_list()
    assert got == [i for i in range(500) if (i // 100) % 2 == 0]     # every_nth_chunk's rule, by hand


def test_materialised_falls_back_to_the_query_when_the_table_cannot_be_made():
    from monitoring.drift.overtime import _materialised
    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT range AS i FROM range(500)")
    side = Side(name="s", ctes=(), rows_sql="a", params={}, exprs={"i": "i", "bad": "no_such_column"},
                order_sql="i")
    kept, table = _materialised(con, side, 100, 2)
    assert table is None and kept == every_nth_chunk(side, 100, 2)
    assert not run(con, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'mw_cal_%'", {}).height


def test_calibration_from_the_table_equals_calibration_from_the_query(tmp_path, monkeypatch):
    """Inflation of every column when the kept chunks come from the materialised table and
    when they are read again by every_nth_chunk's query (the fallback): identical."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitoring.drift import Column, bands, compare, load_settings
    from monitoring.drift import overtime as ot
    rng = np.random.default_rng(5)
    n = 30_000
    drift_ = np.repeat(rng.normal(size=n // 500), 500)          # clustered: chunks vary more than draws
    pq.write_table(pa.table({"x": rng.normal(size=n) + drift_, "y": rng.normal(size=n),
                             "c": rng.choice(list("abcd"), size=n)}), tmp_path / "ref.parquet")
    columns = [Column("x", "feature", "numeric"), Column("y", "feature", "numeric"),
               Column("c", "feature", "categorical")]
    ref = Side(name="reference", ctes=(("reference_raw", f"SELECT * FROM read_parquet('{tmp_path / 'ref.parquet'}', "
                                        "file_row_number = true)"),),
               rows_sql="reference_raw", params={}, exprs={c.name: f'"{c.name}"' for c in columns},
               order_sql="file_row_number", description="reference")
    monkeypatch.setattr(ot, "CALIBRATION_MAX_CHUNKS", 7)       # stride 8 on 50 chunks of 600 rows
    seen = []

    def inflation(materialise):
        if not materialise:
            monkeypatch.setattr(ot, "_materialised", lambda con, side, n0, s: (ot.every_nth_chunk(side, n0, s), None))
        monkeypatch.setattr(bands, "_SHARED", {})               # calibrate afresh, not from the last call
        con = duckdb.connect()
        settings = load_settings({})
        real = ot._materialised
        # only this thread's calls: a page test's background job (prefetch, alert evaluation)
        # may still be calibrating its own reference in this worker process
        me = threading.current_thread()
        monkeypatch.setattr(ot, "_materialised",
                            lambda *a: (threading.current_thread() is me and seen.append(a[2:])) or real(*a))
        result = ot.calibrate(con, ref, columns, compare(con, ref, ref, columns, settings))
        return dict(result.bands.inflation)

    a, b = inflation(True), inflation(False)
    assert seen == [(600, 8), (600, 8)]
    assert a.keys() == b.keys() and a[("x", "feature")] > 1.5     # the clustered column is widened
    assert a == pytest.approx(b, rel=1e-12, abs=0)


def test_pooled_calibration_agrees_with_scoring_against_the_whole_reference(tmp_path, monkeypatch):
    """The kept chunks scored against their own pool give each column the factor they get
    scored against the whole reference (the calibration's earlier, 30x dearer way, computed
    here by hand from the same chunks): within 5%, the clustered columns widened, the
    independent one not."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from monitoring.drift import Column, bands, compare, load_settings
    from monitoring.drift import overtime as ot
    rng = np.random.default_rng(11)
    n = 60_000
    households = np.repeat(rng.normal(size=n // 300), 300)       # clustered: runs of 300 rows
    kinds = np.repeat(rng.choice(list("abcde"), size=n // 200), 200)
    pq.write_table(pa.table({"x": rng.normal(size=n) + households, "y": rng.exponential(size=n),
                             "c": np.where(rng.random(n) < 0.5, kinds, rng.choice(list("abcde"), size=n))}),
                   tmp_path / "ref.parquet")
    columns = [Column("x", "feature", "numeric"), Column("y", "feature", "numeric"),
               Column("c", "feature", "categorical")]
    ref = Side(name="reference", ctes=(("reference_raw", f"SELECT * FROM read_parquet('{tmp_path / 'ref.parquet'}', "
                                        "file_row_number = true)"),),
               rows_sql="reference_raw", params={}, exprs={c.name: f'"{c.name}"' for c in columns},
               order_sql="file_row_number", description="reference")
    monkeypatch.setattr(ot, "CALIBRATION_MAX_CHUNKS", 20)       # 60 chunks of 1,000 rows: every third kept
    monkeypatch.setattr(bands, "_SHARED", {})
    con = duckdb.connect()
    result = compare(con, ref, ref, columns, load_settings({}))
    pooled = dict(ot.calibrate(con, ref, columns, result).bands.inflation)

    kept, table = ot._materialised(con, ref, 1000, 3)
    assert table is not None
    by_ref = ot.over_time(con, ref, kept, columns, result, ot.ChunkSpec("rows", 1000), judge=False)
    assert by_ref.chunks.height == 20 and set(by_ref.chunks["rows"].to_list()) == {1000}
    b = result.bands
    for (name, role), g in by_ref.scores.filter(pl.col("score").is_not_null()).group_by("name", "role"):
        key = (name, role)
        m, k = b.models[key].m, float(g["n"].mean())
        want = max(1.0, float(g["score"].mean()) / b.mean(key, k * m / (m - k)))
        assert pooled[key] == pytest.approx(want, rel=0.05), key
    # measured: x 9.29 (9.18 against the reference), c 6.80 (6.67), y 1.136 (1.133): the
    # independent column's factor is the null model's own (512 atoms of a long tail), not clustering
    assert pooled[("x", "feature")] > 5 and pooled[("c", "feature")] > 5
    assert pooled[("y", "feature")] < 1.3
