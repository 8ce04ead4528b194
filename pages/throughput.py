"""Throughput: requests per minute against the expected level, with spikes and gaps."""

import streamlit as st

from monitoring import charts
from monitoring.query.filters import BUCKETS
from ui import data, panels, sidebar

st.title("Throughput")
view = sidebar.require("timestamp")
slo = view.ws.config.slo
s = data.window(view)
w = s.window
frame, spikes, gaps = data.traffic_anomalies(view.ws, view.fingerprint, view.filters, view.bucket)

c = st.columns(4)
c[0].metric("Requests per minute", f"{w.requests_per_minute:,.2f}")
c[1].metric("Peak bucket", f"{(frame['requests'].max() or 0) / (BUCKETS[view.bucket] / 60):,.1f} /min")
c[2].metric("Spikes", len(spikes), help=f"Buckets with ≥ {slo.spike_factor:g}× the expected traffic.")
c[3].metric("Downtime", f"{sum(g.minutes for g in gaps)} min", help="Minutes in gaps with no traffic.")

panels.time_chart(view, charts.throughput(frame, BUCKETS[view.bucket] / 60, spikes, gaps), "tp_line")
st.caption("Expected traffic: the median requests per minute for the same hour of day (weekdays and "
           "weekends apart) over the 7 days before this window, never the window itself, so a spike "
           "cannot raise its own baseline (the window's own days only while there is no history yet).")

st.subheader("Gaps (downtime)")
if gaps:
    st.dataframe([{"from (UTC)": g.start, "to (UTC)": g.end, "minutes": g.minutes,
                   "expected requests": round(g.expected_requests, 1)} for g in gaps], hide_index=True,
                 column_config={k: panels.utc_column(k) for k in ("from (UTC)", "to (UTC)")})
else:
    st.write(f"No silent stretch of {slo.gap_min_minutes}+ minutes where traffic was expected.")
st.subheader("Spikes")
if spikes:
    st.dataframe([{"bucket (UTC)": sp.time, "requests": sp.requests, "expected": round(sp.expected, 1),
                   "× expected": round(sp.ratio, 1)} for sp in spikes], hide_index=True,
                 column_config={"bucket (UTC)": panels.utc_column("bucket (UTC)")})
else:
    st.write(f"No bucket reached {slo.spike_factor:g}× its expected traffic.")
