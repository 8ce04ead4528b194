"""The chance bands' calibration on a large reference scores about CALIBRATION_CHUNKS of its
consecutive chunks, spread evenly over it, instead of every one (10,000 at 10M rows)."""

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
