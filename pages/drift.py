"""Drift: do inputs and outputs still look like the reference? Per feature, and over time."""

import streamlit as st

from monitoring.config import ConfigError
from monitoring.drift import charts
from monitoring.source import LogSourceError
from ui import drift as ud
from ui import sidebar

st.title("Drift")
view = sidebar.require()
try:
    settings = ud.settings()
except ConfigError as exc:
    st.error(f"The [drift] settings in monitoring.toml are not valid: {exc}")
    st.stop()
st.caption("Is the world the model sees still the one it learned from? Each column of the current "
           "window (sidebar) is compared with the reference; decisions are by effect size, "
           "method and threshold per column in monitoring.toml [drift].")
ref = ud.pick_reference(view, settings)
if ref is None:
    st.stop()
try:
    result = ud.compare(view.ws, ref, view.filters, settings)
except LogSourceError as exc:
    st.error(f"The reference cannot be opened: {exc}")
    st.stop()

c = st.columns(4)
c[0].metric("Reference rows", f"{result.rows_reference:,}", help=result.reference)
c[1].metric("Current rows", f"{result.rows_current:,}", help=result.current)
for w in result.warnings:
    st.warning(ud.md(w))
if result.message:
    st.info(ud.md(result.message))
    st.stop()
drifted = [f for f in result.features if f.drifted]
c[2].metric("Features drifted", f"{len(drifted)} of {len(result.features)}")
c[3].metric("Features with quality issues",
            f"{sum(1 for f in result.features if f.quality and f.quality.problems)}")

st.subheader("Model outputs")
out = st.columns(2)
ud.headline(out[0], result.prediction, "Prediction")
ud.headline(out[1], result.score, "Score")

st.subheader("Features")
st.dataframe(ud.table(result), hide_index=True, column_config=ud.column_config(), key="drift_table")
st.caption("Sorted by score relative to threshold. Numeric: Wasserstein distance in reference "
           "standard deviations (drift ≥ 0.1); categorical: Jensen-Shannon distance (drift ≥ 0.1). "
           "See docs/drift.md.")

st.subheader("Drift over time")
chunk = st.segmented_control("Chunk", ["auto", "hour", "day", "week", "month", "rows"], default=settings.chunk.split(":")[0], key="drift_chunk",
                             help=f"'rows' cuts the window every {settings.chunk_rows:,} rows (drift.chunk_rows).")
ot = ud.over_time(view.ws, ref, view.filters, settings, chunk or settings.chunk)
ranked = [f.name for f in result.all if f.role != "feature"] + [f.name for f in result.ranked()]
show_all = len(ranked) <= 40 or st.toggle(f"Show all {len(ranked)} columns", key="drift_all")
names = ranked if show_all else ranked[:40]
st.plotly_chart(charts.heatmap(ot, names), key="drift_heatmap")

st.subheader("One column in detail")
choices = [(f.name, f.role) for f in result.all]
picked = st.selectbox("Column", choices, key="drift_feature",
                      format_func=lambda c: c[0] if c[1] == "feature" else f"{c[0]} (model output)")
f = result.get(*picked)
m = st.columns(4)
m[0].metric("Status", ud.STATUS_ICON[f.status])
m[1].metric(f"Score ({f.method})", "–" if f.score is None else f"{f.score:.4f}",
            help=f"threshold {f.threshold:g}; {f.accuracy}")
m[2].metric("Kind", f.kind)
m[3].metric("Non-null values", f"{f.n_reference:,} / {f.n_current:,}", help="reference / current")
if f.problem:
    st.warning(f.problem)
if f.quality and f.quality.problems:
    st.warning("Data quality: " + "; ".join(ud.md(p) for p in f.quality.problems))
left, right = st.columns(2)
with left:
    if f.reference is not None and f.n_reference and f.n_current:
        dist = ud.distribution(view.ws, ref, view.filters, settings, f)
        st.plotly_chart(charts.distributions(dist, f), key="drift_dist")
    else:
        st.info("No distribution to draw: one side has no values.")
with right:
    st.plotly_chart(charts.score_line(ot, f.name, f.role), key="drift_line")
t1, t2 = st.columns(2)
with t1:
    st.markdown("**Every test**")
    st.dataframe(ud.scores_table(f), hide_index=True, key="drift_scores",
                 column_config={"score": st.column_config.NumberColumn(format="%.4f"),
                                "p_value": st.column_config.NumberColumn("p-value", format="%.3g")})
with t2:
    st.markdown("**Data quality**")
    if f.quality is not None:
        st.dataframe(ud.quality_frame(f), hide_index=True, key="drift_quality")
