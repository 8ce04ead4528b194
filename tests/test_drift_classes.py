"""Per-class probabilities of a multiclass model ([columns] class_scores, classes) and label
drift from the late labels file, against oracles computed with numpy/scipy on the same
values: generated sets with a known shift in three layouts (score_* columns, a struct, a
list), NannyML's multiclass credit-card set (its per-class probabilities drift in the
second half), and labels joined by request id from a separate file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from monitoring.config import ConfigError, load_config
from monitoring.drift.report import drift_report
from monitoring.logs.source import connect, open_source

CLASSES = ("cat", "dog", "owl")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def probs(rng: np.random.Generator, n: int, alpha: tuple[float, ...]) -> np.ndarray:
    """n rows of class probabilities (Dirichlet), rounded to 3 decimals as models log them."""
    return np.round(rng.dirichlet(alpha, size=n), 3)


def table(p: np.ndarray, layout: str, start: int, rng: np.random.Generator) -> pa.Table:
    n = len(p)
    cols = {"id": pa.array(np.arange(start, start + n)),
            "timestamp": pa.array([T0 + timedelta(minutes=int(i)) for i in range(start, start + n)],
                                  pa.timestamp("us", "UTC")),
            "prediction": pa.array([CLASSES[i] for i in p.argmax(axis=1)]),
            "income": pa.array(rng.normal(50, 10, n))}
    if layout == "pattern":
        for j, c in enumerate(CLASSES):
            cols[f"score_{c}"] = pa.array(p[:, j])
    elif layout == "struct":
        cols["probs"] = pa.StructArray.from_arrays([pa.array(p[:, j]) for j in range(3)], list(CLASSES))
    else:
        cols["probs"] = pa.array(p.tolist(), pa.list_(pa.float64()))
    return pa.table(cols)


LAYOUTS = {  # layout -> [columns] lines, and each class's column name in the report
    "pattern": ('class_scores = "score_*"\n', {c: f"score_{c}" for c in CLASSES}),
    "struct": ('class_scores = "probs"\n', {c: f"probs.{c}" for c in CLASSES}),
    "list": ('class_scores = "probs"\nclasses = ["cat", "dog", "owl"]\n', {c: f"probs.{c}" for c in CLASSES}),
}


def write_set(tmp: Path, layout: str, *, extra_columns: str = "") -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    ref = probs(rng, 4000, (2.0, 2.0, 2.0))
    # the current window: the first half like the reference, the second half far surer of "owl"
    cur = np.vstack([probs(rng, 3000, (2.0, 2.0, 2.0)), probs(rng, 3000, (1.0, 1.0, 6.0))])
    (tmp / "logs").mkdir()
    pq.write_table(table(ref, layout, 0, rng), tmp / "reference.parquet")
    pq.write_table(table(cur, layout, 10_000, rng), tmp / "logs" / "part.parquet")
    cfg = tmp / "monitoring.toml"
    cfg.write_text(f'reference = "{tmp / "reference.parquet"}"\ndata_dir = "{tmp / "data"}"\n'
                   f'[columns]\nrequest_id = "id"\n{LAYOUTS[layout][0]}{extra_columns}')
    return cfg, ref, cur


def scaled_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    return wasserstein_distance(a, b) / a.std()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_class_and_the_max_probability_against_scipy(tmp_path, layout):
    cfg, ref, cur = write_set(tmp_path, layout)
    r = drift_report(load_config(str(cfg), {"logs": str(tmp_path / "logs")}), chunk="rows:1000")
    names = LAYOUTS[layout][1]
    assert [c["class"] for c in r["classes"]] == list(CLASSES)
    for j, c in enumerate(r["classes"]):
        assert c["name"] == names[c["class"]]
        assert c["score"] == pytest.approx(scaled_wasserstein(ref[:, j], cur[:, j]), abs=1e-9)
    top_ref, top_cur = ref.max(axis=1), cur.max(axis=1)
    assert r["max_probability"]["score"] == pytest.approx(scaled_wasserstein(top_ref, top_cur), abs=1e-9)
    assert r["max_probability"]["drifted"] and r["classes"][2]["drifted"]
    # class columns are model outputs, not inputs: neither features nor in the joint score
    assert {f["name"] for f in r["features"]} == {"income"}
    # over time: each 1,000-row chunk against scipy on its rows; only the second half drifts
    chunks = r["over_time"]["chunks"]
    assert len(chunks) == 6
    for i, ch in enumerate(chunks):
        rows = slice(ch["first_row"], ch["last_row"] + 1)
        got = ch["scores"]["max_probability"]
        assert got["score"] == pytest.approx(scaled_wasserstein(top_ref, top_cur[rows]), abs=1e-9)
        owl = ch["scores"][f"class_score:{names['owl']}"]
        assert owl["score"] == pytest.approx(scaled_wasserstein(ref[:, 2], cur[rows, 2]), abs=1e-9)
        assert got["drifted"] == owl["drifted"] == (i >= 3), (i, got, owl)
    assert not r["over_time"]["drifted_chunks"].get("income")


CONFIG_ERRORS = [
    ('class_scores = "p_*_*"', r"class_scores must name a column or hold one \*"),
    ('classes = ["a", "b"]', r"classes needs class_scores"),
    ('class_scores = "probs"\nclasses = ["a", "a"]', r"classes must not name a class twice"),
    ('class_scores = "probs"\nclasses = ["a", 3]', r"classes must be a list of class names"),
    ('class_score = "score_*"', r"unknown key 'class_score' \(did you mean 'class_scores'\?\)"),
    ('class_scores = 3', r"class_scores must be text"),
]


@pytest.mark.parametrize("lines,error", CONFIG_ERRORS)
def test_declaration_mistakes_are_one_sentence(tmp_path, lines, error):
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f"[columns]\n{lines}\n")
    with pytest.raises(ConfigError, match=error):
        load_config(str(cfg))


WARNINGS = [  # layout of the files, [columns] lines -> the warning of the log source
    ("pattern", 'class_scores = "scores_*"', r"class_scores = 'scores_\*' matches no column"),
    ("struct", 'class_scores = "prob"', r"matches no column \(did you mean 'probs'\?\)"),
    ("list", 'class_scores = "probs"', r"is a list column: name the class of each position"),
    ("pattern", 'class_scores = "score_c*"', r"finds one class only"),
    ("struct", 'class_scores = "probs"\nclasses = ["cat", "dgo"]', r"no probability column for 'dgo'.*did you mean 'dog'"),
]


@pytest.mark.parametrize("layout,lines,warning", WARNINGS)
def test_a_declaration_that_finds_too_little_is_a_warning_and_nothing_breaks(tmp_path, layout, lines, warning):
    write_set(tmp_path, layout)
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'reference = "{tmp_path / "reference.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n'
                   f'[columns]\nrequest_id = "id"\n{lines}\n')
    config = load_config(str(cfg), {"logs": str(tmp_path / "logs")})
    source = open_source(str(tmp_path / "logs"), config, connect(config))
    assert any(__import__("re").search(warning, w) for w in source.warnings), source.warnings
    r = drift_report(config)
    assert r["message"] is None and r["features"]  # the rest of the report is there
    assert "classes" not in r and "max_probability" not in r


def test_explicit_feature_list_keeps_the_class_columns(tmp_path):
    cfg, ref, cur = write_set(tmp_path, "pattern", extra_columns='features = ["income"]\n')
    r = drift_report(load_config(str(cfg), {"logs": str(tmp_path / "logs")}))
    assert [c["class"] for c in r["classes"]] == list(CLASSES)
    assert [f["name"] for f in r["features"]] == ["income"]


# -- NannyML's multiclass set ----------------------------------------------------------------------

MC_PROBS = ("y_pred_proba_prepaid_card", "y_pred_proba_highstreet_card", "y_pred_proba_upmarket_card")


@pytest.fixture(scope="module")
def mc_report(tmp_path_factory):
    from tests.thirdparty import nannyml_table

    tmp = tmp_path_factory.mktemp("mc")
    (tmp / "logs").mkdir()
    reference, analysis = nannyml_table("mc_reference.csv"), nannyml_table("mc_analysis.csv")
    pq.write_table(reference, tmp / "reference.parquet")
    pq.write_table(analysis, tmp / "logs" / "analysis.parquet")
    pq.write_table(nannyml_table("mc_analysis_gt.csv"), tmp / "labels.parquet")
    cfg = tmp / "monitoring.toml"
    cfg.write_text(f'reference = "{tmp / "reference.parquet"}"\ndata_dir = "{tmp / "data"}"\n'
                   '[columns]\nrequest_id = "id"\ntimestamp = "timestamp"\nprediction = "y_pred"\n'
                   'label = "y_true"\nclass_scores = "y_pred_proba_*"\n'
                   f'[labels]\npath = "{tmp / "labels.parquet"}"\nid = "id"\nlabel = "y_true"\n')
    r = drift_report(load_config(str(cfg), {"logs": str(tmp / "logs")}), chunk="month")
    return r, reference.to_pandas(), analysis.to_pandas(), nannyml_table("mc_analysis_gt.csv").to_pandas()


def test_multiclass_credit_card_set_whole_window_against_scipy(mc_report):
    r, ref, cur, _ = mc_report
    assert [c["class"] for c in r["classes"]] == ["prepaid_card", "highstreet_card", "upmarket_card"]
    for c in r["classes"]:
        col = f"y_pred_proba_{c['class']}"
        assert c["score"] == pytest.approx(scaled_wasserstein(ref[col].to_numpy(), cur[col].to_numpy()), abs=1e-9)
    top_ref = ref[list(MC_PROBS)].max(axis=1).to_numpy()
    top_cur = cur[list(MC_PROBS)].max(axis=1).to_numpy()
    assert r["max_probability"]["score"] == pytest.approx(scaled_wasserstein(top_ref, top_cur), abs=1e-9)


def test_multiclass_credit_card_set_probabilities_drift_in_the_second_half_only(mc_report):
    r, *_ = mc_report
    ot = r["over_time"]
    second_half = datetime(2020, 11, 1, tzinfo=UTC)  # the analysis runs 2020-09-01 to 2021-01-01
    for key in ("max_probability", *(f"class_score:{c}" for c in MC_PROBS)):
        flagged = [c["start"] for c in ot["chunks"] if c["scores"][key]["drifted"]]
        assert flagged == [c["start"] for c in ot["chunks"] if c["start"] >= second_half], key


def test_label_drift_from_the_labels_file_joined_by_id(mc_report):
    """The logs carry no y_true: the label compared with the reference's y_true is the
    labels file's, joined by id (scipy on the same shares)."""
    r, ref, cur, gt = mc_report
    joined = cur[["id"]].merge(gt, on="id", how="left")["y_true"]
    cats = sorted(set(ref["y_true"]))
    p = ref["y_true"].value_counts().reindex(cats).to_numpy() / len(ref)
    q = joined.value_counts().reindex(cats, fill_value=0).to_numpy() / joined.notna().sum()
    assert r["label"]["n_current"] == int(joined.notna().sum()) == 60_000
    assert r["label"]["score"] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert not r["label"]["drifted"]  # NannyML's label mix barely moves (0.33 -> 0.35 at most)


# -- late labels on a generated set: some labelled late, some not, file over the logs -------------

LABEL_CASES = [
    # (file label type, logs carry their own labels, share of requests in the file)
    ("string", False, 1.0),
    ("float", False, 0.6),       # 1.0 in the file is the class "1" of the reference
    ("string", True, 0.5),       # the file wins where both have one; elsewhere the logs' label
]


@pytest.mark.parametrize("file_type,own,share", LABEL_CASES)
def test_label_drift_from_a_generated_labels_file(tmp_path, file_type, own, share):
    rng = np.random.default_rng(5)
    n_ref, n_cur = 3000, 4000
    ref_y = rng.choice([0, 1, 2], size=n_ref, p=[0.6, 0.3, 0.1])
    cur_y = rng.choice([0, 1, 2], size=n_cur, p=[0.3, 0.3, 0.4])   # the label mix changed
    own_y = rng.choice([0, 1, 2], size=n_cur, p=[0.6, 0.3, 0.1])   # what the logs say (older labels)
    ids = np.arange(100, 100 + n_cur)
    logs = {"id": ids, "timestamp": pa.array([T0 + timedelta(minutes=int(i)) for i in range(n_cur)],
                                              pa.timestamp("us", "UTC")),
            "prediction": rng.choice(["0", "1", "2"], size=n_cur), "x": rng.normal(size=n_cur)}
    if own:
        logs["label"] = own_y.astype(str)
    (tmp_path / "logs").mkdir()
    pq.write_table(pa.table(logs), tmp_path / "logs" / "part.parquet")
    pq.write_table(pa.table({"id": np.arange(n_ref), "prediction": rng.choice(["0", "1", "2"], size=n_ref),
                             "x": rng.normal(size=n_ref), "label": ref_y.astype(str)}), tmp_path / "ref.parquet")
    labelled = rng.random(n_cur) < share
    values = cur_y[labelled].astype(float) if file_type == "float" else cur_y[labelled].astype(str)
    pq.write_table(pa.table({"request": [f" {i}" for i in ids[labelled]], "truth": values}),
                   tmp_path / "labels.parquet")
    cfg = tmp_path / "monitoring.toml"
    cfg.write_text(f'reference = "{tmp_path / "ref.parquet"}"\ndata_dir = "{tmp_path / "data"}"\n'
                   f'[columns]\nrequest_id = "id"\n[labels]\npath = "{tmp_path / "labels.parquet"}"\n'
                   'id = "request"\nlabel = "truth"\n')
    r = drift_report(load_config(str(cfg), {"logs": str(tmp_path / "logs")}), chunk="rows:1000")
    truth = np.where(labelled, cur_y, own_y if own else -1)
    known = truth[truth >= 0]
    p = np.bincount(ref_y, minlength=3) / n_ref
    q = np.bincount(known, minlength=3) / len(known)
    assert r["label"]["n_current"] == len(known)
    assert r["label"]["score"] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-9)
    assert r["label"]["drifted"]
    for ch in r["over_time"]["chunks"]:  # per chunk too, on the chunk's labelled rows
        part = truth[ch["first_row"]:ch["last_row"] + 1]
        part = part[part >= 0]
        assert ch["scores"]["label"]["n"] == len(part)
        expected = jensenshannon(p, np.bincount(part, minlength=3) / len(part), base=2)
        assert ch["scores"]["label"]["score"] == pytest.approx(expected, abs=1e-9)


BROKEN_LABELS = [  # what the labels file holds -> the sentence in the report's warnings
    (b"not parquet", r"^labels file .* cannot be read: .*: label drift uses the logs' own labels only$"),
    ("columns", r"^labels file .* has no column 'y'.*: label drift uses the logs' own labels only$"),
]


@pytest.mark.parametrize("content,warning", BROKEN_LABELS)
def test_a_broken_labels_file_is_one_sentence_and_drift_goes_on(tmp_path, content, warning):
    import re

    cfg, *_ = write_set(tmp_path, "pattern")
    path = tmp_path / "labels.parquet"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        pq.write_table(pa.table({"id": [1, 2], "truth": ["a", "b"]}), path)
    cfg.write_text(cfg.read_text() + f'[labels]\npath = "{path}"\nid = "id"\nlabel = "y"\n')
    r = drift_report(load_config(str(cfg), {"logs": str(tmp_path / "logs")}))
    assert any(re.search(warning, w) for w in r["warnings"]), r["warnings"]
    assert "label" not in r and [c["class"] for c in r["classes"]] == list(CLASSES)
