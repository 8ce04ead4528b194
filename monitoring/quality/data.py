"""What DuckDB computes for the quality metrics: small aggregates of the joined truth rows.

`spec_for` finds the task, the classes, the positive class and what the score means.
`aggregate` then runs a handful of GROUP BY queries over the window, each returning at
most (chunks x versions x segments x groups x classes^2) rows, or score histograms:

    rows    chunk, version, seg, sens, pred, n, labelled, lo_us, hi_us   (every served row)
    pairs   chunk, version, seg, sens, pred, truth, n                    (labelled, classification)
    hist    g, chunk, seg, version, cls, s, y, n    score histogram by label (AUC)
    conf    chunk, b, n, correct, conf_sum          confidence bins (calibration, ECE)
    est     chunk, pred_pos, fb, n                  fine score bins of every row (estimation)
    reg     chunk, version, seg, y, yhat  (rows)  or per-hash-block sums (regression)

AUC histograms are exact (one entry per distinct score) up to EXACT_AUC_ROWS labelled rows;
above, scores fall in AUC_BINS equal bins and the AUC's largest possible binning error is
reported with it (half the share of positive-negative pairs that share a bin).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..logs.source import quote_ident
from ..logs.workspace import Workspace
from ..query.filters import Filters
from . import chunks as ch
from . import ground_truth as gt
from .settings import QualitySettings

EXACT_AUC_ROWS = 250_000
AUC_BINS = 4096
EST_BINS = 1000
REG_ROWS = 200_000
REG_BLOCKS = 512
MAX_CLASSES = 50
MAX_GROUPS = 30
BUILTIN_SEGMENTS = ("model_version", "endpoint", "model_name")


def feature_col(f) -> str:
    """SQL name of a feature in `logs` (`f.col` once the namespace lands, else its name)."""
    return getattr(f, "col", None) or quote_ident(f.name)


def segment_columns(ws: Workspace) -> list[str]:
    """Columns that can split the quality: version, endpoint, model and categorical features."""
    out = [c for c in BUILTIN_SEGMENTS if c == "model_version" or ws.source.has(c)]
    return out + [f.name for f in ws.source.features if f.kind == "categorical"]


def segment_sql(ws: Workspace, name: str) -> str:
    if name in BUILTIN_SEGMENTS:
        return name
    for f in ws.source.features:
        if f.name == name:
            if f.kind != "categorical":
                raise ValueError(f"column {name!r} is numeric: choose a categorical column to split by "
                                 f"({', '.join(segment_columns(ws)[:10])})")
            return feature_col(f)
    raise ValueError(f"no column {name!r} to split by{gt.did_you_mean(name, segment_columns(ws))}; "
                     f"choose one of {', '.join(segment_columns(ws)[:12])}")


@dataclass(frozen=True)
class Spec:
    task: str                                # classification | regression
    classes: tuple[str, ...] = ()
    positive: str | None = None              # binary metrics and fairness
    positive_note: str = ""
    score_kind: str | None = None            # positive | predicted | None (no score)
    class_scores: dict[str, str] = field(default_factory=dict)   # class -> SQL column
    labelled: int = 0
    rows: int = 0
    warning: str | None = None               # labels and predictions share no value

    @property
    def binary(self) -> bool:
        return self.task == "classification" and len(self.classes) == 2

    def conf_sql(self) -> str | None:
        """Confidence of the predicted class."""
        if self.class_scores and len(self.class_scores) == len(self.classes):
            return "CASE " + " ".join(f"WHEN pred = {_lit(c)} THEN {col}" for c, col in self.class_scores.items()) + " END"
        if self.score_kind is None:
            return None
        if self.score_kind == "positive" and self.positive is not None:
            return f"CASE WHEN pred = {_lit(self.positive)} THEN score ELSE 1 - score END"
        return "score"

    def p_pos_sql(self) -> str | None:
        """Probability of the positive class (binary only)."""
        if not self.binary:
            return None
        if self.positive in self.class_scores:
            return self.class_scores[self.positive]
        if self.score_kind == "positive":
            return "score"
        if self.score_kind == "predicted":
            return f"CASE WHEN pred = {_lit(self.positive)} THEN score ELSE 1 - score END"
        return None


def _lit(value: str) -> str:
    # Class names come from the data: written as SQL string literals, quotes doubled.
    return "'" + str(value).replace("'", "''") + "'"


def spec_for(ws: Workspace, t: gt.Truth, s: QualitySettings, f: Filters) -> Spec:
    cond, params = f.where()
    if t.task == "regression":
        n = gt.query(ws, t, f"SELECT count(*) AS rows, count(truth) AS labelled FROM truth_rows WHERE {cond}", params)
        return Spec("regression", labelled=int(n["labelled"][0]), rows=int(n["rows"][0]))
    score = "score" if ws.source.has("score") else "NULL::DOUBLE"
    # One scan: (prediction, label) pairs with the score's share above one half.
    pairs = gt.query(ws, t, f"SELECT pred, truth, count(*) AS n, count({score}) AS scored, "
                            f"count_if({score} >= 0.5) AS high FROM truth_rows WHERE {cond} GROUP BY ALL", params)
    return spec_from_pairs(ws, s, pairs)


def spec_from_pairs(ws: Workspace, s: QualitySettings, pairs: pl.DataFrame) -> Spec:
    """The classifier's Spec from (pred, truth, n, scored, high) over the window's served rows
    (scored, high: rows with a score, and with a score >= 0.5; read only to tell what a
    binary model's score means when [quality] score is auto)."""
    preds = pairs.group_by(pl.col("pred").alias("v")).agg(pl.col("n").sum(), pl.col("scored").sum(), pl.col("high").sum())
    labelled_pairs = pairs.filter(pl.col("truth").is_not_null())
    rows = int(preds["n"].sum() or 0)
    labelled = int(labelled_pairs["n"].sum() or 0)
    truths = labelled_pairs.group_by(pl.col("truth").alias("v")).agg(pl.col("n").sum())
    totals = pl.concat([preds.select("v", "n"), truths]).group_by("v").agg(pl.col("n").sum()).sort(
        ["n", "v"], descending=[True, False])
    classes = tuple(sorted(str(v) for v in totals["v"].to_list()[:MAX_CLASSES] if v is not None))
    prefix = s.class_score_prefix
    by_name = {fe.name: fe for fe in ws.source.features if fe.kind == "numeric"}
    class_scores = {c: feature_col(by_name[prefix + c]) for c in classes if prefix + c in by_name}
    score_kind = None
    if ws.source.has("score"):
        score_kind = s.score if s.score != "auto" else "predicted"
    positive, note = s.positive_class, "set in [quality] positive_class"
    if positive is None:
        positive, note = _guess_positive(classes, preds)
    if len(classes) == 2 and s.score == "auto" and ws.source.has("score") and positive is not None:
        # A confidence is >= 0.5 on negative predictions too; a probability is not.
        neg = preds.filter(pl.col("v") != positive)
        n, high = int(neg["scored"].sum() or 0), int(neg["high"].sum() or 0)
        score_kind = "predicted" if n and high / n > 0.5 else "positive"
    warning = gt.shared_warning(set(labelled_pairs["pred"].to_list()), set(labelled_pairs["truth"].to_list()))
    return Spec("classification", classes, positive, note, score_kind, class_scores, labelled, rows, warning)


def _guess_positive(classes: tuple[str, ...], preds: pl.DataFrame) -> tuple[str | None, str]:
    if not classes:
        return None, ""
    for pair in (("0", "1"), ("false", "true"), ("no", "yes"), ("negative", "positive")):
        if set(classes) <= set(pair):
            return pair[1], f"{pair[1]!r}, the usual positive outcome; set [quality] positive_class to change it"
    rare = preds.sort(["n", "v"]).filter(pl.col("v").is_not_null())
    c = str(rare["v"][0]) if rare.height else classes[-1]
    return c, f"{c!r}, the rarest prediction; set [quality] positive_class to choose another"


@dataclass
class Aggregates:
    chunk_kind: str
    chunk_size: int | None
    rows: pl.DataFrame
    pairs: pl.DataFrame | None = None
    hist: pl.DataFrame | None = None
    hist_exact: bool = True
    conf: pl.DataFrame | None = None
    est: pl.DataFrame | None = None
    reg: pl.DataFrame | None = None
    reg_blocks: bool = False
    delay: dict[str, Any] | None = None
    origin: str = "raw"                      # "rollups": quality/fromstore.py read it
    raw_scores: bool = False                 # fromstore: conf and est from a raw pass, not the bins


def _top(ws: Workspace, expr: str, cond: str, params: dict) -> list[str]:
    # Straight over the logs (no labels join): only the group sizes matter here.
    df = ws.source.query(ws.con, f"SELECT coalesce(CAST({expr} AS VARCHAR), '(none)') AS v, count(*) AS n "
                                 f"FROM logs WHERE {cond} GROUP BY 1 ORDER BY n DESC, v LIMIT {MAX_GROUPS}", params)
    return df["v"].to_list()


def _group(expr: str | None, name: str) -> str:
    if expr is None:
        return f"'(all)' AS {name}"
    v = f"coalesce(CAST({expr} AS VARCHAR), '(none)')"
    return f"CASE WHEN list_contains(${name}_top, {v}) THEN {v} ELSE '(other)' END AS {name}"


def aggregate(ws: Workspace, t: gt.Truth, spec: Spec, f: Filters, chunk: tuple[str, int | None],
              by: str | None = None, sensitive: str | None = None, *, scores_only: bool = False) -> Aggregates:
    """The aggregates of the window. `scores_only` (classification): only the confidence and
    estimation bins (`conf`, `est`), for quality/fromstore.py where the store's score bins
    cannot give them (per-class probability columns, confidences outside [0, 1])."""
    cond, params = f.where()
    kind, size = chunk
    by_sql = segment_sql(ws, by) if by else None
    sens_sql = segment_sql(ws, sensitive) if sensitive else None
    if by_sql:
        params["seg_top"] = _top(ws, by_sql, cond, params)
    if sens_sql:
        params["sens_top"] = _top(ws, sens_sql, cond, params)
    q = (f"q AS (SELECT *, {ch.key_sql(kind, size)} AS chunk, model_version AS version, "
         f"{_group(by_sql, 'seg')}, {_group(sens_sql, 'sens')} FROM truth_rows WHERE {cond})")

    def run(body: str, extra: dict | None = None) -> pl.DataFrame:
        return gt.query(ws, t, f", {q} {body}", params | (extra or {}))

    delay = (t.labels is not None and "labeled_at" in t.labels.types) or t.reviewed is not None
    if spec.task == "regression":
        rows = run("SELECT chunk, version, seg, sens, CAST(NULL AS VARCHAR) AS pred, count(*) AS n, "
                   "count(truth) AS labelled, min(ts_us) AS lo_us, max(ts_us) AS hi_us FROM q GROUP BY ALL")
        agg = Aggregates(kind, size, rows, delay=_delay(run) if delay else None)
        if spec.labelled <= REG_ROWS:
            agg.reg = run("SELECT chunk, version, seg, truth AS y, pred AS yhat FROM q "
                          "WHERE truth IS NOT NULL AND pred IS NOT NULL AND isfinite(truth) AND isfinite(pred)")
        else:
            agg.reg_blocks = True
            agg.reg = run(f"SELECT chunk, version, seg, hash(request_id) % {REG_BLOCKS} AS blk, count(*) AS n, "
                          "sum(pred - truth) AS e, sum(abs(pred - truth)) AS ae, sum((pred - truth) ^ 2) AS e2, "
                          "sum(CASE WHEN truth <> 0 THEN abs(pred - truth) / abs(truth) ELSE 0 END) AS ape, "
                          "count_if(truth <> 0) AS n_ape, sum(truth) AS y, sum(truth ^ 2) AS y2 FROM q "
                          "WHERE truth IS NOT NULL AND pred IS NOT NULL AND isfinite(truth) AND isfinite(pred) GROUP BY ALL")
        return agg
    hist_exact = spec.labelled <= EXACT_AUC_ROWS
    p_pos, conf = finite_sql(spec.p_pos_sql()), finite_sql(spec.conf_sql())
    scored = [(spec.positive, p_pos)] if p_pos else (
        [(c, finite_sql(e)) for c, e in spec.class_scores.items()] if len(spec.classes) > 2 else [])
    if scores_only:
        scored = []
        if not conf:
            return Aggregates(kind, size, _EMPTY_ROWS)
    from .metrics import CAL_BINS

    # One scan: every aggregate is a grouping set of the same rows (the labels join and
    # the value coercion run once).
    cols = ["chunk", "version", "seg", "sens", "pred", "truth", "correct"]
    sets = [] if scores_only else ["(chunk, version, seg, sens, pred, truth)"]
    if conf:
        cols.append(f"CASE WHEN truth IS NOT NULL THEN {conf} END AS c")
        cols.append(f"CASE WHEN truth IS NOT NULL THEN {clipped_bin_sql(conf, CAL_BINS)} END AS cb")
        sets.append("(chunk, cb, correct)")
        est_score = p_pos or conf
        cols.append(f"{'pred = ' + _lit(spec.positive) if p_pos else 'true'} AS pp")
        cols.append(f"{fine_bin_sql(est_score)} AS fb")
        sets.append("(chunk, pp, fb)")
    for i, (c, expr) in enumerate(scored):
        s_expr = expr if hist_exact else clipped_bin_sql(expr, AUC_BINS)
        cols.append(f"CASE WHEN truth IS NOT NULL THEN CAST({s_expr} AS DOUBLE) END AS s{i}")
        cols.append(f"truth = $cls{i} AS y{i}")
        params[f"cls{i}"] = c
        sets += [f"(s{i}, y{i})", f"(chunk, s{i}, y{i})", f"(seg, s{i}, y{i})", f"(version, s{i}, y{i})"]
    grouped = ["chunk"] if scores_only else ["chunk", "version", "seg", "sens", "pred", "truth"]
    grouped += (["cb", "correct", "pp", "fb"] if conf else []) + [f"{p}{i}" for i in range(len(scored)) for p in ("s", "y")]
    flags = ", ".join(f"GROUPING({g}) AS g_{g}" for g in grouped)
    keys = ", ".join(grouped)
    sums = ", sum(c) AS conf_sum" if conf else ""
    big = run(f"SELECT {keys}, {flags}, count(*) AS n, count(truth) AS labelled, min(ts_us) AS lo_us, "
              f"max(ts_us) AS hi_us{sums} FROM (SELECT ts_us, {', '.join(cols)} FROM q) AS x "
              f"GROUP BY GROUPING SETS ({', '.join(sets)})")
    if scores_only:
        agg = Aggregates(kind, size, _EMPTY_ROWS)
    else:
        base = big.filter(pl.col("g_truth") == 0)
        rows = base.group_by("chunk", "version", "seg", "sens", "pred").agg(
            pl.col("n").sum(), pl.col("labelled").sum(), pl.col("lo_us").min(), pl.col("hi_us").max())
        agg = Aggregates(kind, size, rows, delay=_delay(run) if delay else None, hist_exact=hist_exact)
        agg.pairs = base.filter(pl.col("truth").is_not_null()).select("chunk", "version", "seg", "sens", "pred",
                                                                       "truth", "n")
    if conf:
        cf = big.filter((pl.col("g_cb") == 0) & pl.col("cb").is_not_null() & pl.col("correct").is_not_null())
        agg.conf = cf.group_by("chunk", pl.col("cb").alias("b")).agg(
            pl.col("n").sum(), pl.col("n").filter(pl.col("correct")).sum().alias("correct"), pl.col("conf_sum").sum())
        agg.est = big.filter((pl.col("g_fb") == 0) & pl.col("fb").is_not_null()).select(
            "chunk", pl.col("pp").alias("pred_pos"), "fb", "n")
    parts = []
    for i, (c, _) in enumerate(scored):
        h = big.filter((pl.col(f"g_s{i}") == 0) & pl.col(f"s{i}").is_not_null())
        g = pl.col("g_chunk") * 1 + pl.col("g_seg") * 2 + pl.col("g_version") * 4
        parts.append(h.select(g.alias("g"), "chunk", "seg", "version", pl.lit(c).alias("cls"),
                              pl.col(f"s{i}").alias("s"), pl.col(f"y{i}").alias("y"), "n"))
    if parts:
        agg.hist = pl.concat(parts)
    return agg


_EMPTY_ROWS = pl.DataFrame(schema={"chunk": pl.Int64, "version": pl.String, "seg": pl.String, "sens": pl.String,
                                   "pred": pl.String, "n": pl.Int64, "labelled": pl.Int64, "lo_us": pl.Int64,
                                   "hi_us": pl.Int64})


def finite_sql(expr: str | None) -> str | None:
    """`expr`, NULL where it is not a finite number: a NaN or infinite score is no score
    (the row still counts for accuracy; AUC, calibration and the estimate leave it out)."""
    return None if expr is None else f"CASE WHEN isfinite(CAST(({expr}) AS DOUBLE)) THEN ({expr}) END"


def clipped_bin_sql(expr: str, bins: int) -> str:
    """The bin of `expr` among `bins` equal bins of [0, 1], values outside clipped to the end
    bins; NULL stays NULL (DuckDB's greatest() skips a NULL: greatest(NULL, 0) is 0, which
    put rows without a score in the first bin)."""
    return (f"CASE WHEN ({expr}) IS NOT NULL THEN least(greatest(CAST(floor(({expr}) * {bins}) AS BIGINT), 0), "
            f"{bins - 1}) END")


def fine_bin_sql(expr: str) -> str:
    return clipped_bin_sql(expr, EST_BINS)


def _delay(run) -> dict[str, Any] | None:
    df = run("SELECT count(*) AS n, quantile_cont(d, [0.1, 0.25, 0.5, 0.75, 0.9]) AS q, max(d) AS mx FROM "
             "(SELECT (epoch_us(labeled_at) - ts_us) / 3.6e9 AS d FROM q WHERE labeled_at IS NOT NULL "
             "AND truth IS NOT NULL) AS x")
    n = int(df["n"][0] or 0)
    if n == 0:
        return None
    q = df["q"][0].to_list()
    hist = run("SELECT CAST(floor((epoch_us(labeled_at) - ts_us) / 8.64e10) AS BIGINT) AS day, count(*) AS n "
               "FROM q WHERE labeled_at IS NOT NULL AND truth IS NOT NULL GROUP BY 1 ORDER BY 1")
    return {"labels_with_time": n, "hours": dict(zip(("p10", "p25", "p50", "p75", "p90"), q, strict=True)),
            "max_hours": float(df["mx"][0]), "by_day": hist.to_dicts()}
