"""Compare versions: is the candidate worse than the baseline? Intervals, verdict, rollback."""

import streamlit as st

from monitoring.compare import CompareError
from monitoring.compare import charts as cc
from monitoring.compare.queries import default_pair
from monitoring.config import ConfigError
from monitoring.fmt import md
from ui import compare as uc
from ui import sidebar

st.title("Compare versions")
view = sidebar.require()
f = uc.scope(view.filters)
traffic = uc.traffic(view.ws, view.fingerprint, f)
versions = traffic["version"].to_list()
if len(versions) < 2:
    st.info("Fewer than two versions served in this window: nothing to compare. Widen the time range "
            "in the sidebar.")
    st.stop()

base0, cand0 = default_pair(traffic)
if st.session_state.get("compare_baseline") not in versions:
    st.session_state["compare_baseline"] = base0
if st.session_state.get("compare_candidate") not in versions:
    st.session_state["compare_candidate"] = cand0
c = st.columns(2)
baseline = c[0].selectbox("Baseline", versions, key="compare_baseline",
                          help="Default: the version with most traffic in the window.")
candidate = c[1].selectbox("Candidate", versions, key="compare_candidate",
                           help="Default: the newest version (latest first request).")
if baseline == candidate:
    st.warning("Pick two different versions.")
    st.stop()
try:
    r = uc.result(view.ws, view.fingerprint, baseline, candidate, f)
except (CompareError, ConfigError) as exc:
    st.error(f"Cannot compare: {md(exc)}")
    st.stop()
cmp = r.comparison

box = getattr(st, uc.VERDICT_BOX[cmp.verdict])
if cmp.rollback:
    box(f"**Rollback signal: roll back {md(candidate)}.** " + md(" ".join(cmp.reasons), limit=2000),
        icon=":material/undo:")
else:
    box(md(cmp.headline, limit=2000))
for note in r.notes:
    st.warning(md(note, limit=600))
if r.start is not None:
    st.caption(f"{r.start:%Y-%m-%d %H:%M} → {r.end:%Y-%m-%d %H:%M} UTC: the part of the sidebar's window where "
               f"both versions served · verdict `{cmp.verdict}` · answered {md(r.origin, limit=300)}")

a, b = r.stats[baseline], r.stats[candidate]
total = a.requests + b.requests
m = st.columns(4)
m[0].metric(f"{md(baseline)} requests (baseline)", f"{a.requests:,}", help="in the compared window")
m[1].metric(f"{md(candidate)} requests (candidate)", f"{b.requests:,}")
m[2].metric("Candidate's traffic share", f"{b.requests / total:.1%}" if total else "–")
guarded = [x for x in cmp.metrics if x.guarded]
m[3].metric("Guarded metrics breached", f"{sum(x.worse for x in guarded)} of {len(guarded)}")

st.subheader("Differences, candidate − baseline")
st.dataframe(uc.metric_rows(cmp.metrics), hide_index=True)
with st.expander("In words"):
    for x in cmp.metrics:
        st.markdown("- " + md(x.sentence, limit=600))
st.markdown(uc.METHOD)

dist = uc.distributions(view.ws, view.fingerprint, baseline, candidate, f, r.start, r.end)
c = st.columns(2)
if dist["latency"].height:
    c[0].plotly_chart(cc.overlay(dist["latency"], baseline, candidate, "Latency of successful requests",
                                 "milliseconds (log scale)", log_x=True), key="cmp_latency")
pred = cc.predictions(a, b)
if pred is not None:
    c[1].plotly_chart(pred, key="cmp_predictions")
if dist["score"].height:
    c = st.columns(2)
    c[0].plotly_chart(cc.overlay(dist["score"], baseline, candidate, "Score", "score"), key="cmp_score")
    target = c[1]
else:
    target = st
rows = uc.error_type_rows(r)
target.markdown("**Error types** (share of each version's requests)")
if rows:
    target.dataframe(rows, hide_index=True)
else:
    target.write("No failed requests in this window.")
