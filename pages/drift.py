"""Drift: do inputs and outputs still look like the reference? Per column, over time, per chunk."""

import streamlit as st

from monitoring.config import ConfigError
from monitoring.drift import charts
from monitoring.logs.source import LogSourceError
from ui import drift as ud
from ui import sidebar

st.title("Drift")
view = sidebar.require()
try:
    settings = ud.settings()
except ConfigError as exc:
    st.error(f"The [drift] settings in monitoring.toml are not valid: {ud.md(exc)}")
    st.stop()
st.caption("Is the world the model sees still the one it learned from? Each column of the current "
           "window (sidebar) is compared with the reference. A column drifts when its score is above its "
           "threshold and above its chance band: what samples of that size drawn from the reference score.")
ref = ud.pick_reference(view, settings)
if ref is None:
    st.stop()
try:
    result = ud.compare(view.ws, ref, view.filters, settings)
except LogSourceError as exc:
    st.error(f"The reference cannot be opened: {ud.md(exc)}")
    st.stop()

c = st.columns(4)
c[0].metric("Reference rows", f"{result.rows_reference:,}", help=ud.md(result.reference))
c[1].metric("Current rows", f"{result.rows_current:,}", help=ud.md(result.current))
for w in result.warnings:
    st.warning(ud.md(w))
if result.message:
    st.info(ud.md(result.message))
    st.stop()
drifted = [f for f in result.features if f.drifted]
c[2].metric("Features drifted", f"{len(drifted)} of {len(result.features)}")
c[3].metric("Features with quality issues",
            f"{sum(1 for f in result.features if f.quality and f.quality.problems)}")

st.subheader("Model outputs" + (" and labels" if result.label else ""))
heads = [(result.prediction, "Prediction"), (result.score, "Score")]
heads += [(result.label, "Label")] if result.label else []  # ground truth: logs or labels file
heads += [(result.confidence, "Max probability")] if result.confidence else []  # multiclass confidence
for col, (f, label) in zip(st.columns(len(heads)), heads, strict=True):
    ud.headline(col, f, label)
if result.classes:  # one probability per class, each tested like a numeric output
    st.caption("Class probabilities: " + ", ".join(
        f"{ud.md(f.cls)} :{ud.STATUS_COLOUR[f.status]}[{ud.STATUS_TEXT[f.status]}]" + ("" if f.score is None else f" ({f.score:.3f})")
        for f in result.classes))

st.subheader("Drift over time")
chunk = ud.pick_chunk(settings)
try:
    ot = ud.over_time(view.ws, ref, view.filters, settings, chunk)
except ValueError as exc:
    st.warning(ud.md(str(exc)))
    st.stop()
st.caption(ud.md(ot.reason or f"{ot.chunk} chunks, as chosen.") + f" {ot.chunks.height:,} chunks.")
ranked = [f.name for f in result.all if f.role != "feature"] + [f.name for f in result.ranked()]
ranked += ["multivariate"] if result.multivariate else []
show_all = len(ranked) <= 40 or st.toggle(f"Show all {len(ranked)} columns", key="drift_all")
names = ranked if show_all else ranked[:40]
event = st.plotly_chart(charts.heatmap(ot, names), key="drift_heatmap", on_select="rerun",
                        selection_mode="points")
k = ud.pick_chunk_k(ot, event, names)
shown = result if k is None else ud.compare_chunk(view.ws, ref, view.filters, settings, chunk, k)
where = "the whole window" if k is None else f"chunk {ud.chunk_label(ot, k)} ({shown.rows_current:,} rows)"

st.subheader(f"Columns: {where}")
st.dataframe(ud.table(shown, ot), hide_index=True, column_config=ud.column_config(), key="drift_table")
st.caption("Sorted by score relative to the larger of threshold and chance band. Numeric: Wasserstein "
           "distance in reference standard deviations (threshold 0.1); categorical: Jensen-Shannon distance "
           "(0.1). Worst chunk: where the column came closest to, or went furthest past, its decision line. "
           "See docs/drift.md.")

st.subheader(f"One column in detail: {where}")
f = ud.pick_column(shown)
m = st.columns(4)
m[0].metric("Status", ud.STATUS_TEXT[f.status])
m[1].metric(f"Score ({f.method})", "–" if f.score is None else f"{f.score:.4f}",
            help=f"threshold {f.threshold:g}; chance band {'–' if f.band is None else f'{f.band:.4f}'}; {f.accuracy}")
m[2].metric("Kind", f.kind)
m[3].metric("Non-null values", f"{f.n_reference:,} / {f.n_current:,}", help="reference / current")
if f.problem:
    st.warning(f.problem)   # built from numbers and constants, no log text
if f.quality and f.quality.problems:
    st.warning("Data quality: " + "; ".join(ud.md(p) for p in f.quality.problems))
left, right = st.columns(2)
with left:
    if f.kind == "multivariate":
        st.info(ud.md(f"PCA reconstruction error, {f.labels[0]}: mean {f.reference.mean:.4g} per row in the "
                      f"reference, {f.current.mean:.4g} now. See docs/drift.md."))
    elif f.reference is not None and f.n_reference and f.n_current:
        dist = ud.distribution(view.ws, ref, view.filters, settings, f, chunk, k)
        st.plotly_chart(charts.distributions(dist, f), key="drift_dist")
    else:
        st.info("No distribution to draw: one side has no values.")
with right:
    st.plotly_chart(charts.score_line(ot, f.name, f.role), key="drift_line")
t1, t2, t3 = st.columns(3)
with t1:
    st.markdown("**Every test**")
    st.dataframe(ud.scores_table(f), hide_index=True, key="drift_scores",
                 column_config={"score": st.column_config.NumberColumn(format="%.4f"),
                                "p_value": st.column_config.NumberColumn("p-value", format="%.3g")})
with t2:
    st.markdown("**Data quality**")
    if f.quality is not None:
        st.dataframe(ud.quality_frame(f), hide_index=True, key="drift_quality")
with t3:
    st.markdown("**Nulls per chunk**")
    st.dataframe(ud.null_share_per_chunk(ot, f), hide_index=True, key="drift_nulls",
                 column_config={"nulls": st.column_config.NumberColumn(format="percent")})
