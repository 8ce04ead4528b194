"""Labelling statistics against hand-worked examples, published values and scipy."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from monitoring.labelling.stats import (
    cohen_kappa,
    krippendorff_alpha_nominal,
    majority,
    percent_agreement,
    precision_recall_f1,
    proportion,
    wilson_interval,
)

Z = 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (0, 10, 0.0, 0.27753),      # never below 0, unlike the normal approximation
    (10, 10, 0.72247, 1.0),     # never above 1
    (81, 100, 0.72221, 0.87485),
    (5, 20, 0.11186, 0.46869),
    (30, 60, 0.37735, 0.62265),
])
def test_wilson_interval_matches_hand_formula_and_scipy(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert (lo, hi) == pytest.approx((low, high), abs=5e-5)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (lo, hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
    hand = wilson_by_hand(k, n)
    assert (lo, hi) == pytest.approx((max(hand[0], 0.0), min(hand[1], 1.0)), abs=1e-12)


def test_wilson_other_levels_and_edges():
    ci = binomtest(7, 25).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_interval(7, 25, 0.9) == pytest.approx((ci.low, ci.high))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    with pytest.raises(ValueError):
        wilson_interval(1, 10, confidence=1.0)


def test_proportion_equal_weights_is_exactly_wilson():
    p = proportion([True] * 81 + [False] * 19, [37.5] * 100)
    assert (p.value, p.n, p.n_eff, p.successes) == (0.81, 100, 100.0, 81.0)
    assert (p.low, p.high) == wilson_interval(81, 100)


def test_proportion_design_weights_use_kish_effective_size():
    # Weighted share (1 + 3 + 3) / 8 = 0.875; n_eff = 8^2 / (1 + 1 + 9 + 9) = 3.2.
    p = proportion([True, False, True, True], [1, 1, 3, 3])
    assert p.value == pytest.approx(0.875)
    assert p.n_eff == pytest.approx(3.2)
    assert (p.low, p.high) == pytest.approx(wilson_interval(0.875 * 3.2, 3.2))
    empty = proportion([])
    assert empty.n == 0 and math.isnan(empty.value)
    with pytest.raises(ValueError):
        proportion([True], [0.0])


def test_cohen_kappa_published_examples():
    # Wikipedia "Cohen's kappa", first example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # Second example: 45 / 15 / 25 / 15 -> p_o 0.60, p_e 0.54, kappa 0.1304.
    a = ["y"] * 60 + ["n"] * 40
    b = ["y"] * 45 + ["n"] * 15 + ["y"] * 25 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.06 / 0.46)


@pytest.mark.parametrize(("a", "b", "expected"), [
    (["x", "y", "z"], ["x", "y", "z"], 1.0),
    (["x", "y"], ["y", "x"], -1.0),
    (["x", "x"], ["x", "x"], math.nan),       # one category: chance agreement is 1, undefined
    ([], [], math.nan),
])
def test_cohen_kappa_edges(a, b, expected):
    got = cohen_kappa(a, b)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_krippendorff_alpha_published_nominal_example():
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", section C: four
    # observers, twelve units, missing values; nominal alpha = 0.743.
    n = None
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3]
    c = [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]
    assert round(krippendorff_alpha_nominal(list(zip(a, b, c, d, strict=True))), 3) == 0.743


def test_krippendorff_alpha_hand_worked_two_raters():
    # Units (a,a) (a,b) (b,b) (b,b): o_aa 2, o_ab = o_ba 1, o_bb 4; n_a 3, n_b 5, n 8.
    # D_o = 2, D_e = (64 - 9 - 25) / 7 -> alpha = 1 - 2 * 7 / 30 = 0.5333.
    units = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("a",), ()]
    assert krippendorff_alpha_nominal(units) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha_nominal([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha_nominal([("a", "a"), ("a", "a")]))
    assert math.isnan(krippendorff_alpha_nominal([("a",)]))


def test_percent_agreement_is_pairwise():
    assert percent_agreement([("a", "a", "b")]) == (pytest.approx(1 / 3), 1)
    assert percent_agreement([("a", "a"), ("a", "b"), ("c",)]) == (0.5, 2)


def test_precision_recall_f1_hand_worked():
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    s = {x.label: x for x in precision_recall_f1(truth, pred)}
    assert (s["a"].precision, s["a"].recall) == (1.0, pytest.approx(2 / 3))
    assert s["a"].f1 == pytest.approx(0.8)
    assert (s["b"].precision, s["b"].recall, s["b"].f1) == (0.5, 0.5, 0.5)
    assert (s["c"].precision, s["c"].recall) == (0.5, 1.0)
    only_true = {x.label: x for x in precision_recall_f1(["a"], ["b"])}
    assert math.isnan(only_true["a"].precision) and only_true["a"].recall == 0.0


@pytest.mark.parametrize(("values", "expected"), [
    (["correct", "correct", "wrong"], ("correct", False)),
    (["correct", "wrong"], (None, True)),
    (["wrong"], ("wrong", False)),
    ([], (None, False)),
])
def test_majority_marks_ties(values, expected):
    assert majority(values) == expected
