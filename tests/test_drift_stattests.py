"""Every drift test against scipy on small data, through the real DuckDB engine.

Each case writes the two samples to Parquet, runs `engine.compare` over them, and checks
the scores against scipy's wasserstein_distance, ks_2samp, jensenshannon (base 2) and
chisquare to 1e-6: ties, constant columns, one row, all nulls, categories on one side.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitoring.drift import REGISTRY, Score, Summary, stattest
from monitoring.drift.engine import Column, Side, compare
from monitoring.drift.settings import DriftSettings
from monitoring.drift.stattests import SMOOTHING, Merge, get, pooled_std

TOL = 1e-6


def _side(tmp_path, name: str, values, pa_type) -> Side:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({"x": pa.array(values, type=pa_type)}), path)
    return Side(name=name, ctes=((f"t_{name}", f"SELECT * FROM read_parquet(${name}_file)"),),
                rows_sql=f"t_{name}", params={f"{name}_file": str(path)}, exprs={"x": '"x"'})


def run_compare(con, tmp_path, ref, cur, kind="numeric", integer=False, pa_type=None):
    pa_type = pa_type or pa.float64()
    column = Column("x", "feature", kind, integer=integer)
    result = compare(con, _side(tmp_path, "ref", ref, pa_type), _side(tmp_path, "cur", cur, pa_type),
                     [column], DriftSettings(categorical_max_distinct=0))
    return result.features[0]


NUMERIC_CASES = {
    "continuous": (np.random.default_rng(1).normal(0, 1, 40), np.random.default_rng(2).normal(0.4, 1.3, 55)),
    "ties": ([1, 2, 2, 2, 3, 3, 5, 5, 5, 5], [2, 2, 3, 3, 3, 4, 5, 5, 6]),
    "ties across sides": ([0.5, 1.0, 1.0, 2.0], [1.0, 1.0, 2.0, 2.0, 2.0, 3.5]),
    "one row each": ([3.0], [4.5]),
    "one row vs many": ([2.0], [1.0, 2.0, 2.0, 7.0]),
    "constant current": ([1.0, 2.0, 3.0, 4.0], [2.5] * 6),
    "identical": ([1.0, 2.0, 2.0, 9.0], [1.0, 2.0, 2.0, 9.0]),
    "negative and wide": ([-1e6, -3.5, 0.0, 2.0, 1e6], [-2e5, 1.0, 1.0, 3e5]),
}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # scipy, one row each
@pytest.mark.parametrize("case", list(NUMERIC_CASES))
def test_numeric_tests_match_scipy(con, tmp_path, case):
    ref, cur = (np.asarray(v, dtype=float) for v in NUMERIC_CASES[case])
    f = run_compare(con, tmp_path, ref, cur)
    assert f.n_reference == len(ref) and f.n_current == len(cur)
    w = stats.wasserstein_distance(ref, cur)
    assert f.reference.merge.wasserstein == pytest.approx(w, abs=TOL, rel=TOL)
    expected = w / ref.std() if ref.std() > 0 else (0.0 if w == 0 else w / np.concatenate([ref, cur]).std())
    assert f.scores["wasserstein"].value == pytest.approx(expected, abs=TOL, rel=TOL)
    ks = stats.ks_2samp(ref, cur, method="asymp")
    assert f.scores["ks"].value == pytest.approx(ks.statistic, abs=TOL)
    if math.isnan(ks.pvalue):  # one row on each side
        assert f.scores["ks"].p_value is None
    else:
        assert f.scores["ks"].p_value == pytest.approx(ks.pvalue, abs=TOL)
    # PSI on numpy's deciles of the reference (linear interpolation), outer bins open
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    assert f.edges == pytest.approx(tuple(edges), abs=TOL)
    bins = lambda v: np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)  # noqa: E731
    p, q = bins(ref) / len(ref), bins(cur) / len(cur)
    p, q = np.where(p == 0, SMOOTHING, p), np.where(q == 0, SMOOTHING, q)
    assert f.scores["psi"].value == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=TOL)
    assert f.reference.mean == pytest.approx(ref.mean()) and f.reference.std == pytest.approx(ref.std(), abs=TOL)


def test_constant_reference_scales_by_pooled_std(con, tmp_path):
    # The reference has no spread: the distance is measured in the pooled std instead.
    ref, cur = np.full(8, 5.0), np.array([5.0, 6.0, 6.0, 7.0])
    f = run_compare(con, tmp_path, ref, cur)
    w = stats.wasserstein_distance(ref, cur)
    assert f.score == pytest.approx(w / np.concatenate([ref, cur]).std(), rel=TOL)
    assert f.drifted
    same = run_compare(con, tmp_path, ref, np.full(3, 5.0))
    assert same.score == 0.0 and not same.drifted and same.status == "ok"


@pytest.mark.parametrize("side", ["reference", "current", "both"])
def test_all_nulls_is_a_quality_problem_not_a_crash(con, tmp_path, side):
    values, nulls = [1.0, 2.0, 3.0], [None, None, None, None]
    ref, cur = (nulls if side in ("reference", "both") else values,
                nulls if side in ("current", "both") else values)
    f = run_compare(con, tmp_path, ref, cur)
    assert f.score is None and f.drifted is None and f.status == "no data"
    assert "no non-null values" in f.problem
    assert any("null" in p for p in f.quality.problems)


CATEGORICAL_CASES = {
    "shifted shares": (["a"] * 30 + ["b"] * 15 + ["c"] * 5, ["a"] * 10 + ["b"] * 20 + ["c"] * 20),
    "new category": (["a", "a", "b"], ["a", "b", "z", "z", "y"]),
    "vanished category": (["a", "b", "c", "c"], ["a", "a", "b"]),
    "one row each": (["a"], ["b"]),
    "hostile strings": (["<script>alert(1)</script>", "'; DROP TABLE logs; --"] * 3,
                        ["'; DROP TABLE logs; --", "**bold**"]),
}


def _binned(ref, cur):
    cats = sorted(set(ref), key=lambda c: (-ref.count(c), c))
    r = [ref.count(c) for c in cats] + [0]
    c = [cur.count(x) for x in cats] + [sum(1 for v in cur if v not in cats)]
    return np.array(r, float), np.array(c, float)


@pytest.mark.parametrize("case", list(CATEGORICAL_CASES))
def test_categorical_tests_match_scipy(con, tmp_path, case):
    ref, cur = CATEGORICAL_CASES[case]
    f = run_compare(con, tmp_path, ref, cur, kind="categorical", pa_type=pa.string())
    r, c = _binned(ref, cur)
    assert f.reference.counts == tuple(r) and f.current.counts == tuple(c)
    assert f.scores["jensenshannon"].value == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2), abs=TOL)
    p, q = r / r.sum(), c / c.sum()
    p, q = np.where(p == 0, SMOOTHING, p), np.where(q == 0, SMOOTHING, q)
    assert f.scores["psi"].value == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=TOL)
    # chi-square of homogeneity = scipy.chisquare on the flattened 2 x k table
    table = np.array([r, c])[:, np.array([r, c]).sum(axis=0) > 0]
    if table.shape[1] > 1:
        expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
        k = table.shape[1]
        chi = stats.chisquare(table.ravel(), expected.ravel(), ddof=table.size - 1 - (k - 1))
        assert f.scores["chisquare"].value == pytest.approx(chi.statistic, abs=TOL)
        assert f.scores["chisquare"].p_value == pytest.approx(chi.pvalue, abs=TOL)
    new = [x for x in dict.fromkeys(cur) if x not in ref]
    assert f.quality.new_count == len(new)
    assert {cat for cat, _ in f.quality.new_categories} == set(new)
    assert set(f.quality.vanished_categories) == {x for x in ref if x not in cur}


def test_integers_with_few_values_are_categorical(con, tmp_path):
    column = Column("x", "feature", "numeric", integer=True)
    ref, cur = [1, 2, 2, 3, 3, 3], [3, 3, 4, 4]
    result = compare(con, _side(tmp_path, "ref", ref, pa.int64()), _side(tmp_path, "cur", cur, pa.int64()),
                     [column], DriftSettings())
    f = result.features[0]
    assert f.kind == "categorical" and f.method == "jensenshannon"
    assert f.labels[:3] == ("1", "2", "3")  # numeric order, not text order
    r, c = np.array([1, 2, 3, 0.0]), np.array([0, 0, 2, 2.0])
    assert f.score == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2), abs=TOL)


# -- the registry: pure functions and descriptors ------------------------------------------------

def _num(values, merge=None):
    v = np.asarray(values, float)
    return Summary("numeric", len(v), 0, (len(v),), mean=float(v.mean()), std=float(v.std()),
                   min=float(v.min()), max=float(v.max()), merge=merge)


def test_registry_describes_every_test():
    assert set(REGISTRY) >= {"wasserstein", "ks", "psi", "jensenshannon", "chisquare"}
    for t in REGISTRY.values():
        assert t.kinds and t.threshold > 0 and t.title and t.help
    assert get("psi").warn == 0.1 and get("psi").threshold == 0.25
    with pytest.raises(KeyError, match="known"):
        get("nope")


def test_decisions_by_effect_size_and_by_p_value():
    psi = get("psi")
    assert psi.status(Score(0.05), 0.25) == "ok"
    assert psi.status(Score(0.15), 0.25) == "warn"
    assert psi.status(Score(0.25), 0.25) == "drift"
    chi = get("chisquare")
    assert chi.drifted(Score(1000.0, 1e-9), 0.05) and not chi.drifted(Score(1.0, 0.5), 0.05)


def test_pooled_std_matches_numpy():
    a, b = [1.0, 2.0, 4.0], [10.0, 11.0]
    assert pooled_std(_num(a), _num(b)) == pytest.approx(np.std(a + b))


def test_a_new_test_is_one_function_and_a_decorator():
    name = "test_only_mean_shift"
    try:
        @stattest(name, title="Mean shift in reference stds", kinds=("numeric",), threshold=0.5,
                  help="for this test only")
        def mean_shift(ref: Summary, cur: Summary) -> Score:
            return Score(abs(cur.mean - ref.mean) / ref.std)

        merge = Merge(0.0, 0.0)
        assert REGISTRY[name](_num([0.0, 2.0], merge), _num([3.0, 5.0], merge)).value == pytest.approx(3.0)
        with pytest.raises(ValueError, match="twice"):
            stattest(name, title="x", kinds=("numeric",), threshold=1)(mean_shift)
    finally:
        REGISTRY.pop(name, None)


def test_jensenshannon_bounds():
    a = Summary("categorical", 3, 0, (3, 0, 0))
    b = Summary("categorical", 3, 0, (0, 3, 0))
    assert REGISTRY["jensenshannon"](a, a).value == 0.0
    assert REGISTRY["jensenshannon"](a, b).value == pytest.approx(1.0)
    assert math.isfinite(REGISTRY["psi"](a, b).value)


# -- above exact_max_rows: fine bins, within the stated bound of scipy ---------------------------

_rng = np.random.default_rng(7)
APPROX_CASES = {
    "normal, shifted and wider": (_rng.normal(0, 1, 6000), _rng.normal(0.1, 1.2, 5000)),
    "lognormal x1.35 (the income incident)": (np.exp(_rng.normal(10, 0.5, 6000)),
                                             1.35 * np.exp(_rng.normal(10, 0.5, 6000))),
    "current beyond the reference range": (_rng.uniform(0, 1, 5000), _rng.uniform(0.5, 3, 4000)),
    "one far outlier stretches the bins": (np.append(_rng.normal(0, 1, 5000), 1e6), _rng.normal(0, 1, 5000)),
    "rounded to 0.1: one value per bin, exact": (np.round(_rng.normal(50, 10, 6000), 1), np.round(_rng.normal(51, 10, 5000), 1)),
    "integers: one value per bin, exact": (np.rint(_rng.normal(42, 12, 6000)), np.rint(_rng.normal(43, 12, 5000))),
    "constant reference": (np.full(3000, 2.5), _rng.normal(2.5, 0.1, 3000)),
}


@pytest.mark.parametrize("case", list(APPROX_CASES))
def test_fine_bins_are_within_the_stated_bound_of_scipy(con, tmp_path, case):
    ref, cur = APPROX_CASES[case]
    column = Column("x", "feature", "numeric")
    f = compare(con, _side(tmp_path, "ref", ref, pa.float64()), _side(tmp_path, "cur", cur, pa.float64()),
                [column], DriftSettings(categorical_max_distinct=0, exact_max_rows=1000)).features[0]
    m = f.reference.merge
    w, ks = stats.wasserstein_distance(ref, cur), stats.ks_2samp(ref, cur).statistic
    # |W - exact| <= wasserstein_error; KS is a lower bound, exact - KS <= ks_error
    assert abs(m.wasserstein - w) <= (m.wasserstein_error or 0.0) + 1e-9 * max(w, 1.0)
    assert -1e-12 <= ks - m.ks <= (m.ks_error or 0.0) + 1e-12
    scale = ref.std() if ref.std() > 0 else np.concatenate([ref, cur]).std()
    assert abs(f.score - w / scale) <= (f.error or 0.0) + 1e-9 * max(w / scale, 1.0)
    assert f.scores["ks"].error == m.ks_error
    if case.endswith("exact"):
        assert m.exact and f.error is None and f.accuracy == "exact"
        assert m.wasserstein == pytest.approx(w, abs=TOL) and m.ks == pytest.approx(ks, abs=TOL)
    elif not case.startswith("constant"):
        assert f.error is not None and f.accuracy.startswith("approximate")
    # moments, ranges and out-of-range from the bins are exact
    assert f.reference.mean == pytest.approx(ref.mean(), rel=1e-9, abs=1e-9)
    assert f.reference.std == pytest.approx(ref.std(), rel=1e-9, abs=1e-9)
    assert (f.current.min, f.current.max) == (cur.min(), cur.max())
    outside = int(((cur < ref.min()) | (cur > ref.max())).sum())
    assert f.quality.out_of_range_share == pytest.approx(outside / len(cur))
    # PSI bins: edges within the reference range, counts exact for the edges reported
    edges = np.asarray(f.edges)
    assert (np.diff(edges) > 0).all() and (edges >= ref.min()).all() and (edges <= ref.max()).all()
    bins = lambda v: np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)  # noqa: E731
    assert f.reference.counts == tuple(bins(ref)) and f.current.counts == tuple(bins(cur))


def test_fine_bins_bound_tightens_with_the_data(con, tmp_path):
    # Continuous data in 4096 bins: the Wasserstein bound is about a bin width, far below
    # the 0.1 threshold, and the KS bound about the largest share of one bin.
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 20000), rng.normal(0, 1, 20000)
    f = compare(con, _side(tmp_path, "ref", ref, pa.float64()), _side(tmp_path, "cur", cur, pa.float64()),
                [Column("x", "feature", "numeric")], DriftSettings(exact_max_rows=1000)).features[0]
    assert f.error < 0.01 and f.scores["ks"].error < 0.01
    assert not f.drifted
