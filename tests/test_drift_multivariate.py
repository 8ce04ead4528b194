"""Multivariate drift: a flipped correlation that no single column shows is caught, the
reconstruction errors match numpy's PCA on the same rows, and identical data does not drift."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from monitoring.drift import Column, Side, compare, load_settings, over_time
from monitoring.drift.multivariate import VARIANCE_KEPT

COLS = [Column(n, "feature", "numeric") for n in ("x", "y", "w")]


def _table(rng, n: int, rho: float) -> pa.Table:
    x = rng.normal(0, 1, n)
    y = rho * x + np.sqrt(1 - rho ** 2) * rng.normal(0, 1, n)
    return pa.table({"x": x * 10 + 50, "y": y * 3 - 1, "w": rng.normal(5, 2, n)})


def _side(name, path):
    return Side(name=name, ctes=((f"{name}_raw", f"SELECT * FROM read_parquet('{path}', file_row_number = true)"),),
                rows_sql=f"{name}_raw",
                params={}, exprs={c.name: f'"{c.name}"' for c in COLS}, order_sql="file_row_number",
                description=name)


def _numpy_errors(ref: pa.Table, cur: pa.Table) -> tuple[float, float]:
    r = np.column_stack([ref[c.name].to_numpy() for c in COLS])
    c = np.column_stack([cur[c.name].to_numpy() for c in COLS])
    mu, sd = r.mean(axis=0), r.std(axis=0)
    zr, zc = (r - mu) / sd, (c - mu) / sd
    vals, vecs = np.linalg.eigh(np.cov(zr, rowvar=False, bias=True))
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    d = min(int(np.searchsorted(np.cumsum(vals) / vals.sum(), VARIANCE_KEPT) + 1), len(COLS) - 1)
    p = vecs[:, :d]
    err = lambda z: float(np.mean(np.sum(z * z, axis=1) - np.sum((z @ p) ** 2, axis=1)))  # noqa: E731
    return err(zr), err(zc)


@pytest.mark.parametrize("rho_cur, drifts", [(0.9, False), (-0.9, True), (0.0, True)])
def test_correlation_change_no_column_shows(tmp_path, rho_cur, drifts):
    rng = np.random.default_rng(5)
    ref, cur = _table(rng, 20_000, 0.9), _table(rng, 20_000, rho_cur)
    pq.write_table(ref, tmp_path / "ref.parquet")
    pq.write_table(cur, tmp_path / "cur.parquet")
    con = duckdb.connect()
    r = compare(con, _side("reference", tmp_path / "ref.parquet"), _side("current", tmp_path / "cur.parquet"),
                COLS, load_settings({}))
    assert not any(f.drifted for f in r.features)              # every marginal is unchanged
    mv = r.multivariate
    e_ref, e_cur = _numpy_errors(ref, cur)
    assert mv.reference.mean == pytest.approx(e_ref, rel=1e-6)
    assert mv.current.mean == pytest.approx(e_cur, rel=1e-6)
    assert mv.score == pytest.approx(abs(e_cur / e_ref - 1), rel=1e-6)
    assert mv.drifted is drifts and mv.band is not None and mv.band < 0.1
    ot = over_time(con, _side("reference", tmp_path / "ref.parquet"), _side("current", tmp_path / "cur.parquet"),
                   COLS, r, "rows:5000", joint=True)
    joint = ot.scores.filter(ot.scores["role"] == "multivariate")
    assert joint.height == 4 and joint["drifted"].to_list() == [drifts] * 4
