"""Quality: is the model still right? Metrics from late labels with intervals, over time, per
segment, fairness, and the estimate before the labels come."""

import streamlit as st

from monitoring.config import ConfigError
from monitoring.fmt import md
from monitoring.quality import charts, load
from monitoring.quality.ground_truth import LabelsError
from ui import quality as uq
from ui import sidebar

st.title("Quality")
view = sidebar.require()
st.caption("How often the model is right, from labels that arrived after serving (the logs' label "
           "column, the labels file, reviewers' answers), for the sidebar's window. Every figure has "
           "a 95% interval; too few labels say so. Methods: docs/quality.md.")

cols = uq.columns(view.ws)
c = st.columns(3)
chunk = c[0].segmented_control("Chunk", ["auto", "day", "week", "month"], default="auto", key="quality_chunk")
by = c[1].selectbox("Segment by", cols, key="quality_by")
sensitive = c[2].selectbox("Sensitive column (fairness)", ["(none)", *cols], key="quality_sensitive",
                           index=min(1 + cols.index("device"), len(cols)) if "device" in cols else 0)
sensitive = None if sensitive == "(none)" else sensitive
try:
    settings = load(view.ws.config)
    r = uq.report(view.ws, view.filters, chunk or "auto", by, sensitive)
except (LabelsError, ConfigError, ValueError) as exc:
    st.error(f"Quality cannot be computed: {md(exc)}")
    st.stop()
st.caption(f"Answered from: {md(r.get('origin_note', 'the raw logs'))}.")
for w in r["warnings"]:
    uq.warn(w)
if not r["overall"]:
    st.info("No labels to score yet. Set `labels` (MONITORING_LABELS) or `[labels] path` to a file of late "
            "labels, or review predictions on the Review page.")
    st.stop()

regression = r["task"] == "regression"
headline = ["mae", "rmse", "r2"] if regression else ["accuracy", "roc_auc", "f1_macro"]
m = st.columns(4)
m[0].metric("Labelled", f"{r['labelled']:,}", delta=f"{r['coverage']:.1%} of served", delta_color="off",
            delta_arrow="off", help=f"Coverage: the share of the window's {r['rows']:,} served predictions with a label so far.")
for col, name in zip(m[1:], headline, strict=True):
    e = r["overall"].get(name)
    col.metric(uq.METRIC_TITLES[name], uq.value(e) if e else "no score", help=uq.interval(e) or None,
               delta=uq.interval(e, short=True) or None, delta_color="off", delta_arrow="off")

st.subheader("Over time")
names = [n for n in uq.METRIC_TITLES if n in r["overall"]]
metric = st.selectbox("Metric", names, key="quality_metric", format_func=uq.METRIC_TITLES.get)
floor = settings.floors.get(metric, view.ws.config.slo.accuracy_floor if metric == "accuracy" else None)
st.plotly_chart(charts.over_time(r["chunks"], metric, floor), key="quality_over_time")
missing = uq.too_few(r["chunks"], metric)
if missing:
    st.caption(f"Too few labels (< {r['min_labels']}) for a {metric} in: {', '.join(missing[:12])}"
               f"{' …' if len(missing) > 12 else ''}.")
est = r["estimation"]
st.caption(f"Estimated before the labels: {md(est['what'])} "
           + (f"Calibrated on {est.get('calibrated_on', 0):,} rows of the {md(est.get('reference', ''))}. "
              if est.get("reference") else "")
           + (md(est["note"]) if est.get("note") else "")
           + (f" Largest gap estimate − labels: {est['max_abs_gap'][metric]:.3f}."
              if metric in est.get("max_abs_gap", {}) else ""))

st.subheader("Segments")
primary = "mae" if regression else "accuracy"
st.plotly_chart(charts.segments(r["segments"], primary), key="quality_segments")
st.dataframe(uq.segments_frame(r["segments"], primary), hide_index=True, key="quality_segments_table")

if not regression:
    left, right = st.columns(2)
    with left:
        st.markdown("**Per class**")
        st.dataframe(uq.per_class_frame(r["overall"]["per_class"]), hide_index=True, key="quality_classes")
        st.plotly_chart(charts.confusion(r["overall"]["confusion"]), key="quality_confusion")
    with right:
        if "calibration" in r["overall"]:
            st.plotly_chart(charts.reliability(r["overall"]["calibration"]), key="quality_reliability")
            st.caption(f"Expected calibration error {uq.value(r['overall']['ece'])} ({uq.interval(r['overall']['ece'])}).")

st.subheader("Fairness")
fr = r["fairness"]
if fr.get("deferred"):   # the rest came from the rollups; the groups' outcomes are in the raw logs only
    st.caption(f"Fairness is counted from the raw logs ({r['rows']:,} rows in this window): the rollup "
               "store keeps no outcomes per group.")
    fr = {"note": "Switch on the counting above to see it."}
    if st.toggle(f"Count fairness by {md(sensitive)} from the raw logs", key="quality_fairness_raw"):
        try:
            fr = uq.fairness(view.ws, view.filters, chunk or "auto", by, sensitive)
        except (LabelsError, ConfigError, ValueError) as exc:
            fr = {"note": f"Fairness cannot be computed: {exc}"}
if not sensitive:
    st.info("Pick a sensitive column above to compare groups.")
elif fr.get("note"):
    st.info(md(fr["note"]))
else:
    dp, eo = fr["demographic_parity"], fr["equalized_odds"]
    st.caption(f"Positive outcome: {md(fr['positive_note'])}.")
    f = st.columns(4)
    f[0].metric("Positive-rate difference", uq.value(dp["difference"]), help=uq.interval(dp["difference"]) or None)
    f[1].metric("Positive-rate ratio", uq.value(dp["ratio"]), help=uq.interval(dp["ratio"]) or None,
                delta="below four-fifths" if dp.get("four_fifths_violated") else "meets four-fifths",
                delta_color="inverse" if dp.get("four_fifths_violated") else "off")
    f[2].metric("TPR gap", uq.value(eo["tpr_gap"]), help=uq.interval(eo["tpr_gap"]) or None)
    f[3].metric("FPR gap", uq.value(eo["fpr_gap"]), help=uq.interval(eo["fpr_gap"]) or None)
    if dp.get("four_fifths_violated"):
        st.warning(f"The lowest group's positive rate is {dp['ratio']['value']:.0%} of the highest: below the "
                   "four-fifths rule.")
    st.dataframe(uq.groups_frame(fr["groups"]), hide_index=True, key="quality_groups")
    st.plotly_chart(charts.fairness_over_time(fr["chunks"]), key="quality_fairness_time")

if r.get("label_delay"):
    d = r["label_delay"]
    st.subheader("Label delay")
    q = st.columns(3)
    q[0].metric("Median delay", f"{d['hours']['p50'] / 24:.1f} days")
    q[1].metric("90% within", f"{d['hours']['p90'] / 24:.1f} days")
    q[2].metric("Labels with a time", f"{d['labels_with_time']:,}")
    st.plotly_chart(charts.label_delay(d["by_day"]), key="quality_delay")
